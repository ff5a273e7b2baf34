"""Orders, their units, shipments, invoices, picklists and manifests.

Every status field is a django-fsm `FSMField` that is not editable; statuses change only
through the transitions declared here, applied by the services (`uniware.core.fsm`).
"""

from .manifest import Manifest, ManifestStatus
from .order import Order, OrderItem, OrderItemStatus, OrderStatus
from .picklist import Picklist, PicklistDestination, PicklistItem, PicklistStatus
from .shipment import Invoice, InvoiceType, Shipment, ShipmentStatus

__all__ = [
    "Invoice",
    "InvoiceType",
    "Manifest",
    "ManifestStatus",
    "Order",
    "OrderItem",
    "OrderItemStatus",
    "OrderStatus",
    "Picklist",
    "PicklistDestination",
    "PicklistItem",
    "PicklistStatus",
    "Shipment",
    "ShipmentStatus",
]
