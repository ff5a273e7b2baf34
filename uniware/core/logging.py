"""Logging: one handler on the root logger, a plain or JSON line per record.

Why lines used to come out twice: Django's own default configuration puts a console handler
on the `django` logger (active under DEBUG), and its records also propagated to our root
console handler. `logging_config()` gives `django` no handler of its own, so every record
reaches exactly one handler, the root's; the Celery worker is told not to replace it
(`CELERY_WORKER_HIJACK_ROOT_LOGGER = False`), so it logs the same way.

A 403 or 400 is an ordinary answer, not a fault: Django logs PermissionDenied and suspicious
requests with their traceback; `ClientErrorWithoutTraceback` keeps the one-line message.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOG_FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the
    exception text when there is one (a log collector indexes fields, not prose)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        status_code = getattr(record, "status_code", None)
        if status_code is not None:
            entry["status_code"] = status_code
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ClientErrorWithoutTraceback(logging.Filter):
    """Drop the traceback of records about a 4xx response (Django attaches the
    PermissionDenied or SuspiciousOperation); the message line stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        status_code = getattr(record, "status_code", None)
        if isinstance(status_code, int) and 400 <= status_code < 500:
            record.exc_info = None
            record.exc_text = None
        return True


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING dict: one console handler on root, `django` propagating to it."""
    if log_format not in LOG_FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
        )
    formatter = (
        {"()": "uniware.core.logging.JsonFormatter"}
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"client_errors": {"()": "uniware.core.logging.ClientErrorWithoutTraceback"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["client_errors"],
            }
        },
        # Replaces Django's default handlers on `django` (console under DEBUG, mail_admins).
        "loggers": {
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            # Libraries that log every start-up or login at INFO: their warnings are enough.
            "axes": {"level": "WARNING"},
            "pikepdf": {"level": "WARNING"},
        },
        "root": {"handlers": ["console"], "level": level},
    }
