"""Tunables of the outbox, overridable in settings as `NOTIFICATIONS_<NAME>`.

Per-channel settings come from the Channel (`request_timeout`, `retry_base_delay`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Notifications claimed (and row-locked) per batch.
    "BATCH_SIZE": 500,
    # A claim lasts this long; a sender stops starting requests when less than the request
    # timeout is left, so two workers never send the same notification at once.
    "LEASE_SECONDS": 300,
    # Parallel connections per sending process (orders are spread over them; one order's
    # notifications always go through one connection, in order).
    "SEND_THREADS": 4,
    # Refusals (4xx, malformed reply, FAILED / PARTIAL_SUCCESS items) before a notification
    # is left FAILED (holding back its order's later ones until retried or discarded).
    "MAX_REJECTIONS": 5,
    # Transient failures (429, 5xx, timeouts, connection errors) before FAILED; 0: never.
    "MAX_TRANSIENT_ATTEMPTS": 0,
    # Back-off: channel.retry_base_delay × 2^(n-1), half of it random, at most this.
    "MAX_RETRY_DELAY": 900.0,
    # One delivery task works at most this long, then queues a successor.
    "TASK_TIME_BUDGET": 50.0,
    # Every how many seconds the sweeper runs (uniware/core/schedule.py).
    "SWEEP_INTERVAL": 30,
}


def conf(name: str) -> Any:
    return getattr(settings, f"NOTIFICATIONS_{name}", DEFAULTS[name])
