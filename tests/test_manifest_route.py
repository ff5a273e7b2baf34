"""One open manifest per route (facility, channel, provider); none left empty."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from orders.models import Manifest, ManifestStatus, Shipment
from orders.services import manifest_create, orders_hold, shipments_manifest

from .test_fulfilment import to_ready


def ready_shipments(world, n: int) -> list[Shipment]:
    orders = [world.order(f"MR-{k}", 1) for k in range(n)]
    shipments = [Shipment.objects.get(order=o) for o in orders]
    to_ready(shipments)
    return shipments


def test_opening_a_second_manifest_for_the_route_is_refused_naming_the_open_one(world):
    first = manifest_create(
        facility=world.facility, channel=world.channel, shipping_provider=world.provider
    )
    with pytest.raises(ValidationError, match=f"Manifest {first.code} is already open"):
        manifest_create(
            facility=world.facility, channel=world.channel, shipping_provider=world.provider
        )
    assert Manifest.objects.count() == 1


def test_the_database_refuses_a_second_open_manifest_too(world):
    first = manifest_create(
        facility=world.facility, channel=world.channel, shipping_provider=world.provider
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Manifest.objects.create(
            code="MF-X",
            facility=world.facility,
            channel=world.channel,
            shipping_provider=world.provider,
        )
    Manifest.objects.filter(pk=first.pk).update(status=ManifestStatus.CLOSED)
    manifest_create(
        facility=world.facility, channel=world.channel, shipping_provider=world.provider
    )


def test_add_to_manifest_uses_the_open_one(world):
    shipments = ready_shipments(world, 2)
    first = shipments_manifest([shipments[0].pk])
    second = shipments_manifest([shipments[1].pk])
    assert len(first.created) == 1 and second.created == []
    assert Manifest.objects.count() == 1
    assert set(Shipment.objects.values_list("manifest", flat=True)) == {first.created[0].pk}


def test_a_route_whose_shipments_are_all_refused_leaves_no_empty_manifest(world):
    shipments = ready_shipments(world, 2)
    orders_hold([s.order_id for s in shipments], reason="check address")
    outcome = shipments_manifest([s.pk for s in shipments])
    assert not outcome.done and len(outcome.failed) == 2
    assert outcome.created == []
    assert not Manifest.objects.exists()
