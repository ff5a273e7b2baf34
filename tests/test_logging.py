"""Logs: each record once (web process and Celery worker), no traceback for an ordinary 403,
and LOG_FORMAT=json writes one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured

from uniware.core.logging import ClientErrorWithoutTraceback, JsonFormatter, logging_config

ROOT = Path(__file__).resolve().parent.parent
EMIT = """
import logging, django
django.setup()
logging.getLogger("orders.services").warning("app line %s", 1)
logging.getLogger("django.request").warning("django line")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("imports.tasks").exception("failed line")
"""
# A worker that logs the same lines once it is ready, then leaves.
WORKER = """
import logging, os
from celery.signals import worker_ready

@worker_ready.connect
def emit(**kwargs):
    logging.getLogger("orders.services").warning("app line %s", 1)
    logging.getLogger("django.request").warning("django line")
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("imports.tasks").exception("failed line")
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(0)

from uniware.celery import app
app.worker_main(["worker", "-Q", "default", "--pool", "solo", "--without-gossip",
                 "--without-mingle", "--loglevel=INFO"])
"""


def run_python(script: str, tmp_path: Path, **variables: str) -> str:
    """Run `script` in a fresh process in development mode; return its stderr."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "uniware.settings",
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "UNIWARE_VAR_DIR": str(tmp_path / "var"),
        **variables,
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def lines_with(text: str, output: str) -> list[str]:
    return [line for line in output.splitlines() if text in line]


@pytest.mark.parametrize("mode", [{"DEBUG": "1"}, {"DEBUG": "0", "SECRET_KEY": "k" * 60}])
def test_each_line_is_written_once_by_the_web_process(tmp_path, mode):
    """Django's default `django` console handler (under DEBUG) plus the root handler used
    to print each django.* line twice."""
    output = run_python(EMIT, tmp_path, **mode)
    assert len(lines_with("app line 1", output)) == 1, output
    assert len(lines_with("django line", output)) == 1, output
    assert len(lines_with("failed line", output)) == 1, output
    assert len(lines_with("ZeroDivisionError: division by zero", output)) == 1, output


def test_the_worker_logs_each_line_once_in_the_configured_format(tmp_path):
    output = run_python(WORKER, tmp_path, LOG_FORMAT="json")
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [r["message"] for r in records]
    assert messages.count("app line 1") == 1, output
    assert messages.count("django line") == 1, output
    assert len(lines_with("app line 1", output)) == 1, output  # not also in celery's format
    assert len(lines_with("django line", output)) == 1, output
    failed = next(r for r in records if r["message"] == "failed line")
    assert failed["logger"] == "imports.tasks" and failed["level"] == "ERROR"
    assert "ZeroDivisionError" in failed["exception"]
    assert any(r["logger"].startswith("celery") for r in records)  # Celery's own lines too


def test_log_format_json_writes_one_object_per_line(tmp_path):
    output = run_python(EMIT, tmp_path, LOG_FORMAT="json")
    records = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    app = next(r for r in records if r["message"] == "app line 1")
    assert set(app) == {"time", "level", "logger", "message"}
    assert (app["level"], app["logger"]) == ("WARNING", "orders.services")
    assert app["time"].endswith("+00:00")
    failed = next(r for r in records if r["message"] == "failed line")
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert failed["exception"].endswith("ZeroDivisionError: division by zero")


def test_an_unknown_log_format_is_refused_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be one of text, json"):
        logging_config("xml", "INFO")


@pytest.fixture
def console_output():
    """What the root console handler (the one LOGGING configures) writes during the test."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, ClientErrorWithoutTraceback) for f in h.filters)
    )
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def test_an_ordinary_403_is_one_line_without_traceback(client, db, console_output):
    user = get_user_model().objects.create_user("nobody", password="pw-123456789", is_staff=True)
    client.force_login(user)
    response = client.get("/admin/auth/user/")
    assert response.status_code == 403
    lines = lines_with("Forbidden", console_output.getvalue())
    assert len(lines) == 1
    assert lines[0].endswith(
        "WARNING django.request Forbidden (Permission denied): /admin/auth/user/"
    )
    assert "Traceback" not in console_output.getvalue()
    assert "PermissionDenied" not in console_output.getvalue()


def test_a_server_error_keeps_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error: /x", (),
            sys.exc_info(),
        )  # fmt: skip
    record.status_code = 500
    assert ClientErrorWithoutTraceback().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["status_code"] == 500
    assert "RuntimeError: boom" in entry["exception"]
