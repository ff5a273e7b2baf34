"""A dead broker never holds up a staff action: the publish after commit makes one connection
attempt bounded by CELERY_BROKER_CONNECT_TIMEOUT and gives up (the sweeper delivers later).
Measured on the development machine, Redis at a closed loopback port: 6.0-6.4 s per publish
before these settings, 0.004 s after (0.3 s for the first one of a process, which imports
the Redis transport)."""

from __future__ import annotations

import runpy
import socket
from pathlib import Path

import pytest
from celery import Celery
from kombu.exceptions import OperationalError

ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _settings_with_broker(monkeypatch, url: str) -> dict:
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setenv("DEBUG", "1")
    return runpy.run_path(str(ROOT / "uniware" / "settings.py"))


def test_a_publish_to_a_dead_broker_makes_one_bounded_attempt(monkeypatch):
    pytest.importorskip("redis")
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    conf = _settings_with_broker(monkeypatch, url)
    options = conf["CELERY_BROKER_TRANSPORT_OPTIONS"]
    assert options["max_retries"] == 0
    assert options["socket_connect_timeout"] <= 1 and conf["CELERY_BROKER_CONNECTION_TIMEOUT"] <= 1
    assert options["visibility_timeout"] <= 3600 and conf["CELERY_TASK_REJECT_ON_WORKER_LOST"]

    app = Celery("broker-down", set_as_current=False)
    app.config_from_object({k[7:].lower(): v for k, v in conf.items() if k.startswith("CELERY_")})
    waits = []
    import kombu.utils.functional as functional

    monkeypatch.setattr(functional, "sleep", lambda seconds: waits.append(seconds))
    with pytest.raises(OperationalError):
        app.send_task("notifications.tasks.deliver", queue="notifications", retry=False)
    assert waits == []  # no back-off between connection attempts: one attempt, then give up
