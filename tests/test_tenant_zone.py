"""One rule: the tenant's time zone is the zone of what staff see and type (issue 11: the
admin, "today" filters, imports, exports and re-sync dates used the server's zone)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from imports.parsing import order_date
from orders.models import Order
from uniware.core.models import Tenant

SERVER = "Asia/Kolkata"  # settings.TIME_ZONE in the tests
TENANT = "America/New_York"


@pytest.fixture
def new_york(db, settings):
    settings.TIME_ZONE = SERVER
    tenant = Tenant.get()
    tenant.time_zone = TENANT
    tenant.save()
    return ZoneInfo(TENANT)


def test_a_request_sees_dates_in_the_tenant_zone(new_york, admin_client, world):
    order = world.order("TZ-1")
    moment = datetime(2024, 5, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
    Order.objects.filter(pk=order.pk).update(order_date=moment)
    response = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert response.status_code == 200
    # 23:30 UTC is 19:30 in New York (and 05:00 the next day in Kolkata)
    assert timezone.localtime(moment, new_york).strftime("%H:%M") == "19:30"
    assert "7:30 p.m." in response.content.decode() or "19:30" in response.content.decode()
    assert timezone.get_current_timezone_name() == SERVER  # deactivated after the request


def test_today_filter_starts_at_the_tenant_midnight(new_york, admin_client, world):
    order = world.order("TZ-2")
    now = timezone.now().astimezone(new_york)
    just_before_midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        minutes=1
    )
    Order.objects.filter(pk=order.pk).update(order_date=just_before_midnight)
    url = reverse("admin:orders_order_changelist") + "?order_date_range=today"
    response = admin_client.get(url)
    assert response.status_code == 200
    assert order.code not in response.content.decode()
    Order.objects.filter(pk=order.pk).update(order_date=just_before_midnight + timedelta(minutes=2))
    assert order.code in admin_client.get(url).content.decode()


def test_an_imported_date_without_offset_is_in_the_tenant_zone(new_york):
    with timezone.override(new_york):
        parsed = order_date("2024-05-01 10:00")
    assert parsed.utcoffset() == timedelta(hours=-4)
    assert parsed.astimezone(ZoneInfo("UTC")).hour == 14


def test_a_task_runs_in_the_tenant_zone(new_york):
    from uniware.core.zones import activate_tenant_zone, deactivate_zone

    activate_tenant_zone()  # what task_prerun does in a worker
    try:
        assert timezone.get_current_timezone_name() == TENANT
    finally:
        deactivate_zone()
    assert timezone.get_current_timezone_name() == SERVER
