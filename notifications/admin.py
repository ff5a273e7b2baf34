"""Admin for channel notifications: the outbox, pending, delivered and failed.

- The list filters by state, channel, kind, order and date; search takes an exact order code,
  channel order id or idempotency key.
- A notification's page shows what was (or will be) sent, why it waits, and every attempt
  with its time, HTTP status, reply and error.
- Actions (also buttons on the page): retry now; discard with a reason (asked on an
  intermediate page). Both call `notifications.services`.
- `order_notifications_tables(order)`: the table on an order's page.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import OuterRef, Subquery
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from orders.models import Order
from uniware.core.admin_utils import (
    FastChangeListMixin,
    NoDeleteMixin,
    ObjectActionsMixin,
    Table,
    changelist_url,
    link,
    recent_filter,
    report_outcome,
    run_action,
    status_badge,
)

from .models import OPEN_STATES, AttemptOutcome, Notification, NotificationState
from .services import RETRYABLE, notifications_discard, notifications_retry

STATE_COLOUR = {  # reuse the status badge colours
    NotificationState.PENDING: "PROCESSING",
    NotificationState.DELIVERED: "DELIVERED",
    NotificationState.FAILED: "UNFULFILLABLE",
    NotificationState.DISCARDED: "CANCELLED",
}
ATTEMPT_COLOUR = {
    AttemptOutcome.SUCCESS: "DELIVERED",
    AttemptOutcome.TRANSIENT: "PROCESSING",
}
ORDER_TABLE_LIMIT = 50


def when(value) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


def state_badge(n: Notification):
    label = n.get_state_display()
    if n.state == NotificationState.PENDING and n.channel_ref:
        label = "Awaiting the channel's report"
    elif n.state == NotificationState.PENDING and n.attempts:
        label = f"Retrying ({n.attempts} attempts)"
    return status_badge(STATE_COLOUR.get(n.state, ""), label)


class OrderFilter(admin.SimpleListFilter):
    """Notifications of one order (reached from the order's page; no choice list, since
    there are millions of orders)."""

    title = "order"
    parameter_name = "order"

    def lookups(self, request, model_admin):
        value = self.value()
        if value and str(value).isdigit():
            code = Order.objects.filter(pk=int(value)).values_list("code", flat=True).first()
            return [(value, code or f"#{value}")]
        return []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not str(value).isdigit():
            return queryset.none()
        return queryset.filter(order_id=int(value))


@admin.register(Notification)
class NotificationAdmin(ObjectActionsMixin, FastChangeListMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = [
        "number",
        "order_link",
        "channel",
        "kind",
        "event",
        "unit_count",
        "state_badge",
        "attempts",
        "changed_at",
        "why",
        "short_error",
    ]
    list_display_links = ["number"]
    list_select_related = ["order", "channel"]
    list_filter = [
        "state",
        "channel",
        "kind",
        "is_reverse",
        OrderFilter,
        recent_filter("created_at", "created"),
    ]
    sortable_by = ["number", "changed_at"]
    search_fields = ["channel_order_id"]  # the box only; get_search_results does exact lookups
    search_help_text = "Exact order code, channel order id or idempotency key."
    change_form_template = "admin/uniware/change_form.html"
    actions = ["retry_now", "discard"]
    object_actions = {
        "retry_now": lambda n: n.state in RETRYABLE,
        "discard": lambda n: n.state in RETRYABLE,
    }
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("number", "state_badge"),
                    ("order_link", "channel", "channel_order_id"),
                    ("kind", "event", "is_reverse", "unit_count"),
                    ("source_kind", "source_code"),
                    ("changed_at", "created_at"),
                    ("attempts", "rejections", "next_attempt_at", "delivered_at"),
                    ("channel_ref", "awaits"),
                    "waiting_for",
                    "last_error",
                    "idempotency_key",
                    ("discard_reason", "discarded_by", "discarded_at"),
                ]
            },
        ),
        ("Payload", {"fields": ["payload_pretty", "retry_item_ids"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [n for row in self.fieldsets for n in _flatten(row[1]["fields"])]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the page is read-only; changes go through the actions

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("notifications.retry_notification")

    def has_discard_permission(self, request) -> bool:
        return request.user.has_perm("notifications.discard_notification")

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="#", ordering="id")
    def number(self, n: Notification) -> str:
        return f"#{n.pk}"

    @admin.display(description="order", ordering="order_id")
    def order_link(self, n: Notification):
        return link(n.order)

    @admin.display(description="state", ordering="state")
    def state_badge(self, n: Notification):
        return state_badge(n)

    def get_queryset(self, request):
        """Each row knows its order's earliest open notification before it (one subquery on
        the (order, id) index), so the list says "held back by #57" without a query a row."""
        earlier = Notification.objects.filter(
            order_id=OuterRef("order_id"), id__lt=OuterRef("pk"), state__in=OPEN_STATES
        ).order_by("id")
        return (
            super().get_queryset(request).annotate(held_back_by=Subquery(earlier.values("id")[:1]))
        )

    @admin.display(description="why / when")
    def why(self, n: Notification) -> str:
        """Why it waits (or when it went), in the list itself."""
        if n.state == NotificationState.DELIVERED:
            return f"delivered {when(n.delivered_at)}"
        if n.state == NotificationState.FAILED:
            return "waits for staff: retry or discard"
        if n.state != NotificationState.PENDING:
            return "—"
        if getattr(n, "held_back_by", None):
            return f"held back by #{n.held_back_by}"
        if n.channel_ref:
            ref, again = n.channel_ref, when(n.next_attempt_at)
            return f"the channel processes it (ref {ref}): asked again {again}"
        if n.attempts and n.next_attempt_at > timezone.now():
            return f"back-off until {when(n.next_attempt_at)}"
        return f"due {when(n.next_attempt_at)}"

    @admin.display(description="last error")
    def short_error(self, n: Notification) -> str:
        text = n.discard_reason if n.state == NotificationState.DISCARDED else n.last_error
        return text if len(text) <= 80 else text[:77] + "…"

    @admin.display(description="payload")
    def payload_pretty(self, n: Notification):
        if n.payload is None:
            return "Built when first sent (the reverse pickup's units)."
        return format_html(
            '<pre style="white-space:pre-wrap;max-height:30em;overflow:auto">{}</pre>',
            json.dumps(n.payload, indent=2, ensure_ascii=False),
        )

    @admin.display(description="waiting for")
    def waiting_for(self, n: Notification):
        """Why a pending notification has not gone yet."""
        if n.state != NotificationState.PENDING:
            return "—"
        blocker = (
            Notification.objects.filter(
                order_id=n.order_id,
                id__lt=n.pk,
                state__in=[NotificationState.PENDING, NotificationState.FAILED],
            )
            .order_by("id")
            .first()
        )
        if blocker is not None:
            return format_html(
                "held back by the order's earlier {} ({})", link(blocker), blocker.state
            )
        if n.next_attempt_at > timezone.now():
            return f"back-off until {when(n.next_attempt_at)}"
        return "due: the next delivery round sends it"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        for name in ("order__code", "channel_order_id", "idempotency_key"):
            narrowed = queryset.filter(**{name: term})
            if narrowed.exists():
                return narrowed, False
        return queryset.none(), False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = [attempts_table(obj)]
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Retry the selected notifications now", permissions=["retry"])
    def retry_now(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        outcome = run_action(request, lambda: notifications_retry(ids, actor=request.user))
        report_outcome(
            request,
            outcome,
            done="Queued for delivery",
            failed="Could not retry",
            noun="notification",
        )

    @admin.action(description="Discard the selected notifications…", permissions=["discard"])
    def discard(self, request, queryset):
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        if request.POST.get("confirm_discard"):
            reason = request.POST.get("reason", "").strip()
            if reason:
                outcome = run_action(
                    request,
                    lambda: notifications_discard(ids, reason=reason, actor=request.user),
                )
                report_outcome(
                    request,
                    outcome,
                    done="Discarded",
                    failed="Could not discard",
                    noun="notification",
                )
                return None
            messages.error(request, "Give a reason for discarding.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Discard notifications",
            "opts": self.model._meta,
            "notifications": queryset.select_related("order").order_by("pk"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "return_to": request.POST.get("_return_to", ""),
        }
        return TemplateResponse(request, "admin/notifications/discard.html", context)


def attempts_table(n: Notification) -> Table:
    table = Table(
        "Attempts",
        ["#", "When", "Took", "Units", "HTTP", "Outcome", "Reply", "Error"],
        empty="Not sent yet.",
    )
    for a in n.attempt_log.order_by("number"):
        table.add(
            a.number,
            when(a.started_at),
            f"{a.duration_ms} ms",
            a.units,
            a.http_status or "—",
            status_badge(ATTEMPT_COLOUR.get(a.outcome, "UNFULFILLABLE"), a.get_outcome_display()),
            format_html("<code>{}</code>", a.reply[:300]) if a.reply else "—",
            a.error,
        )
    return table


def order_notifications_tables(order, request=None) -> list[Table]:
    """The order's notifications to its channel (latest first), for the order's page; no
    table for an order without any (its channel takes none, or nothing happened yet)."""
    table = order_notifications_table(order, request)
    return [table] if table.rows else []


def order_notifications_table(order, request=None) -> Table:
    table = Table(
        "Channel notifications",
        ["#", "What", "Changed", "Units", "State", "Attempts", "Delivered / next", "Last error"],
        empty="Nothing sent to the channel for this order.",
    )
    rows = list(order.channel_notifications.order_by("-id")[: ORDER_TABLE_LIMIT + 1])
    can_view = request is None or request.user.has_perm("notifications.view_notification")
    for n in rows[:ORDER_TABLE_LIMIT]:
        what = f"{n.get_kind_display()}: {n.event}" + (" (reverse)" if n.is_reverse else "")
        when_text = when(n.delivered_at) if n.delivered_at else when(n.next_attempt_at)
        if n.state in (NotificationState.FAILED, NotificationState.DISCARDED):
            when_text = "—"
        table.add(
            link(n, f"#{n.pk}") if can_view else f"#{n.pk}",
            format_html("{} <span class='quiet'>{}</span>", what, n.source_code),
            when(n.changed_at),
            n.unit_count,
            state_badge(n),
            n.attempts,
            when_text,
            n.discard_reason if n.state == NotificationState.DISCARDED else n.last_error[:120],
        )
    if rows and can_view:
        more = changelist_url(Notification, order=order.pk)
        shown = f"the latest {ORDER_TABLE_LIMIT}" if len(rows) > ORDER_TABLE_LIMIT else "all"
        table.note = format_html('Showing {}. <a href="{}">Open in the list</a>.', shown, more)
    return table


def _flatten(fields):
    for item in fields:
        if isinstance(item, list | tuple):
            yield from item
        else:
            yield item
