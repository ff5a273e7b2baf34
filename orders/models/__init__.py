"""Orders, their units, shipments, invoices, picklists and manifests.

Every status field is a django-fsm `FSMField` that is not editable; statuses change only
through the transitions declared here, applied by the services (`uniware.core.fsm`).
"""

from .channel_label import ChannelLabel
from .invoice import CURRENT_SALE, Invoice, InvoiceDocument, InvoiceLine, InvoiceType
from .manifest import Manifest, ManifestStatus
from .order import (
    PHONE_DIGITS,
    Order,
    OrderItem,
    OrderItemStatus,
    OrderKind,
    OrderStatus,
    ReshipOption,
)
from .picklist import Picklist, PicklistDestination, PicklistItem, PicklistStatus
from .returns import (
    ReturnManifest,
    ReturnManifestItem,
    ReturnManifestStatus,
    ReversePickup,
    ReversePickupItem,
    ReversePickupStatus,
)
from .shipment import Shipment, ShipmentStatus

__all__ = [
    "CURRENT_SALE",
    "ChannelLabel",
    "Invoice",
    "InvoiceDocument",
    "InvoiceLine",
    "InvoiceType",
    "Manifest",
    "ManifestStatus",
    "Order",
    "PHONE_DIGITS",
    "OrderItem",
    "OrderItemStatus",
    "OrderKind",
    "OrderStatus",
    "Picklist",
    "PicklistDestination",
    "PicklistItem",
    "PicklistStatus",
    "ReshipOption",
    "ReturnManifest",
    "ReturnManifestItem",
    "ReturnManifestStatus",
    "ReversePickup",
    "ReversePickupItem",
    "ReversePickupStatus",
    "Shipment",
    "ShipmentStatus",
]
