"""One rule for time zones: the tenant's zone is the zone of everything people see and type.

Admin pages, "today" and "past 7 days" filters, dates typed in a form or imported without an
offset, export files, re-sync dates, dashboards and status notifications all use
`Tenant.time_zone`: `TenantTimeZoneMiddleware` activates it for every request and
`uniware.celery` for every task, so Django's own `timezone.localtime()`, `make_aware()` and
form fields follow it without each caller knowing. Dates are stored in UTC as always.
`settings.TIME_ZONE` is only the fallback (an unknown or missing tenant zone) and the zone of
server logs.

The zone is read once per `CACHE_SECONDS` per process (a request must not cost a query); a
change saved in this process applies at once, in other processes within that time.
"""

from __future__ import annotations

import logging
import time
import zoneinfo

from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)

CACHE_SECONDS = 30.0
_cached: tuple[float, zoneinfo.ZoneInfo] | None = None


def tenant_zone() -> zoneinfo.ZoneInfo:
    """The tenant's time zone (settings.TIME_ZONE when unknown)."""
    global _cached
    now = time.monotonic()
    if _cached is not None and now - _cached[0] < CACHE_SECONDS:
        return _cached[1]
    from .models import Tenant

    name = Tenant.objects.filter(pk=1).values_list("time_zone", flat=True).first()
    try:
        zone = zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("tenant time zone %r unknown, using %s", name, settings.TIME_ZONE)
        zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    _cached = (now, zone)
    return zone


def forget_tenant_zone(**kwargs) -> None:
    """Read the zone again next time (connected to the Tenant's post_save)."""
    global _cached
    _cached = None


def activate_tenant_zone(**kwargs) -> None:
    timezone.activate(tenant_zone())


def deactivate_zone(**kwargs) -> None:
    timezone.deactivate()


class TenantTimeZoneMiddleware:
    """Every request shows and reads dates in the tenant's zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        activate_tenant_zone()
        try:
            return self.get_response(request)
        finally:
            deactivate_zone()
