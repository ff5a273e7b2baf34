"""Business operations on orders. Each is atomic, locks rows in the order of `orders.locks`,
changes statuses only through declared transitions and records who did what.

Import from here: `from orders.services import allocate_units, manifest_close, ...`.
"""

from .allocation import allocate_units, reallocate_waiting_units
from .cancellation import orders_cancel, units_cancel, units_cancelled
from .channel_dispatch import units_dispatch_from_channel as units_dispatch_from_channel
from .channel_labels import shipments_book_with_channel, shipments_label_with_channel
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
from .picking import NotFoundThen, picklist_receive_partial
from .repacking import shipments_repacked
from .returns.courier import (
    return_manifest_add_shipments,
    return_manifest_close,
    return_manifest_create,
    shipments_expect_return,
    shipments_mark_returned,
    shipments_receive_return,
)
from .returns.follow_ups import units_replace, units_reship
from .returns.pickups import (
    reverse_pickup_allocate_courier,
    reverse_pickup_create,
    reverse_pickups_cancel,
    reverse_pickups_complete,
    reverse_pickups_mark_not_received,
)
from .serviceability import shipments_recheck_serviceability
from .shipments import shipment_split, shipments_merge

__all__ = [
    "shipments_book_with_channel",
    "shipments_label_with_channel",
    "LineInput",
    "NotFoundThen",
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
    "orders_cancel",
    "orders_create",
    "orders_hold",
    "orders_refresh_status",
    "orders_unhold",
    "picklist_create",
    "picklist_receive",
    "picklist_receive_partial",
    "reallocate_waiting_units",
    "return_manifest_add_shipments",
    "return_manifest_close",
    "return_manifest_create",
    "reverse_pickup_allocate_courier",
    "reverse_pickup_create",
    "reverse_pickups_cancel",
    "reverse_pickups_complete",
    "reverse_pickups_mark_not_received",
    "shipment_split",
    "shipments_deliver",
    "shipments_expect_return",
    "shipments_force_dispatch",
    "shipments_generate_label",
    "shipments_invoice",
    "shipments_manifest",
    "shipments_mark_returned",
    "shipments_merge",
    "shipments_receive_return",
    "shipments_recheck_serviceability",
    "shipments_repacked",
    "shipments_ship",
    "units_cancel",
    "units_cancelled",
    "units_replace",
    "units_reship",
]
