"""Sync errors as a to-do list (issue 15): an error stays OPEN until a later sync of the same
order succeeds (resolved automatically, naming the run) or staff dismiss it with a reason."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q
from django.utils import timezone

from ..models import SyncError, SyncErrorState, SyncRun


def errors_resolve(run: SyncRun, results: Iterable) -> int:
    """Resolve the open errors of the orders this run synced without an error (one UPDATE).

    `results` are `apply.OrderResult`s; an order the channel sent that we could not create
    before is matched by its channel order id (it has no order row to match by)."""
    order_ids, channel_order_ids = set(), set()
    for result in results:
        if result.errors:
            continue
        if result.order_id is not None:
            order_ids.add(result.order_id)
        if result.channel_order_id:
            channel_order_ids.add(result.channel_order_id)
    if not order_ids and not channel_order_ids:
        return 0
    matches = Q(order_id__in=order_ids) | Q(
        order__isnull=True, channel_order_id__in=channel_order_ids
    )
    return (
        SyncError.objects.filter(matches, channel_id=run.channel_id, state=SyncErrorState.OPEN)
        .exclude(run=run)
        .update(
            state=SyncErrorState.RESOLVED,
            resolved_at=timezone.now(),
            resolution=f"a later sync succeeded (run #{run.pk})",
        )
    )


def errors_dismiss(error_ids: list[int], *, reason: str, user) -> int:
    """Dismiss open errors with the reason staff gave; resolved ones keep their resolution."""
    reason = reason.strip()
    if not reason:
        raise ValueError("A reason is needed to dismiss sync errors.")
    return SyncError.objects.filter(pk__in=error_ids, state=SyncErrorState.OPEN).update(
        state=SyncErrorState.DISMISSED,
        resolved_at=timezone.now(),
        resolved_by=user,
        resolution=reason[:255],
    )
