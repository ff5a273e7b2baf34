"""Labels of packages the channel ships and books (Amazon Easy Ship): booked when staff label.

An order the channel ships (`third_party_shipping`) gets its carrier and tracking number from
the channel. Most channels send them with the order; Amazon gives an Easy Ship order its
tracking number and label only when the seller books the package (`adapter.book_shipment`).
So labelling a PACKED shipment of such a channel first books it:

    outcome = shipments_label_with_channel(ids, actor=user)   # admin actions, packing station

- `shipments_book_with_channel` asks the channel, one shipment at a time, in no transaction
  of its own (a booking is a few HTTP calls at 1 a second); each answer is recorded in its
  own short transaction, the shipment locked (orders.locks): its tracking number, the
  carrier as a shipping provider (made on first use, code `AMAZON_EASY_SHIP`), and the
  channel's label (`ChannelLabel`), which printing uses instead of ours. A shipment that got
  a tracking number meanwhile keeps it. A refusal names the shipment and the channel's reason;
  the others go on. One call books for `BOOKING_SECONDS` at most (a web request must end
  before the server's timeout): the shipments left are named, to label again.
- `shipments_label_with_channel` books, then labels (`shipments_generate_label`) all but the
  shipments whose booking failed.

Shipments that need no booking (not PACKED, a tracking number already, a channel that books
nothing) cost one query and no call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from django.db import transaction

from channels.adapters import ChannelError, adapter_class, adapter_for
from inventory.models import ShippingProvider
from uniware.core.results import Outcome

from ..locks import lock_shipments
from ..models import ChannelLabel, Shipment, ShipmentStatus
from .fulfilment import shipments_generate_label

log = logging.getLogger(__name__)

PROVIDER_CODES = {"Amazon Easy Ship": "AMAZON_EASY_SHIP"}
# A request books for this long at most (under a web server's 30 s timeout); the rest wait.
BOOKING_SECONDS = 20.0
LATER = "not booked yet: the channel books about one package a second; label it again"


def shipments_to_book(shipment_ids: Iterable[int]) -> list[Shipment]:
    """The shipments among these that their channel must book before they are labelled."""
    candidates = Shipment.objects.filter(
        pk__in=list(shipment_ids),
        status=ShipmentStatus.PACKED,
        tracking_number="",
        order__third_party_shipping=True,
    ).select_related("order__channel")
    return [
        s
        for s in candidates.order_by("pk")
        if adapter_class(s.order.channel.channel_type).books_shipments
    ]


def shipments_book_with_channel(shipment_ids: Iterable[int]) -> Outcome:
    """Book with their channel the shipments it must book; see the module docstring. Who
    did it is recorded by the label that follows (its READY_TO_SHIP state change)."""
    outcome = Outcome()
    deadline = time.monotonic() + BOOKING_SECONDS
    for n, shipment in enumerate(shipments_to_book(shipment_ids)):
        if n and time.monotonic() > deadline:  # the first is always tried
            outcome.fail(shipment.code, LATER)
            continue
        order = shipment.order
        items = list(shipment.items.values_list("channel_order_item_id", flat=True))
        try:
            booked = adapter_for(order.channel).book_shipment(order.channel_order_id, items)
        except ChannelError as exc:
            outcome.fail(shipment.code, f"{order.channel.code} did not book it: {exc}")
            continue
        except Exception as exc:  # a bug must not stop the others: name it, go on
            log.exception("booking shipment %s failed", shipment.code)
            outcome.fail(shipment.code, f"booking failed unexpectedly: {exc!r}")
            continue
        if _record(shipment.pk, booked):
            outcome.done.append(shipment)
    return outcome


def _record(shipment_id: int, booked) -> bool:
    """The booking on the shipment, unless it got a tracking number meanwhile."""
    code = PROVIDER_CODES.get(booked.carrier) or booked.carrier.upper().replace(" ", "_")[:40]
    with transaction.atomic():
        (shipment,) = lock_shipments([shipment_id])
        if shipment.tracking_number:
            return False
        provider, _ = ShippingProvider.objects.get_or_create(
            code=code, defaults={"name": booked.carrier[:100]}
        )
        shipment.tracking_number = booked.tracking_number[:60]
        shipment.shipping_provider = provider
        shipment.save(update_fields=["tracking_number", "shipping_provider"])
        ChannelLabel.objects.update_or_create(
            shipment=shipment,
            defaults={
                "carrier": booked.carrier[:100],
                "tracking_number": booked.tracking_number[:60],
                "handover": booked.handover[:200],
                "pdf": booked.label_pdf,
            },
        )
    return True


def shipments_label_with_channel(shipment_ids: Iterable[int], *, actor=None) -> Outcome:
    """Book what the channel must book, then label all but the shipments it refused."""
    ids = list(shipment_ids)
    booking = shipments_book_with_channel(ids)
    refused = {code for code, _ in booking.failed}
    codes = dict(Shipment.objects.filter(pk__in=ids).values_list("pk", "code"))
    labelled = shipments_generate_label(
        [pk for pk in ids if codes.get(pk) not in refused], actor=actor
    )
    labelled.failed = booking.failed + labelled.failed
    return labelled
