"""Login throttling on top of django-axes: who the client is, and two lockout rules.

Client address. Behind a load balancer every request comes from the balancer's address, so
throttling by REMOTE_ADDR would lock a user out for everyone. But X-Forwarded-For is written by
the client too: trusted only when the deployment says how many proxies append to it
(`TRUSTED_PROXY_COUNT`). Each trusted proxy appends the address it saw, so the client is the
entry that many places from the right; whatever the client put before it is ignored. Unset
(the default), only REMOTE_ADDR counts and the header is ignored, so it cannot be spoofed.

Rules. Axes compares one failure count with one limit; this handler keeps two counts within
the cool-off period: failures for this username from this address (`AXES_FAILURE_LIMIT`, a
mistyped password) and failures for any username from this address (`AXES_IP_FAILURE_LIMIT`,
higher: password spraying, and an office behind one NAT address still works). Either one
over its limit locks the client out. A successful login forgives only that user's failures
from that address (axes' reset by the `[["username", "ip_address"]]` parameters), never the
address's count, so one valid account cannot be used to keep spraying.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address (AXES_CLIENT_IP_CALLABLE): REMOTE_ADDR, or the trusted proxies'
    header entry `TRUSTED_PROXY_COUNT` places from the right when proxies are configured.
    A missing, short or malformed header falls back to REMOTE_ADDR."""
    remote = request.META.get("REMOTE_ADDR")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    header = request.META.get(settings.TRUSTED_PROXY_META_KEY, "")
    entries = [e for e in header.split(",") if e.strip()]
    if len(entries) < count:
        return remote
    return _valid_ip(entries[-count]) or remote


class LoginThrottleHandler(AxesDatabaseHandler):
    """AxesDatabaseHandler with a per-user-and-address rule and a higher per-address rule."""

    def _failures(self, request: HttpRequest, **filters: Any) -> int:
        attempts = AccessAttempt.objects.filter(**filters)
        if settings.AXES_COOLOFF_TIME is not None:
            attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
        return attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """Failures of this username from this address; at least the failure limit (so axes
        locks out) once the address is over its own, higher limit."""
        ip = request.axes_ip_address
        username = get_client_username(request, credentials)
        user_failures = self._failures(request, username=username, ip_address=ip)
        if self._failures(request, ip_address=ip) >= settings.AXES_IP_FAILURE_LIMIT:
            return max(user_failures, get_failure_limit(request, credentials))
        return user_failures
