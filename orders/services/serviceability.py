"""Re-checking LOCATION_NOT_SERVICEABLE shipments after serviceability rows or provider
mappings change (an upload, a new courier)."""

from __future__ import annotations

from django.db import transaction

from uniware.core.actors import Actor
from uniware.core.db import bulk_set
from uniware.core.fsm import apply_transitions
from uniware.core.results import Outcome

from ..locks import lock_items, lock_shipments
from ..models import OrderItemStatus, ShipmentStatus
from .allocation import _providers_by_route


def shipments_recheck_serviceability(shipment_ids, *, actor=None) -> Outcome:
    """Shipments that a provider now serves go back to CREATED with their provider, and
    their units to FULFILLABLE (they kept their stock)."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        shipments = lock_shipments(shipment_ids)
        waiting = []
        for s in shipments:
            if s.status != ShipmentStatus.LOCATION_NOT_SERVICEABLE:
                outcome.fail(s, f"shipment is {s.status}, not LOCATION_NOT_SERVICEABLE")
            else:
                waiting.append(s)
        routes = {(s.order.ship_pincode, s.order.payment_method) for s in waiting}
        providers = _providers_by_route({s.facility_id for s in waiting}, routes)
        ok = []
        for s in waiting:
            provider = providers.get((s.facility_id, s.order.ship_pincode, s.order.payment_method))
            if provider is None and not s.order.third_party_shipping:
                outcome.fail(
                    s,
                    f"still no provider of {s.facility} serves pincode {s.order.ship_pincode} "
                    f"for {s.order.payment_method}",
                )
                continue
            s.shipping_provider_id = provider
            ok.append(s)
        units = lock_items(
            shipment_id__in=[s.pk for s in ok], status=OrderItemStatus.LOCATION_NOT_SERVICEABLE
        )
        if ok:
            bulk_set(type(ok[0]), ok, ["shipping_provider"])
        apply_transitions(ok, "mark_serviceable", actor=actor, reason="serviceability re-checked")
        apply_transitions(units, "allocate", actor=actor, reason="serviceability re-checked")
        outcome.done = ok
    return outcome
