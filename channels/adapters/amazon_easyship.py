"""Amazon Easy Ship (API 2022-03-23): booking the package of an order Amazon ships.

An Easy Ship order (merchant-fulfilled, `EasyShipShipmentStatus` set) is packed in our
warehouse and collected by Amazon's carrier. Amazon gives it a tracking number and a label
only once the seller schedules the package:

1. `listHandoverSlots` with the package's dimensions and weight: the time slots in which the
   carrier can collect it (or the seller drop it off);
2. `createScheduledPackageBulk` for the first slot, labels as PDF: the scheduled package
   (its `trackingDetails.trackingId`), or the order rejected with Amazon's reason, and a
   pre-signed URL of a ZIP file holding the label (and the documents the marketplace adds);
3. the ZIP downloaded: its first PDF is the label we print instead of ours.

An order Amazon scheduled already (a booking whose answer was lost) is read back with
`getScheduledPackage`: its tracking number, but no label (Amazon gives it again only on Seller
Central), which printing says.

The package's size and weight come from the API setting `easy_ship_package`
(`{"length": cm, "width": cm, "height": cm, "weight": grams}`, default a 25×20×10 cm box of
500 g): shipments carry no measurements yet. Rate limits: 1 call a second, burst 5, each.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from .base import BookedShipment, ChannelReplyError, ChannelRequestError
from .parse import describe

EASY_SHIP = "/easyShip/2022-03-23"
EASY_SHIP_PLANS = {
    "listHandoverSlots": (1.0, 5),
    "createScheduledPackageBulk": (1.0, 5),
    "getScheduledPackage": (1.0, 5),
}
PACKAGE = {"length": 25.0, "width": 20.0, "height": 10.0, "weight": 500.0}
CARRIER = "Amazon Easy Ship"


class AmazonEasyShip:
    """The Easy Ship half of `AmazonSpApiAdapter` (a mixin: it uses the adapter's calls)."""

    config: Any
    marketplace: str
    books_shipments = True

    def book_shipment(self, order_id: str, item_ids: list[str]) -> BookedShipment:
        """Schedule the package for the first slot Amazon offers; its tracking and label."""
        self._start_budget()
        what = f"Channel {self.config.code}: Easy Ship booking of order {order_id}"
        size = {**PACKAGE, **(self.config.settings.get("easy_ship_package") or {})}
        slots = (
            self._easy_ship(
                "listHandoverSlots",
                "/timeSlot",
                {
                    "marketplaceId": self.marketplace,
                    "amazonOrderId": order_id,
                    "packageDimensions": {
                        "length": float(size["length"]),
                        "width": float(size["width"]),
                        "height": float(size["height"]),
                        "unit": "cm",
                    },
                    "packageWeight": {"value": float(size["weight"]), "unit": "g"},
                },
                what,
            ).get("timeSlots")
            or []
        )
        if not slots:
            raise ChannelRequestError(f"{what}: Amazon offers no handover slot")
        slot = slots[0]
        booked = self._easy_ship(
            "createScheduledPackageBulk",
            "/packages/bulk",
            {
                "marketplaceId": self.marketplace,
                "labelFormat": "PDF",
                "orderScheduleDetailsList": [
                    {
                        "amazonOrderId": order_id,
                        "packageDetails": {
                            "packageItems": [{"orderItemId": i} for i in dict.fromkeys(item_ids)],
                            "packageTimeSlot": {"slotId": slot["slotId"]},
                        },
                    }
                ],
            },
            what,
        )
        return self._booked(booked, order_id, slot, what)

    def _easy_ship(self, operation: str, path: str, body: dict, what: str) -> dict:
        """One Easy Ship call, tried again while transient; a refusal raises
        ChannelRequestError quoting Amazon's error (code and message)."""
        return self._step("POST", EASY_SHIP + path, operation, what, False, body=body)

    def _booked(self, booked: dict, order_id: str, slot: dict, what: str) -> BookedShipment:
        rejected = booked.get("rejectedOrders") or []
        if rejected:
            error = (rejected[0] or {}).get("error") or {}
            if error.get("code") == "ScheduledPackageAlreadyExists":
                return self._booked_before(order_id, what)
            reason = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
            raise ChannelRequestError(f"{what}: Amazon rejected it ({reason or 'no reason'})")
        packages = booked.get("scheduledPackages") or []
        tracking = ((packages[0] if packages else {}).get("trackingDetails") or {}).get(
            "trackingId"
        )
        url = booked.get("printableDocumentsUrl")
        if not tracking or not url:
            raise ChannelReplyError(f"{what}: no tracking id or label in {describe(booked)}")
        label = _first_pdf(self._transfer("GET", str(url), None, what), what)
        return BookedShipment(CARRIER, str(tracking), label, _handover(slot))

    def _booked_before(self, order_id: str, what: str) -> BookedShipment:
        """Amazon scheduled the order already (our record of it was lost): its tracking
        number from getScheduledPackage; its label is reprinted on Seller Central (no call
        gives a scheduled package's label again)."""
        path = f"{EASY_SHIP}/package"
        params = {"amazonOrderId": order_id, "marketplaceId": self.marketplace}
        package = self._step("GET", path, "getScheduledPackage", what, False, params=params)
        tracking = (package.get("trackingDetails") or {}).get("trackingId")
        if not tracking:
            raise ChannelReplyError(f"{what}: no tracking id in {describe(package)}")
        return BookedShipment(
            CARRIER, str(tracking), b"", _handover(package.get("packageTimeSlot") or {})
        )


def _handover(slot: dict) -> str:
    when = f"{slot.get('startTime', '')} – {slot.get('endTime', '')}"
    return f"{slot.get('handoverMethod', 'PICKUP')} {when}".strip()


def _first_pdf(archive: bytes, what: str) -> bytes:
    """The label: the first PDF of the ZIP Amazon gives (labels, then invoices)."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            names = sorted(n for n in zipped.namelist() if n.lower().endswith(".pdf"))
            if names:
                return zipped.read(names[0])
    except zipfile.BadZipFile as exc:
        raise ChannelReplyError(f"{what}: the printable documents are not a ZIP ({exc})") from None
    raise ChannelReplyError(f"{what}: the printable documents hold no PDF label")
