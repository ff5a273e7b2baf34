"""factory_boy factories and a ready-made warehouse (`make_world`) for tests."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from channels.models import Channel
from gst.gstin import make_gstin
from inventory.models import Facility, Inventory, Serviceability, Shelf, ShippingProvider, Sku
from orders.services import LineInput, OrderInput, order_create
from uniware.core.models import Sequence

# What an invoice needs (CGST Rule 46) of a seller's facility and of a SKU: the factories and
# the benchmarks' own data use these (a Karnataka seller, T-shirts at 5 %).
SELLER = {
    "legal_name": "Test Seller Pvt Ltd",
    "city": "Bengaluru",
    "pincode": "560100",
    "gst_state": "29",
    "gstin": make_gstin("29", "AABCT1234F"),
}
SKU_TAX = {"hsn_code": "6109", "gst_rate": Decimal("5.00")}


def seller_particulars(code: str) -> dict:
    """The invoice particulars of facility `code`, for `Facility(**...)` or `.update(**...)`."""
    return {**SELLER, "address_line1": f"{code} Industrial Area"}


class FacilityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Facility
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"WH{n + 1}")
    name = factory.LazyAttribute(lambda o: f"Warehouse {o.code}")
    priority = factory.Sequence(lambda n: n + 1)
    legal_name = SELLER["legal_name"]
    address_line1 = factory.LazyAttribute(lambda o: seller_particulars(o.code)["address_line1"])
    city = SELLER["city"]
    pincode = SELLER["pincode"]
    gst_state = SELLER["gst_state"]
    gstin = factory.LazyAttribute(lambda o: make_gstin(o.gst_state, "AABCT1234F"))


class ShelfFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shelf

    facility = factory.SubFactory(FacilityFactory)
    code = factory.Sequence(lambda n: f"A{n + 1}")


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"SKU-{n + 1}")
    name = factory.LazyAttribute(lambda o: f"Product {o.code}")
    hsn_code = SKU_TAX["hsn_code"]
    gst_rate = SKU_TAX["gst_rate"]


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ShippingProvider
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"COURIER{n + 1}")
    name = factory.LazyAttribute(lambda o: o.code.title())


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"CH{n + 1}")
    name = factory.LazyAttribute(lambda o: o.code.title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or []:
            self.groups.add(Group.objects.get(name=role))


@dataclass
class World:
    """One facility WH1 with shelf A1, provider BLUEDART serving 560001 (COD and PREPAID),
    SKU TSHIRT with `stock` units, channel FLIPKART, and an INVOICE sequence."""

    facility: Facility
    shelf: Shelf
    provider: ShippingProvider
    sku: Sku
    inventory: Inventory
    channel: Channel

    def order(
        self,
        channel_order_id: str = "FK-1",
        quantity: int = 1,
        *,
        sku: str | None = None,
        pincode: str = "560001",
        payment_method: str = "PREPAID",
        **kwargs,
    ):
        return order_create(
            OrderInput(
                channel=self.channel,
                channel_order_id=channel_order_id,
                ship_pincode=pincode,
                payment_method=payment_method,
                lines=[
                    LineInput(f"{channel_order_id}-L1", sku or self.sku.code, quantity, "499.00")
                ],
                **kwargs,
            )
        )


def make_world(stock: int = 10, invoice_sequence: bool = True) -> World:
    facility = FacilityFactory(code="WH1", priority=1)
    shelf = ShelfFactory(facility=facility, code="A1")
    provider = ProviderFactory(code="BLUEDART", name="Blue Dart")
    facility.shipping_providers.add(provider)
    for method in ("PREPAID", "COD"):
        Serviceability.objects.create(
            shipping_provider=provider, pincode="560001", payment_method=method, priority=1
        )
    sku = SkuFactory(code="TSHIRT", name="Red T-shirt")
    inventory = Inventory.objects.create(facility=facility, shelf=shelf, sku=sku, quantity=stock)
    channel = ChannelFactory(code="FLIPKART", name="Flipkart", channel_type="FLIPKART")
    if invoice_sequence:
        Sequence.objects.create(name="INVOICE", facility=facility, prefix="INV-WH1-")
    return World(facility, shelf, provider, sku, inventory, channel)
