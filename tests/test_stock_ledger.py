"""The stock ledger (issue 11): every path that moves stock writes its ledger rows (reason,
deltas, unit or document, actor) in the same transaction, and `check_stock` recomputes every
stock row from the ledger and reports drift."""

from __future__ import annotations

import importlib
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from imports.models import ImportJob
from inventory.admin import InventoryForm
from inventory.ledger import stock_drift
from inventory.models import Inventory, Putaway, Shelf, StockMovement, StockReason
from inventory.putaway import putaways_complete, putaways_discard
from inventory.services import stock_add
from orders.models import OrderItem, PicklistItem, Shipment
from orders.services import (
    LineInput,
    OrderInput,
    manifest_close,
    order_create,
    picklist_create,
    picklist_receive,
    shipments_force_dispatch,
    shipments_generate_label,
    shipments_invoice,
    shipments_manifest,
    units_cancel,
    units_dispatch_from_channel,
)
from uniware.core.models import Sequence

from .factories import UserFactory
from .importing import checked, csv_bytes, imported, media  # noqa: F401  (fixture)

REASON = "ledger test"


@pytest.fixture
def staff(db):
    return UserFactory(username="lead", roles=["Warehouse Manager"])


@pytest.fixture
def flow(world):
    Sequence.objects.create(name="RETURN_INVOICE", facility=world.facility, prefix="CN-")
    return world


def moves(**filters) -> list[tuple]:
    rows = StockMovement.objects.filter(**filters).order_by("pk")
    return [
        (m.reason, m.quantity_change, m.blocked_change, m.order_item_id, m.reference_kind)
        for m in rows
    ]


def check_stock() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_stock", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


def advance(shipment_pk: int, until: str) -> Shipment:
    """Take a shipment along the forward flow until it reaches `until`."""
    steps = {
        "CREATED": lambda: picklist_create([shipment_pk], destination="INVOICING"),
        "PICKING": lambda: picklist_receive(
            PicklistItem.objects.filter(shipment_id=shipment_pk).values_list(
                "picklist_id", flat=True
            )
        ),
        "PICKED": lambda: shipments_invoice([shipment_pk]),
        "PACKED": lambda: shipments_generate_label([shipment_pk]),
        "READY_TO_SHIP": lambda: shipments_manifest([shipment_pk]),
        "MANIFESTED": lambda: manifest_close(Shipment.objects.get(pk=shipment_pk).manifest),
    }
    shipment = Shipment.objects.get(pk=shipment_pk)
    while shipment.status != until:
        outcome = steps[shipment.status]()
        assert outcome.ok, outcome.failed
        shipment.refresh_from_db()
    return shipment


def test_opening_rows_make_existing_stock_explainable(world):
    """A stock row created with stock gets an OPENING row; the check then holds."""
    assert moves() == [("OPENING", 10, 0, None, "")]
    assert check_stock() == (0, "Stock matches the ledger: no drift.\n")


def test_allocation_writes_one_row_per_unit_naming_it_and_the_actor(world, staff):
    spec = OrderInput(
        channel=world.channel,
        channel_order_id="FK-1",
        ship_pincode="560001",
        payment_method="PREPAID",
        lines=[LineInput("FK-1-L1", "TSHIRT", 3, "499.00")],
    )
    order = order_create(spec, actor=staff)
    units = sorted(order.items.values_list("pk", flat=True))
    assert moves(reason="ALLOCATE") == [("ALLOCATE", 0, 1, pk, "") for pk in units]
    row = StockMovement.objects.filter(reason="ALLOCATE").first()
    assert (row.user_id, row.actor, row.inventory_id) == (staff.pk, "lead", world.inventory.pk)
    assert (row.facility_id, row.shelf_id, row.sku_id) == (
        world.facility.pk,
        world.shelf.pk,
        world.sku.pk,
    )
    assert check_stock()[0] == 0


def test_full_flow_dispatch_by_manifest_names_the_manifest(flow):
    order = flow.order("FK-1", 2)
    shipment = advance(order.shipments.get().pk, "DISPATCHED")
    dispatched = moves(reason="DISPATCH")
    assert sorted(m[3] for m in dispatched) == sorted(order.items.values_list("pk", flat=True))
    assert {m[1:3] for m in dispatched} == {(-1, -1)}
    row = StockMovement.objects.filter(reason="DISPATCH").first()
    assert (row.reference_kind, row.reference_id) == ("manifest", shipment.manifest_id)
    assert row.reference_code == str(shipment.manifest)
    assert check_stock()[0] == 0
    assert Inventory.objects.get(pk=flow.inventory.pk).quantity == 8


@pytest.mark.parametrize(
    ("stage", "reason", "delta"),
    [
        ("CREATED", "RELEASE", (0, -1)),
        ("PICKING", "CANCEL_PICKED", (-1, -1)),
        ("PACKED", "CANCEL_PICKED", (-1, -1)),
    ],
)
def test_cancellation_at_each_stage(flow, staff, stage, reason, delta):
    order = flow.order("FK-1", 1)
    advance(order.shipments.get().pk, stage)
    unit = order.items.get()
    outcome = units_cancel([unit.pk], reason=REASON, actor=staff, by_channel=stage == "PACKED")
    assert outcome.ok, outcome.failed
    row = StockMovement.objects.get(reason=reason)
    assert (row.quantity_change, row.blocked_change, row.order_item_id) == (*delta, unit.pk)
    assert row.actor == "lead"
    assert check_stock()[0] == 0


def test_cancelled_after_dispatch_moves_no_stock(flow):
    order = flow.order("FK-1", 1)
    advance(order.shipments.get().pk, "DISPATCHED")
    before = StockMovement.objects.count()
    assert units_cancel([order.items.get().pk], reason=REASON).ok
    assert StockMovement.objects.count() == before  # a courier return: stock comes by putaway
    assert check_stock()[0] == 0


def test_putaway_complete_names_unit_and_putaway_and_discard_moves_nothing(flow, staff):
    first, second = flow.order("FK-1", 1), flow.order("FK-2", 1)
    for order in (first, second):
        advance(order.shipments.get().pk, "PICKING")
        assert units_cancel([order.items.get().pk], reason=REASON).ok
    kept, dropped = Putaway.objects.order_by("pk")
    spare = Shelf.objects.create(facility=flow.facility, code="B1")
    assert putaways_complete([kept.pk], shelf=spare, actor=staff).ok
    row = StockMovement.objects.get(reason="PUTAWAY")
    assert (row.quantity_change, row.blocked_change) == (1, 0)
    assert (row.order_item_id, row.reference_kind, row.reference_id) == (
        first.items.get().pk,
        "putaway",
        kept.pk,
    )
    assert (row.reference_code, row.shelf_id, row.actor) == (kept.code, spare.pk, "lead")
    before = StockMovement.objects.count()
    assert putaways_discard([dropped.pk], reason="broken").ok
    assert StockMovement.objects.count() == before  # written off: the unit left its row before
    assert check_stock()[0] == 0


def test_force_and_channel_dispatch(flow, staff):
    forced, by_channel = flow.order("FK-1", 1), flow.order("FK-2", 2)
    assert shipments_force_dispatch([forced.shipments.get().pk], actor=staff).ok
    assert moves(reason="FORCE_DISPATCH") == [("FORCE_DISPATCH", -1, -1, forced.items.get().pk, "")]
    units = sorted(by_channel.items.values_list("pk", flat=True))
    outcome = units_dispatch_from_channel(units, actor="task:status_sync")
    assert outcome.ok, outcome.failed
    assert moves(reason="CHANNEL_DISPATCH") == [
        ("CHANNEL_DISPATCH", -1, -1, pk, "") for pk in units
    ]
    assert StockMovement.objects.filter(reason="CHANNEL_DISPATCH").first().actor == (
        "task:status_sync"
    )
    assert check_stock()[0] == 0


def test_stock_add_records_actor_and_note(world, staff):
    stock_add(shelf=world.shelf, sku=world.sku, quantity=4, actor=staff, note="GRN 17")
    row = StockMovement.objects.get(reason="STOCK_ADD")
    assert (row.quantity_change, row.blocked_change, row.note) == (4, 0, "GRN 17")
    assert (row.user_id, row.actor) == (staff.pk, "lead")
    assert check_stock()[0] == 0


def test_stock_import_names_the_job_and_the_importing_user(world, staff, media):  # noqa: F811
    data = csv_bytes(
        [
            {"facility": "WH1", "shelf": "A1", "sku": "TSHIRT", "quantity": "3"},
            {"facility": "WH1", "shelf": "A1", "sku": "TSHIRT", "quantity": "2"},
        ],
        ["facility", "shelf", "sku", "quantity"],
    )
    job = imported(checked(data, staff, kind="INVENTORY"), staff)
    assert job.created_count == 2
    row = StockMovement.objects.get(reason="IMPORT")  # one row per stock row
    assert (row.quantity_change, row.inventory_id) == (5, world.inventory.pk)
    assert (row.reference_kind, row.reference_id) == ("importjob", job.pk)
    assert row.user_id == staff.pk and row.actor.startswith("lead")
    assert ImportJob.objects.get(pk=job.pk).status == "DONE"
    assert check_stock()[0] == 0


def test_admin_adjustments_record_the_user_and_the_reason(world, client, staff):
    client.force_login(staff)
    url = reverse("admin:inventory_inventory_change", args=[world.inventory.pk])
    response = client.post(url, {"quantity": 7, "reason": "cycle count"}, follow=True)
    assert response.status_code == 200
    client.post(url, {"quantity": 9})
    rows = StockMovement.objects.filter(reason="ADJUSTMENT").order_by("pk")
    assert [(r.quantity_change, r.note, r.user_id) for r in rows] == [
        (-3, "cycle count", staff.pk),
        (2, "quantity set from 7 to 9 in the admin", staff.pk),
    ]
    assert check_stock()[0] == 0


def test_a_refused_admin_decrease_shows_only_the_error_and_changes_nothing(
    world, client, staff, monkeypatch
):
    """Units blocked between the form's check and the save (a concurrent allocation): the
    guarded decrease is refused, the page says so and nothing else, and nothing changed."""
    clean = InventoryForm.clean

    def clean_then_allocate(form):
        cleaned = clean(form)
        world.order("FK-RACE", 6)  # blocks 6 of 10 after the form allowed 5
        return cleaned

    monkeypatch.setattr(InventoryForm, "clean", clean_then_allocate)
    client.force_login(staff)
    url = reverse("admin:inventory_inventory_change", args=[world.inventory.pk])
    response = client.post(url, {"quantity": 5, "reason": "count"}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1 and "was not reduced" in shown[0], shown
    assert "changed successfully" not in response.content.decode()
    row = Inventory.objects.get(pk=world.inventory.pk)
    assert (row.quantity, row.blocked_quantity) == (10, 0)  # the whole save rolled back
    assert not StockMovement.objects.filter(reason__in=["ADJUSTMENT", "ALLOCATE"]).exists()
    assert check_stock()[0] == 0


def test_check_stock_reports_drift_after_a_raw_update(world):
    world.order("FK-1", 2)
    assert check_stock()[0] == 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE inventory_inventory SET quantity = quantity + 5 WHERE id = %s",
            [world.inventory.pk],
        )
    status, text = check_stock()
    assert status == 1
    assert "WH1 / A1 / TSHIRT / GOOD_INVENTORY" in text
    assert "stored quantity 15, blocked 2; ledger quantity 10, blocked 2" in text
    assert "1 stock row(s) differ" in text
    (drift,) = stock_drift()
    assert (drift.inventory_id, drift.stored, drift.ledger) == (
        world.inventory.pk,
        (15, 2),
        (10, 2),
    )


def test_check_stock_reports_ledger_rows_of_a_deleted_stock_row(world):
    StockMovement.objects.filter(inventory=world.inventory).update(inventory_id=999_999)
    status, text = check_stock()
    assert status == 1
    assert "stock row 999999 (deleted)" in text
    assert "WH1 / A1 / TSHIRT" in text  # the live row now has no ledger: drift too


def test_the_migration_records_opening_balances(world):
    world.order("FK-1", 2)
    StockMovement.objects.all().delete()
    assert check_stock()[0] == 1
    migration = importlib.import_module("inventory.migrations.0003_stock_ledger")

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    from django.apps import apps

    migration.record_opening_balances(apps, editor)
    assert moves() == [("OPENING", 10, 2, None, "")]
    assert check_stock()[0] == 0


def test_many_units_in_one_batch(world):
    """Above the COPY threshold (PostgreSQL writes by COPY): every unit has its row."""
    stock_add(shelf=world.shelf, sku=world.sku, quantity=290)
    order = world.order("FK-BIG", 250)
    assert OrderItem.objects.filter(order=order, inventory__isnull=False).count() == 250
    assert StockMovement.objects.filter(reason=StockReason.ALLOCATE).count() == 250
    assert set(
        StockMovement.objects.filter(reason="ALLOCATE").values_list("order_item_id", flat=True)
    ) == set(order.items.values_list("pk", flat=True))
    assert check_stock()[0] == 0
