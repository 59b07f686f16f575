"""costbench: what one request costs the server, measured with a compiled load generator.

Drives the full app as `make run` serves it (`python -m booking.run`: uvicorn with
WEB_CONCURRENCY processes, RQ workers, admitter; load/harness.py's LauncherStack, on a database
and a redis-server of the run's own) with wrk and Lua scripts that rotate real tickets, bearer
tokens and seats, for: a bare endpoint (/healthz), join (fresh users), poll, seat map and hold.
Per phase it reports requests/s, p50/p99 and server CPU µs per request from /proc (utime+stime
of the web processes; separately the total with the workers), PostgreSQL CPU per request (the
database's backends, from pg_stat_activity and /proc), Redis CPU per request (the run's private
redis-server), PostgreSQL transactions per request (pg_stat_database deltas) and Redis commands
per request, in rotated rounds, with medians and ratios to the bare endpoint of the same round.

    .venv/bin/python -m load.costbench [--rounds 3] [--seconds 8] [--connections 32]
    .venv/bin/python -m load.costbench --million   # join/poll at 1M vs 1k queued; opening

wrk: Debian package `wrk` (`sudo apt-get install wrk`); the benchmark stops with that hint
if it is missing. Writes docs/results/costbench.{md,csv,png} (or costbench_million.*).
"""
