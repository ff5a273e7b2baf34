"""Business operations on orders. Each is atomic, locks rows in the order of `orders.locks`,
changes statuses only through declared transitions and records who did what.

Import from here: `from orders.services import allocate_units, manifest_close, ...`.
"""

from .allocation import allocate_units, reallocate_waiting_units
from .fulfilment import (
    manifest_add_shipments,
    manifest_close,
    manifest_create,
    manifest_discard,
    manifest_remove_shipments,
    picklist_create,
    picklist_receive,
    shipments_deliver,
    shipments_force_dispatch,
    shipments_generate_label,
    shipments_invoice,
    shipments_manifest,
    shipments_ship,
)
from .orders import (
    LineInput,
    OrderInput,
    determine_order_status,
    order_accept,
    order_create,
    orders_create,
    orders_hold,
    orders_refresh_status,
    orders_unhold,
)
from .serviceability import shipments_recheck_serviceability
from .shipments import shipment_split, shipments_merge

__all__ = [
    "LineInput",
    "OrderInput",
    "allocate_units",
    "determine_order_status",
    "manifest_add_shipments",
    "manifest_close",
    "manifest_create",
    "manifest_discard",
    "manifest_remove_shipments",
    "order_accept",
    "order_create",
    "orders_create",
    "orders_hold",
    "orders_refresh_status",
    "orders_unhold",
    "picklist_create",
    "picklist_receive",
    "reallocate_waiting_units",
    "shipment_split",
    "shipments_deliver",
    "shipments_force_dispatch",
    "shipments_generate_label",
    "shipments_invoice",
    "shipments_manifest",
    "shipments_merge",
    "shipments_recheck_serviceability",
    "shipments_ship",
]
