"""`{% uniware_dashboard %}`: the warehouse dashboard on the admin's front page.

Figures come from `orders.selectors.dashboard_figures` (cached for 30 s); each bar links to
the changelist filtered to what it counts, when the user may view that list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django import template
from django.utils import timezone

from uniware.core.admin_utils import changelist_url, status_colour

from .. import selectors
from ..models import (
    Manifest,
    ManifestStatus,
    Order,
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)

register = template.Library()
TOP_CHANNELS = 10
ATTENTION_COLOUR = "#b45f06"
UrlFor = Callable[..., str]  # (model, **filters) -> changelist URL, or "" when not viewable


@dataclass
class Bar:
    label: str
    count: int
    url: str = ""
    colour: str = "#1f5f99"
    hint: str = ""
    percent: float = 0.0


@dataclass
class Panel:
    title: str
    bars: list[Bar] = field(default_factory=list)
    note: str = ""

    def scale(self) -> Panel:
        top = max((b.count for b in self.bars), default=0)
        for bar in self.bars:
            bar.percent = round(100 * bar.count / top, 1) if top else 0.0
        return self

    @property
    def total(self) -> int:
        return sum(b.count for b in self.bars)


def _can_view(user, model) -> bool:
    meta = model._meta
    return user.has_perm(f"{meta.app_label}.view_{meta.model_name}") or user.has_perm(
        f"{meta.app_label}.change_{meta.model_name}"
    )


def build_panels(figures: selectors.DashboardFigures, user) -> list[Panel]:
    def url(model, **params) -> str:
        return changelist_url(model, **params) if _can_view(user, model) else ""

    panels = (
        _work_panel(figures, url),
        _attention_panel(figures, url),
        _status_panel(figures, url),
        _channel_panel(figures, url),
    )
    return [p.scale() for p in panels]


def _work_panel(figures: selectors.DashboardFigures, url: UrlFor) -> Panel:
    """Shipments (and picklists, manifests) waiting at each step of the forward flow."""

    def shipments(label: str, status: str, hint: str) -> Bar:
        n = figures.shipments_by_status.get(status, 0)
        return Bar(label, n, url(Shipment, status__exact=status), hint=hint)

    bars = [
        shipments("To pick", ShipmentStatus.CREATED, "create a picklist"),
        Bar(
            "Picklists to receive",
            figures.picklists_to_receive,
            url(Picklist, status__exact=PicklistStatus.CREATED),
            hint="picklists",
        ),
        shipments("Being picked", ShipmentStatus.PICKING, "receive their picklist"),
        shipments("To invoice", ShipmentStatus.PICKED, "invoice and pack"),
        shipments("To label", ShipmentStatus.PACKED, "generate label"),
        shipments("To manifest", ShipmentStatus.READY_TO_SHIP, "add to manifest"),
        shipments("On open manifests", ShipmentStatus.MANIFESTED, "close the manifest"),
        Bar(
            "Open manifests to close",
            figures.manifests_open,
            url(Manifest, status__exact=ManifestStatus.CREATED),
            hint="manifests",
        ),
    ]
    return Panel("Work waiting, step by step", bars, note="Shipments unless said otherwise")


def _attention_panel(figures: selectors.DashboardFigures, url: UrlFor) -> Panel:
    """Units and orders that wait for a person, not for the next step."""
    units, orders = figures.units_by_status, figures.orders_by_status
    unfulfillable = OrderItemStatus.UNFULFILLABLE
    not_serviceable = OrderItemStatus.LOCATION_NOT_SERVICEABLE
    pending = OrderStatus.PENDING_VERIFICATION
    bars = [
        Bar(
            "Unfulfillable units",
            units.get(unfulfillable, 0),
            url(OrderItem, status__exact=unfulfillable),
            hint="no stock in any facility",
        ),
        Bar(
            "Not serviceable units",
            units.get(not_serviceable, 0),
            url(OrderItem, status__exact=not_serviceable),
            hint="no provider serves the pincode",
        ),
        Bar(
            "Orders on hold",
            figures.orders_on_hold,
            url(Order, on_hold__exact=1),
            hint="open orders",
        ),
        Bar(
            "Orders pending verification",
            orders.get(pending, 0),
            url(Order, status__exact=pending),
            hint="accept them",
        ),
    ]
    for bar in bars:
        bar.colour = ATTENTION_COLOUR
    return Panel("Needs attention", bars)


def _status_panel(figures: selectors.DashboardFigures, url: UrlFor) -> Panel:
    panel = Panel("Orders by status", note=f"{figures.orders_total:,} orders in all")
    for status in OrderStatus:
        panel.bars.append(
            Bar(
                status.label,
                figures.orders_by_status.get(status, 0),
                url(Order, status__exact=status.value),
                status_colour(status.value),
            )
        )
    return panel


def _channel_panel(figures: selectors.DashboardFigures, url: UrlFor) -> Panel:
    """The channels with the most orders."""
    panel = Panel("Orders by channel")
    for pk, code, n in figures.orders_by_channel[:TOP_CHANNELS]:
        panel.bars.append(Bar(code, n, url(Order, channel__id__exact=pk)))
    if len(figures.orders_by_channel) > TOP_CHANNELS:
        panel.note = f"Top {TOP_CHANNELS} of {len(figures.orders_by_channel)} channels"
    return panel


@register.inclusion_tag("admin/uniware/dashboard.html", takes_context=True)
def uniware_dashboard(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (_can_view(user, Order) or _can_view(user, Shipment)):
        return {"show": False}
    figures = selectors.dashboard_figures()
    return {
        "show": True,
        "panels": build_panels(figures, user),
        "order_status_strip": [
            (
                status.label,
                n,
                status_colour(status.value),
                round(100 * n / figures.orders_total, 2) if figures.orders_total else 0,
            )
            for status in OrderStatus
            if (n := figures.orders_by_status.get(status, 0))
        ],
        "computed_at": timezone.localtime(figures.computed_at),
        "ttl": selectors.DASHBOARD_TTL_SECONDS,
    }
