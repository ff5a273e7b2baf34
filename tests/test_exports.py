# ruff: noqa: F811  (pytest fixtures imported from tests.importing are parameters)
"""Exporting the filtered changelists of orders, units, shipments, stock and serviceability to
CSV and XLSX: what the list shows, with statuses, facility, invoice and tracking numbers and
dates; formulas escaped; large exports in the background; and an export imports back."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal

import openpyxl
import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from imports import admin as imports_admin
from imports import services
from imports.models import ExportJob, JobStatus
from inventory.models import Inventory, Serviceability
from orders.models import Order, OrderItem, Shipment
from orders.services import (
    LineInput,
    OrderInput,
    order_create,
    picklist_create,
    picklist_receive,
    shipments_deliver,
    shipments_force_dispatch,
    shipments_generate_label,
    shipments_invoice,
)
from uniware.core.models import StateChange

from .factories import UserFactory
from .importing import checked, imported, media, queued  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("media")


@pytest.fixture
def sales(db):
    return UserFactory(username="sales", roles=["Sales Manager"])


def start_url(kind: str, fmt: str = "csv", query: str = "") -> str:
    url = reverse("admin:imports_exportjob_start", args=[kind, fmt])
    return f"{url}?{query}" if query else url


def read_csv(response) -> list[dict]:
    if isinstance(response, StreamingHttpResponse):
        body = b"".join(response.streaming_content)
    else:
        body = response.content
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def read_xlsx(content: bytes) -> list[dict]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def make_orders(world) -> list[Order]:
    """Orders with several lines, quantities, COD and prepaid, odd characters."""
    world.inventory.quantity = 50
    world.inventory.save()
    specs = [
        OrderInput(
            channel=world.channel,
            channel_order_id="OD-100",
            ship_pincode="560001",
            payment_method="COD",
            customer_name='Asha "Ash" Rao, Jr.',
            customer_phone="+91 98450 00000",
            customer_email="asha@example.com",
            ship_address_line1="12, MG Road\nsecond floor",
            ship_city="Bengaluru",
            ship_state="Karnataka",
            buyer_gstin="29ABCDE1234F1ZW",  # a business buyer
            lines=[
                LineInput("OD-100-1", "TSHIRT", 2, "499.00", "20.00"),
                LineInput("OD-100-2", "TSHIRT", 1, "99.99"),
            ],
        ),
        OrderInput(
            channel=world.channel,
            channel_order_id="OD-101",
            ship_pincode="560001",
            customer_name='=HYPERLINK("http://evil","click")',
            ship_address_line1="@SUM(1+1)",
            lines=[LineInput("OD-101-1", "TSHIRT", 3, "10.50")],
        ),
        OrderInput(
            channel=world.channel,
            channel_order_id="OD-102",
            ship_pincode="110001",  # nobody serves it: LOCATION_NOT_SERVICEABLE
            ship_country="IN",
            lines=[LineInput("OD-102-1", "TSHIRT", 1, "0")],
        ),
    ]
    return [order_create(spec) for spec in specs]


def snapshot() -> tuple[list, list]:
    orders = sorted(
        Order.objects.values_list(
            "code",
            "channel__code",
            "channel_order_id",
            "order_date",
            "payment_method",
            "item_count",
            "total_amount",
            "customer_name",
            "customer_phone",
            "customer_email",
            "ship_address_line1",
            "ship_address_line2",
            "ship_city",
            "ship_state",
            "ship_pincode",
            "ship_country",
            "buyer_gstin",
        )
    )
    units = sorted(
        OrderItem.objects.values_list(
            "order__code",
            "code",
            "channel_order_item_id",
            "sku__code",
            "selling_price",
            "shipping_charges",
            "title",
        )
    )
    return orders, units


def empty_the_database() -> None:
    StateChange.objects.all().delete()
    Order.objects.all().delete()  # units and shipments go with them
    Inventory.objects.update(blocked_quantity=0)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_round_trip_export_then_import_into_an_empty_database(world, client, sales, fmt):
    make_orders(world)
    # a spreadsheet keeps a moment to the millisecond: make the orders' dates exact in both
    Order.objects.update(order_date=timezone.now().replace(microsecond=123000))
    before = snapshot()
    client.force_login(sales)
    response = client.post(start_url("ORDERS", fmt))
    assert response.status_code == 200
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if fmt == "xlsx":
        rows = read_xlsx(content)
        assert all(isinstance(r["order_date"], datetime) for r in rows)  # a date, not text
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    else:
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert len(rows) == 4  # one per order line
    assert [r["buyer_gstin"] for r in rows if r["channel_order_id"] == "OD-100"] == [
        "29ABCDE1234F1ZW"
    ] * 2

    empty_the_database()
    assert Order.objects.count() == 0
    job = checked(content, sales, name=f"orders.{fmt}")
    assert (job.error_count, job.new_count) == (0, 3), job.preview["errors"]
    # the export-only columns are recognised as such and ignored
    assert "order_status" in job.preview["ignored_columns"]
    imported(job, sales)

    assert snapshot() == before


def test_order_lines_export_with_statuses_facility_invoice_tracking_and_dates(world, client, sales):
    order = world.order("OD-1", quantity=2)
    shipment = Shipment.objects.get(order=order)
    picklist = picklist_create([shipment.pk], destination="INVOICING", actor="t").created[0]
    assert picklist_receive([picklist.pk], actor="t").ok
    assert shipments_invoice([shipment.pk], actor="t").ok
    assert shipments_generate_label([shipment.pk], actor="t").ok
    assert shipments_force_dispatch([shipment.pk], actor="t").ok
    assert shipments_deliver([shipment.pk], actor="t").ok
    shipment.refresh_from_db()
    invoice = shipment.invoices.get()
    world.order("OD-2")

    client.force_login(sales)
    lines = read_csv(client.post(start_url("ORDERS")))
    first = next(line for line in lines if line["channel_order_id"] == "OD-1")
    assert first["order_code"] == "FLIPKART-OD-1"
    assert first["order_status"] == "COMPLETE"
    assert first["line_status"] == "DELIVERED"
    assert first["quantity"] == "2"
    assert first["facility"] == "WH1"
    assert first["shipments"] == shipment.code
    assert first["shipment_status"] == "DELIVERED"
    assert first["invoice_numbers"] == invoice.code
    assert first["tracking_numbers"] == shipment.tracking_number != ""
    assert first["shipping_provider"] == "BLUEDART"
    assert first["dispatched_at"].startswith(shipment.dispatched_at.astimezone().date().isoformat())
    assert first["delivered_at"] != "" and first["created_at"] != ""

    units = read_csv(client.post(start_url("UNITS")))
    assert [
        (u["unit"], u["status"], u["invoice_number"])
        for u in units
        if u["order_code"] == "FLIPKART-OD-1"
    ] == [
        ("OD-1-L1-0", "DELIVERED", invoice.code),
        ("OD-1-L1-1", "DELIVERED", invoice.code),
    ]
    assert {u["facility"] for u in units} == {"WH1"} and units[0]["shelf"] == "A1"
    assert units[0]["tracking_number"] == shipment.tracking_number

    shipments = read_csv(client.post(start_url("SHIPMENTS")))
    row = next(s for s in shipments if s["shipment"] == shipment.code)
    assert (row["status"], row["units"], row["invoice_numbers"], row["facility"]) == (
        "DELIVERED",
        "2",
        invoice.code,
        "WH1",
    )
    assert row["dispatched_at"] and row["delivered_at"] and row["tracking_number"]


def test_export_follows_the_changelist_filters_and_search(world, client, sales):
    a = world.order("OD-1")
    world.order("OD-2", payment_method="COD")
    world.order("OD-3", pincode="110001")
    client.force_login(sales)

    cod = read_csv(client.post(start_url("ORDERS", query="payment_method__exact=COD")))
    assert [r["channel_order_id"] for r in cod] == ["OD-2"]
    searched = read_csv(client.post(start_url("ORDERS", query=f"q={a.code}")))
    assert [r["channel_order_id"] for r in searched] == ["OD-1"]
    units = read_csv(
        client.post(start_url("UNITS", query="status__exact=LOCATION_NOT_SERVICEABLE"))
    )
    assert [u["order_code"] for u in units] == ["FLIPKART-OD-3"]
    # the buttons carry the changelist's filters
    page = client.get(reverse("admin:orders_order_changelist") + "?payment_method__exact=COD")
    assert start_url("ORDERS", "csv", "payment_method__exact=COD").encode() in page.content
    # a filter the changelist refuses is reported, not a server error
    response = client.post(start_url("ORDERS", query="no_such_field=1"))
    assert response.status_code == 302


def test_formulas_are_escaped_in_csv_and_xlsx_and_import_back_unchanged(world, client, sales):
    make_orders(world)
    client.force_login(sales)
    lines = read_csv(client.post(start_url("ORDERS")))
    evil = next(r for r in lines if r["channel_order_id"] == "OD-101")
    assert evil["customer_name"] == '\'=HYPERLINK("http://evil","click")'
    assert evil["address_line1"] == "'@SUM(1+1)"
    assert next(r for r in lines if r["channel_order_id"] == "OD-100")["customer_phone"] == (
        "'+91 98450 00000"
    )

    content = client.post(start_url("ORDERS", "xlsx")).content
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula anywhere
    assert '\'=HYPERLINK("http://evil","click")' in [c.value for c in cells]
    # numbers stay numbers
    prices = [r["selling_price"] for r in read_xlsx(content)]
    assert Decimal(str(prices[0])) == Decimal("499.00") and not isinstance(prices[0], str)


def test_a_large_export_runs_in_the_background_and_streams_to_a_file(
    world, client, sales, queued, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(imports_admin.ExportJobAdmin, "sync_export_max", 2)
    monkeypatch.setattr(services, "PROGRESS_EVERY_ROWS", 1)
    monkeypatch.setattr("imports.exporters.CHUNK", 2)
    for n in range(5):
        world.order(f"OD-{n}")
    client.force_login(sales)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(start_url("ORDERS", "csv", "payment_method__exact=PREPAID"))
    job = ExportJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:imports_exportjob_change", args=[job.pk])
    assert (job.status, job.total_rows, job.query) == (
        JobStatus.QUEUED,
        5,
        "payment_method__exact=PREPAID",
    )
    assert queued == [("run_export", job.pk)]
    assert b"Waiting for a worker" in client.get(response.url).content

    services.export_job_run(job.pk)  # the worker
    progress = client.get(reverse("admin:imports_exportjob_progress", args=[job.pk])).json()
    assert (progress["status"], progress["processed_rows"], progress["written_rows"]) == (
        "DONE",
        5,
        5,
    )
    job.refresh_from_db()
    assert job.file.name.startswith("exports/")
    download = client.get(reverse("admin:imports_exportjob_download", args=[job.pk]))
    rows = list(
        csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig")))
    )
    assert sorted(r["channel_order_id"] for r in rows) == [f"OD-{n}" for n in range(5)]


def test_small_csv_exports_stream_in_the_request(world, client, sales):
    world.order("OD-1")
    client.force_login(sales)
    response = client.post(start_url("SHIPMENTS"))
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="shipments-')
    assert ExportJob.objects.count() == 0


def test_stock_and_serviceability_exports_import_back(world, client):
    lead = UserFactory(username="lead", roles=["Warehouse Manager"])
    client.force_login(lead)
    stock = read_csv(client.post(start_url("INVENTORY")))
    assert stock == [
        {
            "facility": "WH1",
            "shelf": "A1",
            "sku": "TSHIRT",
            "quantity": "10",
            "inventory_type": "GOOD_INVENTORY",
            "blocked_quantity": "0",
            "available": "10",
            "updated_at": stock[0]["updated_at"],
        }
    ]
    response = client.post(start_url("SERVICEABILITY"))
    content = b"".join(response.streaming_content)
    before = set(Serviceability.objects.values_list("pincode", "payment_method", "priority"))
    job = imported(checked(content, lead, kind="SERVICEABILITY"), lead)
    assert job.created_count == 2
    assert set(Serviceability.objects.values_list("pincode", "payment_method", "priority")) == (
        before
    )


def test_who_may_export(world, client, sales):
    world.order("OD-1")
    packer = UserFactory(username="packer", roles=["Pick and Pack"])
    client.force_login(packer)
    assert client.post(start_url("ORDERS")).status_code == 403
    assert client.post(start_url("SHIPMENTS", "xlsx")).status_code == 403
    assert b"Export CSV" not in client.get(reverse("admin:orders_order_changelist")).content
    assert b"Export CSV" not in client.get(reverse("admin:orders_shipment_changelist")).content

    client.force_login(sales)
    assert client.post(start_url("ORDERS")).status_code == 200
    assert client.post(start_url("UNITS", "xlsx")).status_code == 200
    assert client.get(start_url("ORDERS")).status_code == 405  # a button POSTs
    assert client.post(start_url("INVENTORY")).status_code == 403  # not a Sales Manager's
    for name in ("order", "orderitem", "shipment"):
        page = client.get(reverse(f"admin:orders_{name}_changelist")).content
        assert b"Export CSV" in page and b"Export Excel (XLSX)" in page
