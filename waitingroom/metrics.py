"""Prometheus metrics of the waiting room (module level: registered once per process).

Gauges use `livemostrecent` so that, under PROMETHEUS_MULTIPROC_DIR, the value exported is
the one most recently written by any live process: every process's admitter loop refreshes
them each second, whichever process won the tick.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUE_LENGTH = Gauge(
    "waitingroom_queue_length",
    "Users waiting (queue plus pre-queue)",
    ["event"],
    multiprocess_mode="livemostrecent",
)
ACTIVE_USERS = Gauge(
    "waitingroom_active_users",
    "Users admitted and inside their admission window",
    ["event"],
    multiprocess_mode="livemostrecent",
)
ADMITTED = Counter("waitingroom_admitted_total", "Users admitted", ["event"])
EXPIRED = Counter(
    "waitingroom_expired_total", "Admitted users dropped after the admission window", ["event"]
)
JOINS = Counter("waitingroom_joins_total", "Join requests (new or repeated)", ["event"])
POLLS = Counter("waitingroom_polls_total", "Poll requests answered", ["event"])
POLLS_FROM_MEMORY = Counter(
    "waitingroom_polls_from_memory_total",
    "Polls answered from the process's queue snapshot, without Redis",
    ["event"],
)
POLLS_LIMITED = Counter("waitingroom_polls_rate_limited_total", "Polls refused with 429", ["event"])
TOKEN_REJECTIONS = Counter(
    "waitingroom_token_rejections_total", "Admission tokens rejected", ["event", "reason"]
)
_SIGNED_BUCKETS = (-600, -300, -120, -60, -30, -10, -5, -2, 0, 2, 5, 10, 30, 60, 120, 300, 600)
ETA_ERROR = Histogram(
    "waitingroom_eta_error_seconds",
    "ETA predicted at join minus the actual wait (positive: we were pessimistic)",
    ["event"],
    buckets=_SIGNED_BUCKETS,
)
# Signed buckets make prometheus-client drop _sum, so the mean error needs this one too.
ETA_ABS_ERROR = Histogram(
    "waitingroom_eta_abs_error_seconds",
    "Absolute difference between the ETA predicted at join and the actual wait",
    ["event"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
WAIT = Histogram(
    "waitingroom_wait_seconds",
    "Actual wait from join (or opening) to admission",
    ["event"],
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
