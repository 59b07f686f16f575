"""Payments per second of one worker process per PAYMENT_CONCURRENCY: `python -m load.paybench`."""
