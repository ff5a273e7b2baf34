"""The orders changelist's bulk action "Sync status from channel" (seed 000's manual trigger).

The selection is grouped by channel; each channel's orders become one run, synced by a Celery
task (one per channel). The request never calls a channel: a channel that answers slowly (5
attempts of up to 30 s each) would hold a web worker past gunicorn's timeout, which kills it
mid-run. The request waits up to `SYNC_WAIT_SECONDS` for the runs to end (a worker syncs a
few orders in well under a second) and then reports per order what changed, what did not and
why; a run still going is linked instead, and its page shows the progress and, at the end,
the same per-order report.
"""

from __future__ import annotations

import time

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from uniware.core.admin_utils import admin_url, changelist_url, plural

from .admin import queue_run
from .models import RunOutcome, SyncRun
from .sync import plan_selected

SYNC_WAIT_SECONDS = 3.0  # the longest the request waits for the runs' workers
POLL_SECONDS = 0.2
SYNC_MAX = 50_000  # a "select all" over a million orders is a re-sync, not a selection
LISTED = 50


def _lines(rows: list[list[str]]):
    shown = rows[:LISTED]
    more = f"… and {len(rows) - LISTED} more" if len(rows) > LISTED else ""
    items = format_html_join("", "<li>{}: {}</li>", ((c, d) for c, _, d in shown))
    return format_html("<ul>{}</ul>{}", items, more)


def report_runs(request, runs: list[SyncRun]) -> None:
    """Per order: changed (what), unchanged (why), failed (why); a refused run's reason."""
    for run in runs:
        where = f"{run.channel.code}" if run.channel_id else ""
        if run.outcome == RunOutcome.REFUSED:
            messages.error(request, f"{where}: {run.message}")
            continue
        if run.outcome == RunOutcome.FAILED and not run.report:
            messages.error(request, f"{where}: {run.message}")
            continue
        by = {"CHANGED": [], "UNCHANGED": [], "FAILED": []}
        for line in run.report:
            by.setdefault(line[1], []).append(line)
        link = format_html('<a href="{}">run #{}</a>', admin_url(run), run.pk)
        if by["CHANGED"]:
            head = f"{where}: changed {plural(len(by['CHANGED']), 'order')}"
            messages.success(request, format_html("{} ({}):{}", head, link, _lines(by["CHANGED"])))
        if by["UNCHANGED"]:
            head = f"{where}: {plural(len(by['UNCHANGED']), 'order')} unchanged"
            messages.info(request, format_html("{} ({}):{}", head, link, _lines(by["UNCHANGED"])))
        if by["FAILED"]:
            head = f"{where}: could not sync {plural(len(by['FAILED']), 'order')}"
            messages.error(request, format_html("{} ({}):{}", head, link, _lines(by["FAILED"])))


def wait_for(runs: list[SyncRun], seconds: float) -> list[SyncRun]:
    """The runs again, after waiting up to `seconds` for all of them to end."""
    deadline = time.monotonic() + seconds
    by_pk = {run.pk: run for run in runs}
    while True:
        open_ids = [pk for pk, run in by_pk.items() if not run.is_finished]
        if not open_ids or time.monotonic() >= deadline:
            return list(by_pk.values())
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        for run in SyncRun.objects.filter(pk__in=open_ids).select_related("channel"):
            by_pk[run.pk] = run


@admin.action(description="Sync status from channel", permissions=["sync"])
def sync_status_from_channel(modeladmin, request, queryset) -> None:
    ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: SYNC_MAX + 1])
    if len(ids) > SYNC_MAX:
        messages.error(
            request,
            f"Select at most {SYNC_MAX:,} orders to sync; for more, use the channel's "
            '"Re-sync from a chosen date".',
        )
        return
    runs = plan_selected(ids, user=request.user, task="admin: Sync status from channel")
    for run in runs:
        if not run.is_finished:
            queue_run(run)  # sent at once: actions run outside a transaction
    runs = wait_for(runs, SYNC_WAIT_SECONDS)
    waiting = [run for run in runs if not run.is_finished]
    report_runs(request, [run for run in runs if run.is_finished])
    if waiting:
        messages.success(
            request,
            format_html(
                "Status sync of {} is running as {}: follow the progress in "
                '<a href="{}">recurrent task runs</a>.',
                plural(sum(run.progress_total for run in waiting), "order"),
                format_html_join(
                    ", ",
                    '<a href="{}">run #{} ({})</a>',
                    ((admin_url(r), r.pk, r.channel.code) for r in waiting),
                ),
                changelist_url(SyncRun),
            ),
        )
