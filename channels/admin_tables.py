"""What the order page shows of its syncs with the channel (a section of `OrderAdmin`)."""

from __future__ import annotations

from django.db.models import Case, When
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from uniware.core.admin_utils import Table, changelist_url, link

from .models import SyncError, SyncErrorState

SHOWN = 20


def order_sync_errors_tables(order, request=None) -> list[Table]:
    """The order's sync errors, open ones first; none shows no table."""
    open_first = Case(When(state=SyncErrorState.OPEN, then=0), default=1)
    errors = list(
        SyncError.objects.filter(order=order)
        .select_related("run")
        .order_by(open_first, "-id")[: SHOWN + 1]
    )
    if not errors:
        return []
    table = Table("Sync errors", ["When", "Run", "Kind", "Message", "State"])
    for error in errors[:SHOWN]:
        state = "open" if error.state == SyncErrorState.OPEN else error.get_state_display()
        if error.resolution:
            state = f"{state}: {error.resolution}"
        table.add(
            date_format(localtime(error.created_at), "DATETIME_FORMAT"),
            link(error.run, f"#{error.run_id}"),
            error.get_kind_display(),
            error.message,
            state,
        )
    if len(errors) > SHOWN:
        more = changelist_url(SyncError, order__id__exact=order.pk, state="all")
        table.note = format_html('Showing {}. <a href="{}">See all</a>.', SHOWN, more)
    return [table]
