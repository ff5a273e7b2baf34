"""Load a realistic demo tenant: facilities, providers and serviceability, SKUs and stock,
channels, sequences, role users, and a few hundred orders pushed through the forward flow by
the real services, so every list and the dashboard have something to show."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from channels.models import Channel
from gst.gstin import make_gstin
from inventory.models import Facility, Inventory, Serviceability, Shelf, ShippingProvider, Sku
from orders.models import Order, ShipmentStatus
from orders.services import (
    LineInput,
    OrderInput,
    manifest_close,
    orders_create,
    orders_hold,
    picklist_create,
    picklist_receive,
    shipments_deliver,
    shipments_generate_label,
    shipments_invoice,
    shipments_manifest,
    shipments_ship,
)
from uniware.core.models import Sequence, Tenant

from ...simulator_link import mirror_orders_on_simulator, point_channels_at_simulator

ADMIN_USERNAME = ADMIN_PASSWORD = "admin"
DEMO_PASSWORD = "demo-pass-123"
ROLE_USERS = {
    "packer": "Pick and Pack",
    "sales": "Sales Manager",
    "warehouse": "Warehouse Manager",
    "returns": "Returns Manager",
    "inbound": "Inbound Manager",
    "catalog": "Catalog Manager",
}
CITIES = [
    ("Bengaluru", "Karnataka", "5600"),
    ("Delhi", "Delhi", "1100"),
    ("Mumbai", "Maharashtra", "4000"),
]
# product: (HSN code, GST rate %) as a seller of these would file them
PRODUCTS = {
    "T-shirt": ("6109", "5"),
    "Kurta": ("6211", "5"),
    "Jeans": ("6203", "12"),
    "Saree": ("5407", "5"),
    "Sneakers": ("6404", "18"),
    "Watch": ("9102", "18"),
    "Backpack": ("4202", "18"),
    "Headphones": ("8518", "18"),
}
# code, name, pincode, GST state, address, city, invoice series prefix
FACILITIES = [
    ("WH-BLR", "Bengaluru warehouse", "560001", "29", "12 Residency Road", "Bengaluru", "BLR/"),
    ("WH-DEL", "Delhi warehouse", "110001", "07", "4 Connaught Place", "New Delhi", "DEL/"),
]
SELLER_PAN = "AABCD1234E"  # the demo seller's PAN: its GSTINs derive from it
COLOURS = ["RED", "BLUE", "BLACK", "WHITE"]
STREETS = ["MG Road", "Park Street", "Ring Road"]


def users_to_create() -> list[str]:
    """The demo users not there yet: each would get a published password."""
    wanted = [ADMIN_USERNAME, *ROLE_USERS]
    existing = set(
        get_user_model().objects.filter(username__in=wanted).values_list("username", flat=True)
    )
    return [name for name in wanted if name not in existing]


def refuse_known_passwords(allowed: bool) -> None:
    """Users with passwords printed in the README are fine on a laptop, never on a reachable
    server: without DEBUG they are created only when the operator says so explicitly."""
    missing = users_to_create()
    if not missing or allowed or settings.DEBUG:
        return
    raise CommandError(
        f"load_demo would create users whose passwords are published ({', '.join(missing)}; "
        f"{ADMIN_USERNAME}'s is '{ADMIN_PASSWORD}', the role users' '{DEMO_PASSWORD}') and "
        "DEBUG is off. "
        "Run it in development (DEBUG=1, as `make demo` does) or, on an isolated machine, "
        "pass --allow-known-passwords. Nothing was loaded."
    )


class Command(BaseCommand):
    help = "Load the demo tenant (idempotent: does nothing when demo orders exist)."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=300)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--allow-known-passwords",
            action="store_true",
            help="create the demo users (admin/admin, role users with demo-pass-123) even "
            "though DEBUG is off",
        )

    def handle(self, *args, orders: int, seed: int, allow_known_passwords: bool, **options):
        refuse_known_passwords(allow_known_passwords)
        User = get_user_model()
        if not User.objects.filter(username=ADMIN_USERNAME).exists():
            User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
        for username, role in ROLE_USERS.items():
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": True}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
                user.groups.add(Group.objects.get(name=role))
        if Order.objects.exists():
            moved = point_channels_at_simulator()
            self.stdout.write(f"Demo data already present; {moved} channel(s) re-pointed.")
        else:
            rng = random.Random(seed)
            with transaction.atomic():
                self._setup(rng)
            self._orders(rng, orders)
            self.stdout.write(
                self.style.SUCCESS(f"Loaded the demo tenant with {Order.objects.count()} orders.")
            )
        mirrored = mirror_orders_on_simulator()
        self.stdout.write(f"The channel simulator knows {mirrored} of the demo's orders.")

    def _setup(self, rng: random.Random) -> None:
        tenant = Tenant.get()
        tenant.name = "Demo Fashion Pvt Ltd"
        tenant.save()
        providers = [
            ShippingProvider.objects.create(code=c, name=n)
            for c, n in [
                ("BLUEDART", "Blue Dart"),
                ("DELHIVERY", "Delhivery"),
                ("ECOM", "Ecom Express"),
            ]
        ]
        facilities = []
        for priority, (code, name, pincode, state, street, city, series) in enumerate(
            FACILITIES, start=1
        ):
            facility = Facility.objects.create(
                code=code,
                name=name,
                priority=priority,
                pincode=pincode,
                legal_name=tenant.name,
                gstin=make_gstin(state, SELLER_PAN),
                address_line1=street,
                city=city,
                gst_state=state,
            )
            facility.shipping_providers.set(providers)
            # CGST Rule 46: at most 16 characters, unique per financial year
            Sequence.objects.create(
                name="INVOICE", facility=facility, prefix=f"{series}{{FY}}/", restarts_yearly=True
            )
            facilities.append(facility)
        Sequence.objects.create(name="RETURN_INVOICE", prefix="CN/{FY}/", restarts_yearly=True)
        rows = []
        for _, _, prefix in CITIES:
            for n in range(1, 31):
                pincode = f"{prefix}{n:02d}"
                for p, provider in enumerate(rng.sample(providers, 2), start=1):
                    for method in ("PREPAID", "COD"):
                        rows.append(
                            Serviceability(
                                shipping_provider=provider,
                                pincode=pincode,
                                payment_method=method,
                                priority=p,
                            )
                        )
        Serviceability.objects.bulk_create(rows)
        skus = []
        for product, (hsn, rate) in PRODUCTS.items():
            for colour in COLOURS:
                code = f"{product.upper().replace('-', '')}-{colour}"
                skus.append(
                    Sku.objects.create(
                        code=code,
                        name=f"{product}, {colour.title()}",
                        mrp=rng.choice([499, 999, 1499]),
                        hsn_code=hsn,
                        gst_rate=Decimal(rate),
                    )
                )
        for facility in facilities:
            shelves = [
                Shelf.objects.create(facility=facility, code=f"{aisle}{n}")
                for aisle in "AB"
                for n in range(1, 6)
            ]
            for sku in skus[:-4]:  # the last SKUs have no stock: their orders are UNFULFILLABLE
                Inventory.objects.create(
                    facility=facility,
                    shelf=rng.choice(shelves),
                    sku=sku,
                    quantity=rng.randint(5, 40),
                )
        for code, name, kind in [
            ("FLIPKART", "Flipkart", "FLIPKART"),
            ("AMAZON", "Amazon", "AMAZON"),
            ("PAYTM", "Paytm Mall", "PAYTM"),
            ("MYSHOP", "Own web shop", "CUSTOM"),
        ]:
            channel = Channel(code=code, name=name, channel_type=kind)
            channel.apply_preset()  # the type's capabilities (Amazon: only orders it ships)
            channel.save()
        point_channels_at_simulator()

    def _orders(self, rng: random.Random, count: int) -> None:
        channels = list(Channel.objects.all())
        skus = list(Sku.objects.values_list("code", flat=True))
        now = timezone.now()
        specs = []
        for n in range(count):
            channel = rng.choice(channels)
            city, state, prefix = rng.choice(CITIES)
            # about 1 in 12 orders goes to a pincode nobody serves
            pincode = f"{prefix}{rng.randint(1, 30):02d}" if rng.random() > 0.08 else "799999"
            order_id = f"{channel.code[:2]}-{100000 + n}"
            lines = [
                LineInput(
                    f"{order_id}-{i + 1}",
                    rng.choice(skus),
                    rng.choice([1, 1, 1, 2, 3]),
                    str(rng.choice([499, 799, 1299])),
                )
                for i in range(rng.choice([1, 1, 2]))
            ]
            specs.append(
                OrderInput(
                    channel=channel,
                    channel_order_id=order_id,
                    lines=lines,
                    order_date=now - timedelta(hours=rng.randint(0, 24 * 20)),
                    payment_method=rng.choice(["PREPAID", "COD"]),
                    ship_pincode=pincode,
                    ship_city=city,
                    ship_state=state,
                    ship_address_line1=f"{rng.randint(1, 400)}, {rng.choice(STREETS)}",
                    customer_name=rng.choice(
                        ["Asha Rao", "Vikram Singh", "Meera Nair", "Rahul Gupta", "Fatima Khan"]
                    ),
                    customer_phone=f"9{rng.randint(100000000, 999999999)}",
                    pending_verification=rng.random() < 0.04,
                    priority=1 if rng.random() < 0.1 else 0,
                )
            )
        actor = "demo-loader"
        orders_create(specs, actor=actor)
        created = list(Order.objects.values_list("pk", flat=True))
        orders_hold(
            rng.sample(created, max(1, count // 30)), actor=actor, reason="Customer asked to wait"
        )

        def shipments(status):
            from orders.models import Shipment

            return list(
                Shipment.objects.filter(status=status, order__on_hold=False).values_list(
                    "pk", flat=True
                )
            )

        def some(ids, share):
            return rng.sample(ids, int(len(ids) * share))

        # Push shares of the work through each step, leaving some at every stage.
        to_pick = some(shipments(ShipmentStatus.CREATED), 0.75)
        for start in range(0, len(to_pick), 15):  # a picklist per wave of 15 shipments
            batch = picklist_create(
                to_pick[start : start + 15], destination="INVOICING", actor=actor
            )
            for picklist in batch.created:
                if rng.random() < 0.8:
                    picklist_receive([picklist.pk], actor=actor)
        shipments_invoice(some(shipments(ShipmentStatus.PICKED), 0.85), actor=actor)
        shipments_generate_label(some(shipments(ShipmentStatus.PACKED), 0.85), actor=actor)
        outcome = shipments_manifest(
            some(shipments(ShipmentStatus.READY_TO_SHIP), 0.85), actor=actor
        )
        for manifest in outcome.created[: max(1, len(outcome.created) * 2 // 3)]:
            manifest_close(manifest, actor=actor)
        shipments_ship(some(shipments(ShipmentStatus.DISPATCHED), 0.7), actor=actor)
        shipments_deliver(some(shipments(ShipmentStatus.SHIPPED), 0.6), actor=actor)
