"""`{% uniware_dashboard %}`: the warehouse dashboard on the admin's front page.

Figures come from `orders.selectors.dashboard_figures` (cached for 30 s); each bar links to
the changelist filtered to what it counts, when the user may view that list.
"""

from __future__ import annotations

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
SS = ShipmentStatus
TOP_CHANNELS = 10


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

    by_status = Panel("Orders by status", note=f"{figures.orders_total:,} orders in all")
    for status in OrderStatus:
        by_status.bars.append(
            Bar(
                status.label,
                figures.orders_by_status.get(status, 0),
                url(Order, status__exact=status.value),
                status_colour(status.value),
            )
        )
    by_channel = Panel("Orders by channel")
    for pk, code, n in figures.orders_by_channel[:TOP_CHANNELS]:
        by_channel.bars.append(Bar(code, n, url(Order, channel__id__exact=pk)))
    if len(figures.orders_by_channel) > TOP_CHANNELS:
        by_channel.note = f"Top {TOP_CHANNELS} of {len(figures.orders_by_channel)} channels"

    ship = figures.shipments_by_status
    work = Panel("Work waiting, step by step", note="Shipments unless said otherwise")
    steps = [
        (
            "To pick",
            ship.get(SS.CREATED, 0),
            url(Shipment, status__exact=SS.CREATED),
            "create a picklist",
        ),
        (
            "Picklists to receive",
            figures.picklists_to_receive,
            url(Picklist, status__exact=PicklistStatus.CREATED),
            "picklists",
        ),
        (
            "Being picked",
            ship.get(SS.PICKING, 0),
            url(Shipment, status__exact=SS.PICKING),
            "receive their picklist",
        ),
        (
            "To invoice",
            ship.get(SS.PICKED, 0),
            url(Shipment, status__exact=SS.PICKED),
            "invoice and pack",
        ),
        (
            "To label",
            ship.get(SS.PACKED, 0),
            url(Shipment, status__exact=SS.PACKED),
            "generate label",
        ),
        (
            "To manifest",
            ship.get(SS.READY_TO_SHIP, 0),
            url(Shipment, status__exact=SS.READY_TO_SHIP),
            "add to manifest",
        ),
        (
            "On open manifests",
            ship.get(SS.MANIFESTED, 0),
            url(Shipment, status__exact=SS.MANIFESTED),
            "close the manifest",
        ),
        (
            "Open manifests to close",
            figures.manifests_open,
            url(Manifest, status__exact=ManifestStatus.CREATED),
            "manifests",
        ),
    ]
    for label, n, link, hint in steps:
        work.bars.append(Bar(label, n, link, "#1f5f99", hint))

    attention = Panel("Needs attention")
    attention.bars = [
        Bar(
            "Unfulfillable units",
            figures.units_by_status.get(OrderItemStatus.UNFULFILLABLE, 0),
            url(OrderItem, status__exact=OrderItemStatus.UNFULFILLABLE),
            "#b45f06",
            "no stock in any facility",
        ),
        Bar(
            "Not serviceable units",
            figures.units_by_status.get(OrderItemStatus.LOCATION_NOT_SERVICEABLE, 0),
            url(OrderItem, status__exact=OrderItemStatus.LOCATION_NOT_SERVICEABLE),
            "#b45f06",
            "no provider serves the pincode",
        ),
        Bar(
            "Orders on hold",
            figures.orders_on_hold,
            url(Order, on_hold__exact=1),
            "#b45f06",
            "open orders",
        ),
        Bar(
            "Orders pending verification",
            figures.orders_by_status.get(OrderStatus.PENDING_VERIFICATION, 0),
            url(Order, status__exact=OrderStatus.PENDING_VERIFICATION),
            "#b45f06",
            "accept them",
        ),
    ]
    return [p.scale() for p in (work, attention, by_status, by_channel)]


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
