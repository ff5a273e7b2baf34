"""Amazon Easy Ship (2022-03-23) for the Amazon dialect: handover slots and scheduled packages.

- `listHandoverSlots` answers two pickup slots for an Easy Ship order of the channel (an
  order with `thirdPartyShipping`), none (404 TimeSlotNotAvailable) when the channel's
  `easyShipSlots` is off, 404 ResourceNotFound for an order it does not have.
- `createScheduledPackageBulk` schedules each order once: a tracking id (`AMZEZ` + a number)
  and, for the request, a pre-signed URL (the Feeds API's document store) of a ZIP holding a
  one-page PDF label per package, which reads "AMAZON EASY SHIP", the order and the tracking
  id. An order scheduled before, unknown, or not Easy Ship is in `rejectedOrders` with
  Amazon's code.
- `getScheduledPackage` (amazonOrderId, marketplaceId) answers the scheduled package, or 404.
"""

from __future__ import annotations

import io
import secrets
import threading
import zipfile
from typing import Any

from . import NativeRequest, Reply
from . import amazon_shapes as shapes
from .shapes import problems

OPERATIONS = {  # (method, path): operation
    ("POST", "/easyShip/2022-03-23/timeSlot"): "listHandoverSlots",
    ("POST", "/easyShip/2022-03-23/packages/bulk"): "createScheduledPackageBulk",
    ("GET", "/easyShip/2022-03-23/package"): "getScheduledPackage",
}


def error(status: int, code: str, message: str) -> Reply:
    return status, {"errors": [{"code": code, "message": message}]}, {}


class EasyShipApi:
    """Scheduled packages of every channel, by (store, channel, order)."""

    def __init__(self, settings, feeds) -> None:
        self.settings = settings  # a channel's Amazon settings (`amazon.settings`)
        self.feeds = feeds  # its documents hold the labels' ZIP files
        self.lock = threading.Lock()
        self.packages: dict[tuple[int, str, str], dict] = {}

    def _easy_ship_order(self, request: NativeRequest, order_id: str) -> dict | None:
        try:
            order = request.store.get_order(request.code, order_id)
        except Exception:  # noqa: BLE001 (the store's unknown order)
            return None
        return order if order.get("thirdPartyShipping") else None

    def op_listHandoverSlots(self, request: NativeRequest) -> Reply:
        found = problems(request.body, shapes.LIST_HANDOVER_SLOTS)
        if found:
            return error(400, "InvalidInput", "; ".join(found))
        order_id = request.body["amazonOrderId"]
        if self._easy_ship_order(request, order_id) is None:
            return error(404, "ResourceNotFound", f"Easy Ship order {order_id} not found")
        if not self.settings(request.store, request.code)["easyShipSlots"]:
            return error(404, "TimeSlotNotAvailable", "No time slot is available")
        today = request.store.now().date().isoformat()
        slots = [
            {
                "slotId": f"SLOT-{order_id}-{n}",
                "startTime": f"{today}T{10 + 2 * n:02d}:00:00+05:30",
                "endTime": f"{today}T{12 + 2 * n:02d}:00:00+05:30",
                "handoverMethod": "PICKUP",
            }
            for n in range(2)
        ]
        return 200, {"amazonOrderId": order_id, "timeSlots": slots}, {}

    def op_createScheduledPackageBulk(self, request: NativeRequest) -> Reply:
        found = problems(request.body, shapes.CREATE_SCHEDULED_PACKAGES)
        if found:
            return error(400, "InvalidInput", "; ".join(found))
        scheduled, rejected, labels = [], [], []
        for details in request.body["orderScheduleDetailsList"]:
            order_id = details["amazonOrderId"]
            why = self._refusal(request, order_id)
            if why:
                rejected.append({"amazonOrderId": order_id, "error": why})
                continue
            package = self._schedule(request, order_id, details.get("packageDetails") or {})
            scheduled.append(package)
            labels.append((order_id, package["trackingDetails"]["trackingId"]))
        reply: dict[str, Any] = {"scheduledPackages": scheduled, "rejectedOrders": rejected}
        if labels:
            document = self.feeds.document(request, "application/zip", _labels_zip(labels))
            reply["printableDocumentsUrl"] = document["url"]
        return 200, reply, {}

    def op_getScheduledPackage(self, request: NativeRequest) -> Reply:
        order_id = request.q("amazonOrderId") or ""
        marketplace = self.settings(request.store, request.code)["marketplaceId"]
        if not order_id or request.q("marketplaceId") != marketplace:
            return error(400, "InvalidInput", "amazonOrderId and marketplaceId are required")
        package = self.packages.get((id(request.store), request.code, order_id))
        if package is None:
            return error(404, "ResourceNotFound", f"no package scheduled for order {order_id}")
        return 200, package, {}

    def _refusal(self, request: NativeRequest, order_id: str) -> dict | None:
        if self._easy_ship_order(request, order_id) is None:
            return {"code": "ResourceNotFound", "message": f"Easy Ship order {order_id} not found"}
        if (id(request.store), request.code, order_id) in self.packages:
            return {
                "code": "ScheduledPackageAlreadyExists",
                "message": "The order has already been scheduled.",
            }
        return None

    def _schedule(self, request: NativeRequest, order_id: str, details: dict) -> dict:
        package = {
            "scheduledPackageId": {"amazonOrderId": order_id, "packageId": secrets.token_hex(8)},
            "packageDimensions": {"length": 25.0, "width": 20.0, "height": 10.0, "unit": "cm"},
            "packageWeight": {"value": 500.0, "unit": "g"},
            "packageItems": details.get("packageItems") or [],
            "packageTimeSlot": details.get("packageTimeSlot") or {},
            "packageStatus": "ReadyForPickup",
            "trackingDetails": {"trackingId": f"AMZEZ{secrets.randbelow(10**10):010d}"},
        }
        with self.lock:
            self.packages[id(request.store), request.code, order_id] = package
        return package


def _labels_zip(labels: list[tuple[str, str]]) -> bytes:
    """A ZIP with one PDF label a package (and, as Amazon.in adds, nothing else here)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for order_id, tracking in labels:
            text = ["AMAZON EASY SHIP", f"Order {order_id}", f"AWB {tracking}"]
            zipped.writestr(f"{order_id}-label.pdf", one_page_pdf(text))
    return buffer.getvalue()


def one_page_pdf(lines: list[str]) -> bytes:
    """A 4x6 inch PDF page with these lines in Helvetica (standard library only)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = " ".join(f"({escape(line)}) Tj 0 -24 Td" for line in lines)
    content = f"BT /F1 16 Tf 24 380 Td {shown} ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 288 432] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out + trailer.encode()
