from inventory.models import Serviceability
from orders.models import OrderItemStatus, ShipmentStatus
from orders.services import shipments_recheck_serviceability


def test_recheck_makes_a_newly_served_shipment_fulfillable(world):
    order = world.order("FK-LNS", quantity=2, pincode="110001")
    shipment = order.shipments.get()
    assert shipment.status == ShipmentStatus.LOCATION_NOT_SERVICEABLE
    assert set(order.items.values_list("status", flat=True)) == {"LOCATION_NOT_SERVICEABLE"}

    refused = shipments_recheck_serviceability([shipment.pk])
    assert refused.done == []
    assert "still no provider of WH1 serves pincode 110001 for PREPAID" in refused.failed[0][1]

    Serviceability.objects.create(
        shipping_provider=world.provider, pincode="110001", payment_method="PREPAID", priority=1
    )
    outcome = shipments_recheck_serviceability([shipment.pk], actor="test")
    shipment.refresh_from_db()
    assert outcome.failed == []
    assert shipment.status == ShipmentStatus.CREATED
    assert shipment.shipping_provider == world.provider
    assert set(order.items.values_list("status", flat=True)) == {OrderItemStatus.FULFILLABLE}
    world.inventory.refresh_from_db()
    assert world.inventory.blocked_quantity == 2  # blocked once, at allocation


def test_recheck_refuses_shipments_in_other_states(world):
    order = world.order("FK-OK")
    outcome = shipments_recheck_serviceability([order.shipments.get().pk])
    assert outcome.failed == [
        (order.shipments.get().code, "shipment is CREATED, not LOCATION_NOT_SERVICEABLE")
    ]
