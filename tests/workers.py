"""Starting a real Celery worker process against the test database, for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def broker_reachable() -> bool:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis"):
        return True
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        return False
    return True


@contextmanager
def celery_worker(
    queue: str,
    log_path: Path,
    require_services,
    *,
    env: dict[str, str] | None = None,
    broker_url: str | None = None,
) -> Iterator[subprocess.Popen]:
    """A solo worker consuming `queue`, sharing this test's PostgreSQL database and broker
    (or `broker_url`), with `env` added to its environment. It leads its own process group,
    so `kill_worker` kills it and anything it started at once, as a crash would."""
    if connection.vendor != "postgresql":
        require_services(
            "the worker process needs a shared database: set DATABASE_URL=postgres://..."
        )
    if os.environ.get("REQUIRE_SERVICES") == "1" and not settings.CELERY_BROKER_URL.startswith(
        "redis"
    ):
        pytest.fail("REQUIRE_SERVICES=1 but REDIS_URL is not set")
    if broker_url is None and not broker_reachable():
        require_services(f"the broker {settings.CELERY_BROKER_URL} is not reachable")
    db = connection.settings_dict
    env = {
        **os.environ,
        **(env or {}),
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": broker_url or settings.CELERY_BROKER_URL,
    }
    command = [
        sys.executable, "-m", "celery", "-A", "uniware", "worker", "-Q", queue, "-c", "1",
        "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel=INFO",
    ]  # fmt: skip
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_path = log_path  # type: ignore[attr-defined]
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    kill_worker(proc)


def kill_worker(proc: subprocess.Popen) -> None:
    """SIGKILL the worker's whole process group (the worker and its children), as the OOM
    killer or a lost machine would: nothing runs its clean-up."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=15)
