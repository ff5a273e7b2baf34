"""Admin actions "Push inventory now": on selected listings (`push_inventory_now`, for the
listings admin) and on selected channels (`push_channel_inventory_now`, a full push, for the
channel admin). Both need the permission `listings.push_channellisting`.

The request never calls a channel: each channel's push becomes a QUEUED run (one per channel,
kind INVENTORY, visible in "recurrent task runs" with its progress and per-listing report),
run by the Celery task `listings.tasks.push_inventory` once the transaction commits. A
channel that cannot take it now (switched off, no inventory pushes, no URL) gets a refused
run and a message saying why.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from channels.models import Channel, RunTrigger, SyncKind, SyncRun
from channels.sync.runs import new_run, queue_after_commit, refuse
from uniware.core.admin_utils import admin_url, changelist_url, plural

from . import tasks
from .models import InventoryLane
from .push import TASKS, inventory_refusal

PERMISSION = "listings.push_channellisting"
PUSH_MAX = 50_000  # listings per "push now"; more is a full push of the channel


def may_push(request) -> bool:
    """Whether the user may push inventory (each action checks it, whichever admin lists it)."""
    return request.user.has_perm(PERMISSION)


def has_push_inventory_permission(modeladmin, request) -> bool:
    """For a ModelAdmin listing the actions: `has_push_inventory_permission =
    has_push_inventory_permission` hides `push_channel_inventory_now` from those who may not
    push (its `permissions=["push_inventory"]`)."""
    return may_push(request)


def queue_push(run: SyncRun) -> None:
    """Queue the task of a QUEUED inventory run once the transaction commits."""
    queue_after_commit(run, tasks.push_inventory)


def plan_push(
    channels: list[Channel], *, user, full: bool, listing_ids: dict[int, list[int]] | None = None
) -> tuple[list[SyncRun], list[str]]:
    """One QUEUED run per channel (queued after commit), or a refused one: (runs queued,
    "CODE: why" of each refused)."""
    queued, refused = [], []
    for channel in channels:
        params: dict = {"lane": InventoryLane.CHANGED, "full": full}
        if listing_ids is not None:
            params["listing_ids"] = listing_ids[channel.pk]
        task = TASKS["FULL" if full else InventoryLane.CHANGED]
        run = new_run(
            SyncKind.INVENTORY,
            channel,
            task=task,
            trigger=RunTrigger.MANUAL,
            user=user,
            params=params,
        )
        why = inventory_refusal(channel)
        if why:
            refuse(run, why)
            refused.append(f"{channel.code}: {why}")
            continue
        queue_push(run)
        queued.append(run)
    return queued, refused


def _report(request, queued: list[SyncRun], refused: list[str], what: str) -> None:
    if queued:
        links = format_html_join(
            ", ", '<a href="{}">run #{} ({})</a>', ((admin_url(r), r.pk, r.channel) for r in queued)
        )
        messages.success(
            request,
            format_html(
                "Inventory push of {} queued as {}: follow it in <a href='{}'>recurrent task "
                "runs</a>.",
                what,
                links,
                changelist_url(SyncRun),
            ),
        )
    for line in refused:
        messages.error(request, f"Inventory push refused for {line}")


@admin.action(description="Push inventory now", permissions=["push_inventory"])
def push_inventory_now(modeladmin, request, queryset) -> None:
    """Push the selected listings now (mapped and enabled ones; the others are named)."""
    if not may_push(request):
        messages.error(request, f"Pushing inventory needs the permission {PERMISSION}.")
        return
    rows = list(
        queryset.order_by("channel_id", "pk").values_list(
            "pk", "channel_id", "sku_id", "sync_enabled"
        )[: PUSH_MAX + 1]
    )
    if len(rows) > PUSH_MAX:
        messages.error(
            request,
            f"Select at most {PUSH_MAX:,} listings; for more, use “Push inventory now” on the "
            "channel (every listing).",
        )
        return
    by_channel: dict[int, list[int]] = defaultdict(list)
    skipped = 0
    for pk, channel_id, sku_id, enabled in rows:
        if sku_id is None or not enabled:
            skipped += 1
            continue
        by_channel[channel_id].append(pk)
    if skipped:
        messages.warning(
            request,
            f"{plural(skipped, 'listing')} not pushed: unmapped or inventory sync switched off.",
        )
    channels = list(Channel.objects.filter(pk__in=by_channel).order_by("code"))
    queued, refused = plan_push(channels, user=request.user, full=False, listing_ids=by_channel)
    count = sum(len(by_channel[r.channel_id]) for r in queued)
    _report(request, queued, refused, plural(count, "listing"))


@admin.action(description="Push inventory now (every listing)", permissions=["push_inventory"])
def push_channel_inventory_now(modeladmin, request, queryset) -> None:
    """A full push of the selected channels: every enabled mapped listing, changed or not."""
    if not may_push(request):
        messages.error(request, f"Pushing inventory needs the permission {PERMISSION}.")
        return
    channels = list(queryset.order_by("code"))
    queued, refused = plan_push(channels, user=request.user, full=True)
    _report(request, queued, refused, "every listing")
