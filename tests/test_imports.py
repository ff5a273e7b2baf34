# ruff: noqa: F811  (pytest fixtures imported from tests.importing are parameters)
"""Importing orders, stock and serviceability from CSV/XLSX (imports app).

The check (preview) and the import are run as the worker runs them (the service behind each
Celery task, called directly); the admin tests go through the test client as staff of each
role do, with the tasks recorded instead of sent to a broker.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from imports import resources, services
from imports.importers import orders as order_import
from imports.models import ImportJob, JobStatus
from inventory.models import Inventory, Serviceability, Shelf
from orders.models import Order, OrderItem, OrderItemStatus, OrderStatus
from uniware.core.models import StateChange

from .factories import ProviderFactory, SkuFactory, UserFactory
from .importing import (  # noqa: F401  (fixtures)
    ORDER_HEADER,
    checked,
    csv_bytes,
    imported,
    media,
    order_row,
    queued,
    report_rows,
    upload,
)

pytestmark = pytest.mark.usefixtures("media")


@pytest.fixture
def sales(db):
    return UserFactory(username="sales", roles=["Sales Manager"])


@pytest.fixture
def packer(db):
    return UserFactory(username="packer", roles=["Pick and Pack"])


def errors_of(job: ImportJob) -> list[tuple]:
    return [tuple(e) for e in job.preview["errors"]]


# --- A good file ------------------------------------------------------------------------------


GSTIN = "29abcde1234f1zw"  # a business buyer's, as typed (valid once upper-cased)


def test_a_good_file_is_checked_then_imported_through_the_order_service(world, sales):
    world.inventory.quantity = 10
    world.inventory.save()
    data = csv_bytes(
        [
            order_row("FK-1", "L1", quantity="2"),
            order_row("FK-1", "L2", quantity="1", selling_price="99.50", shipping_charges="10"),
            order_row("FK-2", "L1", payment_method="cod", customer_name="", buyer_gstin=GSTIN),
        ]
    )
    job = checked(data, sales)

    assert job.status == JobStatus.VALIDATED
    assert (job.total_rows, job.new_count, job.error_count, job.skipped_count) == (3, 2, 0, 0)
    assert job.preview["new"][0] == "FLIPKART FK-1: 2 lines, 3 units, 1,107.50 (rows 2–3)"
    assert Order.objects.count() == 0  # the preview writes nothing

    job = imported(job, sales)

    assert job.status == JobStatus.DONE
    assert (job.created_count, job.skipped_count, job.failed_count) == (2, 0, 0)
    first = Order.objects.get(code="FLIPKART-FK-1")
    assert first.item_count == 3
    assert first.total_amount == Decimal("1107.50")
    assert first.payment_method == "PREPAID"
    assert (first.customer_name, first.ship_city, first.ship_pincode) == (
        "Asha Rao",
        "Bengaluru",
        "560001",
    )
    assert first.order_date == datetime.fromisoformat("2024-05-01T10:30:00+05:30")
    assert sorted(first.items.values_list("code", flat=True)) == ["L1-0", "L1-1", "L2-0"]
    second = Order.objects.get(code="FLIPKART-FK-2")
    assert (second.payment_method, second.buyer_gstin) == ("COD", GSTIN.upper())
    assert first.buyer_gstin == ""
    # allocation ran in the service: stock blocked, units FULFILLABLE, shipments made
    assert set(OrderItem.objects.values_list("status", flat=True)) == {OrderItemStatus.FULFILLABLE}
    world.inventory.refresh_from_db()
    assert world.inventory.blocked_quantity == 4
    # audited as the user, through the import
    actors = set(StateChange.objects.values_list("actor", flat=True))
    assert actors == {f"sales (import #{job.pk})"}


def test_a_status_column_is_ignored_orders_start_as_the_service_decides(world, sales):
    header = [*ORDER_HEADER, "status", "order_status"]
    data = csv_bytes([order_row(status="DELIVERED", order_status="COMPLETE")], header)
    job = imported(checked(data, sales), sales)
    assert job.preview["ignored_columns"] == ["status", "order_status"]
    order = Order.objects.get()
    assert order.status == OrderStatus.CREATED
    assert order.items.get().status == OrderItemStatus.FULFILLABLE


def test_headers_are_matched_loosely_and_extra_columns_and_blank_rows_are_ignored(world, sales):
    text = (
        "\ufeffChannel,Channel Order ID,Order Date,Payment Method,Line ID,SKU Code,Qty,Price,"
        "Pin Code,Notes\r\n"
        "FLIPKART,FK-9,01/05/2024,Prepaid,L1,TSHIRT,1,499,560 001,gift\r\n"
        "\r\n"
        ",,,,,,,,,\r\n"
    )
    job = imported(checked(text.encode("utf-8"), sales), sales)
    assert (job.error_count, job.created_count, job.total_rows) == (0, 1, 1)
    assert job.preview["ignored_columns"] == ["Notes"]
    order = Order.objects.get()
    assert order.ship_pincode == "560001"
    assert timezone.localtime(order.order_date).date().isoformat() == "2024-05-01"


def test_windows_excel_csv_semicolons_and_cp1252(world, sales):
    text = (
        "channel;channel_order_id;order_date;payment_method;channel_line_id;sku;quantity;"
        "selling_price;pincode;customer_name\n"
        "FLIPKART;FK-5;2024-05-01;COD;L1;TSHIRT;1;499;560001;José Müller\n"
    )
    job = imported(checked(text.encode("cp1252"), sales), sales)
    assert job.created_count == 1
    assert Order.objects.get().customer_name == "José Müller"


def test_xlsx_with_numbers_and_dates_in_cells(world, sales):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(ORDER_HEADER)
    row = order_row("FK-X")
    row.update(quantity=2, selling_price=499.5, pincode=560001, order_date=datetime(2024, 5, 1))
    sheet.append([row[c] for c in ORDER_HEADER])
    buffer = io.BytesIO()
    workbook.save(buffer)

    job = imported(checked(buffer.getvalue(), sales, name="orders.xlsx"), sales)

    assert (job.error_count, job.created_count) == (0, 1)
    order = Order.objects.get()
    assert (order.item_count, order.ship_pincode) == (2, "560001")
    assert order.items.first().selling_price == Decimal("499.50")


# --- Every validation error names row, column and value ------------------------------------


BAD_CELLS = [
    ("channel", "AMAZON", "unknown channel"),
    ("sku", "NO-SUCH-SKU", "unknown SKU"),
    ("quantity", "0", "must be at least 1"),
    ("quantity", "two", "is not a whole number"),
    ("quantity", "1.5", "is not a whole number"),
    ("quantity", "5000", "more than 1000 units"),
    ("selling_price", "abc", "is not a number"),
    ("selling_price", "-5", "is negative"),
    ("selling_price", "1.999", "more than 2 decimals"),
    ("selling_price", "NaN", "is not a number"),
    ("shipping_charges", "1e999999", "is too large"),
    ("order_date", "2024-13-45", "is not a date"),
    ("order_date", "next tuesday", "is not a date"),
    ("order_date", "2999-01-01", "is in the future"),
    ("order_date", "1999-12-31", "is before 2000"),
    ("pincode", "56000", "is not a 6-digit Indian pincode"),
    ("pincode", "056001", "is not a 6-digit Indian pincode"),
    ("pincode", "ABCDEF", "is not a 6-digit Indian pincode"),
    ("payment_method", "CARD", "must be COD or PREPAID"),
    ("customer_email", "not-an-email", "is not an e-mail address"),
    ("customer_phone", "call me", "is not a phone number"),
    ("country", "Narnia", "is not a 2-letter country code"),
    ("customer_name", "x" * 201, "at most 200 are allowed"),
    ("channel_line_id", "L\x01", "contains control characters"),
    ("city", "Bengal\ufffduru", "could not be read"),
    ("buyer_gstin", "29ABCDE1234F1ZX", "is not a valid GSTIN: check character should be W"),
    ("buyer_gstin", "29ABCDE1234", "is not a valid GSTIN: must be 15 characters (got 11)"),
]
REQUIRED = ["order_date", "payment_method", "channel_line_id", "sku", "quantity", "selling_price"]


@pytest.mark.parametrize(("column", "value", "message"), BAD_CELLS)
def test_each_bad_value_is_reported_with_row_column_and_value(world, sales, column, value, message):
    data = csv_bytes([order_row("FK-1"), order_row("FK-2", **{column: value})])
    job = checked(data, sales)
    errors = errors_of(job)
    assert len(errors) == 1, errors
    row, col, shown, text = errors[0]
    assert (row, col) == (3, column)
    assert shown == value if len(value) <= 120 else shown.startswith(value[:120])
    assert message in text
    assert (job.new_count, job.invalid_count) == (1, 1)
    assert report_rows(job) == [[str(row), col, shown, text]]


@pytest.mark.parametrize("column", [*REQUIRED, "pincode"])
def test_a_missing_required_value_is_reported(world, sales, column):
    job = checked(csv_bytes([order_row(**{column: ""})]), sales)
    assert errors_of(job) == [(2, column, "", "required value is missing")]
    assert job.new_count == 0


@pytest.mark.parametrize("column", ["channel", "channel_order_id"])
def test_a_row_without_its_order_key_is_reported(world, sales, column):
    job = checked(csv_bytes([order_row(), order_row("FK-2", **{column: ""})]), sales)
    assert errors_of(job) == [(3, column, "", "required value is missing")]
    assert (job.new_count, job.invalid_count) == (1, 1)


def test_a_missing_required_column_is_reported_on_the_header_row(world, sales):
    header = [c for c in ORDER_HEADER if c not in ("sku", "pincode")]
    job = checked(csv_bytes([order_row()], header), sales)
    assert errors_of(job) == [
        (1, "sku", "", "required column is missing from the header"),
        (1, "pincode", "", "required column is missing from the header"),
    ]
    assert job.new_count == 0


def test_conflicting_rows_of_one_order(world, sales):
    data = csv_bytes(
        [
            order_row("FK-1", "L1", payment_method="PREPAID", pincode="560001"),
            order_row("FK-1", "L2", payment_method="COD", pincode="560001"),
            order_row("FK-1", "L3", payment_method="", pincode="", customer_name=""),
            order_row("FK-1", "L1", quantity="3"),
        ]
    )
    job = checked(data, sales)
    assert errors_of(job) == [
        (3, "payment_method", "COD", "conflicts with row 2 of this order, which has 'PREPAID'"),
        (5, "channel_line_id", "L1", "line L1 is already in row 2 of this order"),
    ]
    assert (job.new_count, job.invalid_count) == (0, 1)


def test_order_level_values_may_be_repeated_in_another_spelling(world, sales):
    data = csv_bytes(
        [
            order_row("FK-1", "L1", payment_method="COD", order_date="2024-05-01 10:30"),
            order_row("FK-1", "L2", payment_method="cod", order_date="01/05/2024 10:30"),
        ]
    )
    assert checked(data, sales).error_count == 0


def test_rows_of_one_order_must_be_next_to_each_other(world, sales):
    data = csv_bytes([order_row("FK-1", "L1"), order_row("FK-2"), order_row("FK-1", "L2")])
    job = checked(data, sales)
    message = (
        "rows of order FK-1 of channel FLIPKART are not next to each other in the file; "
        "sort the file by order and import again"
    )
    assert errors_of(job) == [(2, "channel_order_id", "FK-1", message)] * 1 + [
        (4, "channel_order_id", "FK-1", message)
    ]
    assert (job.new_count, job.invalid_count) == (1, 2)


def test_an_unreadable_row_inside_an_order_spoils_that_order(world, sales):
    text = csv_bytes([order_row("FK-1", "L1")]).decode() + (
        'FLIPKART,FK-1,2024-05-01,PREPAID,L2,TSHIRT,1,"49' + "9" * 200_000 + '"\n'
    )
    text += csv_bytes([order_row("FK-1", "L3")]).decode().split("\n", 1)[1]
    job = checked(text.encode(), sales)
    (error,) = errors_of(job)
    assert error[0] == 3 and error[1] == "(row)" and "field larger than field limit" in error[3]
    assert (job.new_count, job.invalid_count) == (0, 1)


def test_an_order_id_too_long_for_the_order_code(world, sales):
    long_id = "X" * 95
    job = checked(csv_bytes([order_row(long_id)]), sales)
    assert errors_of(job)[0][:3] == (2, "channel_order_id", long_id)
    assert "must fit 100 characters" in errors_of(job)[0][3]


def test_a_file_that_is_not_a_spreadsheet(world, sales):
    job = checked(b"\x89PNG\r\n\x1a\n\x00\x00garbage", sales, name="orders.xlsx")
    assert job.status == JobStatus.VALIDATED
    ((row, column, _, message),) = errors_of(job)
    assert (row, column) == (1, "(file)") and "not a readable XLSX" in message


# --- Confirm: nothing with errors unless valid-only; re-import skips --------------------------


def test_a_file_with_errors_imports_nothing_unless_valid_only_is_chosen(world, sales):
    data = csv_bytes([order_row("FK-1"), order_row("FK-2", sku="NOPE"), order_row("FK-3")])
    job = checked(data, sales)
    assert (job.new_count, job.invalid_count, job.error_count) == (2, 1, 1)

    with pytest.raises(ValidationError, match="the file has 1 errors"):
        services.import_job_confirm(job, valid_only=False, user=sales)
    job.refresh_from_db()
    assert job.status == JobStatus.VALIDATED
    assert Order.objects.count() == 0

    job = imported(job, sales, valid_only=True)
    assert job.status == JobStatus.DONE
    assert sorted(Order.objects.values_list("channel_order_id", flat=True)) == ["FK-1", "FK-3"]
    assert (job.created_count, job.invalid_count) == (2, 1)
    assert report_rows(job) == [["3", "sku", "NOPE", "unknown SKU"]]


def test_reimporting_the_same_file_creates_nothing_twice(world, sales):
    data = csv_bytes([order_row("FK-1"), order_row("FK-2", "L1"), order_row("FK-2", "L2")])
    imported(checked(data, sales), sales)
    units = OrderItem.objects.count()

    again = checked(data, sales)
    assert (again.new_count, again.skipped_count, again.error_count) == (0, 2, 0)
    assert again.preview["skipped"] == [
        "FLIPKART FK-1: already imported as order FLIPKART-FK-1",
        "FLIPKART FK-2: already imported as order FLIPKART-FK-2",
    ]
    with pytest.raises(ValidationError, match="nothing new to import"):
        services.import_job_confirm(again, valid_only=False, user=sales)

    bigger = checked(csv_bytes([order_row("FK-1"), order_row("FK-3")]), sales)
    assert (bigger.new_count, bigger.skipped_count) == (1, 1)
    bigger = imported(bigger, sales)
    assert (bigger.created_count, bigger.skipped_count) == (1, 1)
    assert Order.objects.count() == 3
    assert OrderItem.objects.count() == units + 1
    assert [
        "2",
        "channel_order_id",
        "FK-1",
        "skipped: already imported as order FLIPKART-FK-1",
    ] in (report_rows(bigger))


def test_an_order_created_between_check_and_import_is_skipped(world, sales):
    job = checked(csv_bytes([order_row("FK-1"), order_row("FK-2")]), sales)
    world.order("FK-2")  # a channel sync got there first
    job = imported(job, sales)
    assert (job.created_count, job.skipped_count) == (1, 1)
    assert Order.objects.count() == 2


def test_an_order_the_service_refuses_is_reported_and_the_batch_goes_on(world, sales, monkeypatch):
    real = order_import.orders_create
    calls = []

    def picky(inputs, **kwargs):
        calls.append(len(inputs))
        if any(i.channel_order_id == "FK-3" for i in inputs):
            raise ValidationError("Order FK-3: refused by the service")
        return real(inputs, **kwargs)

    monkeypatch.setattr(order_import, "orders_create", picky)
    rows = [order_row(f"FK-{n}") for n in range(1, 6)]
    job = imported(checked(csv_bytes(rows), sales), sales)

    assert (job.created_count, job.failed_count) == (4, 1)
    assert sorted(Order.objects.values_list("channel_order_id", flat=True)) == [
        "FK-1",
        "FK-2",
        "FK-4",
        "FK-5",
    ]
    assert calls[0] == 5  # one call for the batch, then halves around the refused order
    assert report_rows(job) == [
        ["4", "channel_order_id", "FK-3", "not imported: Order FK-3: refused by the service"]
    ]


def test_a_database_that_refuses_every_order_stops_the_job(world, sales, monkeypatch):
    from django.db import IntegrityError

    calls = []

    def broken(inputs, **kwargs):
        calls.append(len(inputs))
        raise IntegrityError('null value in column "kind" violates not-null constraint')

    monkeypatch.setattr(order_import, "orders_create", broken)
    job = checked(csv_bytes([order_row(f"FK-{n}") for n in range(200)]), sales)
    job = imported(job, sales)
    assert job.status == JobStatus.FAILED
    assert "20 orders in a row were refused by the database" in job.message
    assert "not-null constraint" in job.message
    assert len(calls) < 60  # a full bisection down to each of the 200 orders: 399 calls


def test_a_stopped_import_leaves_no_reading_thread(world, sales, monkeypatch):
    """The next batches are read ahead in a thread; a job stopped by an error stops it too
    (and closes the file) however far ahead it was."""
    import threading

    from django.db import IntegrityError

    def broken(inputs, **kwargs):
        raise IntegrityError("refused")

    monkeypatch.setattr(order_import, "orders_create", broken)
    monkeypatch.setattr(order_import, "ORDER_BATCH", 10)
    job = checked(csv_bytes([order_row(f"FK-{n}") for n in range(400)]), sales)
    assert imported(job, sales).status == JobStatus.FAILED
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]


def test_the_librarys_row_by_row_import_reads_the_same_column_declarations(world):
    """django-import-export's own import (the benchmark's baseline) parses the cells with the
    resource's columns and makes each order through the service, like the streaming one."""
    from import_export.formats.base_formats import CSV

    from imports.resources import OrderLineResource

    rows = [
        order_row("FK-1", "L1"),
        order_row("FK-1", "L2", quantity="2", order_date="", payment_method="", pincode=""),
        order_row("FK-2", payment_method="cod", buyer_gstin=GSTIN, country=""),
        order_row("FK-3", quantity="two"),
    ]
    dataset = CSV().create_dataset(csv_bytes(rows).decode())
    result = OrderLineResource(actor="test").import_data(dataset, dry_run=False)

    assert sorted(Order.objects.values_list("code", "item_count")) == [
        ("FLIPKART-FK-1", 3),
        ("FLIPKART-FK-2", 1),
    ]
    second = Order.objects.get(code="FLIPKART-FK-2")
    assert (second.payment_method, second.buyer_gstin, second.ship_country) == (
        "COD",
        GSTIN.upper(),
        "IN",
    )
    (refused,) = result.invalid_rows
    assert "Order FK-3: line 'L1': quantity is not a whole number" in str(refused.error)


def test_an_order_of_too_many_units_is_refused(world, sales):
    rows = [order_row("FK-1", f"L{n}", quantity="1000") for n in range(6)]
    job = checked(csv_bytes(rows), sales)
    assert errors_of(job) == [
        (7, "quantity", "1000", "the order has more than 5,000 units; split it")
    ]


def test_progress_is_written_while_the_import_runs(world, sales, monkeypatch):
    monkeypatch.setattr(order_import, "ORDER_BATCH", 2)
    monkeypatch.setattr(services, "PROGRESS_EVERY_ROWS", 1)
    seen = []
    real = order_import.orders_create

    def watching(inputs, **kwargs):
        seen.append(ImportJob.objects.values_list("status", "processed_rows").get())
        return real(inputs, **kwargs)

    monkeypatch.setattr(order_import, "orders_create", watching)
    job = checked(csv_bytes([order_row(f"FK-{n}") for n in range(6)]), sales)
    job = imported(job, sales)
    # a batch is handed out once the next order's first row is read: 3 rows, then 5
    assert seen == [("RUNNING", 0), ("RUNNING", 3), ("RUNNING", 5)]
    assert (job.processed_rows, job.total_rows, job.percent) == (6, 6, 100)


def test_a_job_runs_once_even_if_confirmed_twice(world, sales):
    job = checked(csv_bytes([order_row()]), sales)
    services.import_job_confirm(job, valid_only=False, user=sales)
    with pytest.raises(ValidationError, match="cannot start"):
        services.import_job_confirm(job, valid_only=False, user=sales)
    assert services.import_job_run(job.pk).status == JobStatus.DONE
    assert services.import_job_run(job.pk) is None  # a redelivered task finds it done
    assert Order.objects.count() == 1


def test_discarding_a_checked_file(world, sales):
    job = checked(csv_bytes([order_row()]), sales)
    job = services.import_job_discard(job, user=sales)
    assert job.status == JobStatus.DISCARDED and not job.file
    with pytest.raises(ValidationError):
        services.import_job_confirm(job, valid_only=False, user=sales)


def test_empty_and_oversized_uploads_are_refused(world, sales, settings):
    with pytest.raises(ValidationError, match="empty"):
        upload(b"", sales)
    settings.IMPORTS_MAX_UPLOAD_MB = 0
    with pytest.raises(ValidationError, match="at most 0 MB"):
        upload(csv_bytes([order_row()]), sales)


# --- Stock and serviceability -----------------------------------------------------------------


def test_stock_import_adds_to_shelves_and_reallocates_waiting_units(
    world, sales, monkeypatch, queued, django_capture_on_commit_callbacks
):
    from orders import tasks as order_tasks

    lead = UserFactory(username="lead", roles=["Warehouse Manager"])
    world.inventory.quantity = 0
    world.inventory.save()
    waiting = world.order("FK-W", quantity=2)
    assert waiting.items.first().status == OrderItemStatus.UNFULFILLABLE
    other = SkuFactory(code="MUG")
    Shelf.objects.create(facility=world.facility, code="B2")
    header = ["facility", "shelf", "sku", "quantity", "inventory_type"]
    data = csv_bytes(
        [
            {"facility": "WH1", "shelf": "A1", "sku": "TSHIRT", "quantity": "3"},
            {
                "facility": "wh1",
                "shelf": "B2",
                "sku": "MUG",
                "quantity": "5",
                "inventory_type": "bad",
            },
            {"facility": "WH1", "shelf": "A1", "sku": "TSHIRT", "quantity": "1"},
            {"facility": "WH9", "shelf": "A1", "sku": "TSHIRT", "quantity": "1"},
            {"facility": "WH1", "shelf": "Z9", "sku": "TSHIRT", "quantity": "1"},
            {"facility": "WH1", "shelf": "A1", "sku": "NOPE", "quantity": "1"},
            {"facility": "WH1", "shelf": "A1", "sku": "TSHIRT", "quantity": "-1"},
        ],
        header,
    )
    with pytest.raises(ValidationError):  # a Sales Manager may not import stock
        upload(data, sales, kind="INVENTORY")
    job = checked(data, lead, kind="INVENTORY")
    assert errors_of(job) == [
        (5, "facility", "WH9", "unknown facility"),
        (6, "shelf", "Z9", "no such shelf in facility WH1"),
        (7, "sku", "NOPE", "unknown SKU"),
        (8, "quantity", "-1", "must be at least 1"),
    ]
    sent = []
    monkeypatch.setattr(order_tasks.reallocate_unfulfillable, "delay", lambda **kw: sent.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        job = imported(job, lead, valid_only=True)

    assert job.created_count == 3
    world.inventory.refresh_from_db()
    assert world.inventory.quantity == 4
    bad = Inventory.objects.get(sku=other)
    assert (bad.quantity, bad.inventory_type, bad.shelf.code) == (5, "BAD_INVENTORY", "B2")
    assert sent == [{"sku_ids": [world.sku.pk]}]  # only good stock re-allocates


def test_serviceability_upload_replaces_every_row(world, sales):
    lead = UserFactory(username="lead", roles=["Warehouse Manager"])
    delhivery = ProviderFactory(code="DELHIVERY")
    header = ["pincode", "payment_method", "shipping_provider", "priority"]
    data = csv_bytes(
        [
            {"pincode": "110001", "payment_method": "COD", "shipping_provider": "DELHIVERY"},
            {
                "pincode": "110001",
                "payment_method": "PREPAID",
                "shipping_provider": "bluedart",
                "priority": "2",
            },
            {
                "pincode": "110001",
                "payment_method": "COD",
                "shipping_provider": "DELHIVERY",
                "priority": "1",
            },
            {
                "pincode": "110001",
                "payment_method": "COD",
                "shipping_provider": "DELHIVERY",
                "priority": "3",
            },
            {"pincode": "110002", "payment_method": "COD", "shipping_provider": "FEDEX"},
            {"pincode": "11000", "payment_method": "COD", "shipping_provider": "DELHIVERY"},
        ],
        header,
    )
    job = checked(data, lead, kind="SERVICEABILITY")
    assert errors_of(job) == [
        (
            5,
            "priority",
            "3",
            "conflicts with row 2, which gives DELHIVERY priority 1 for 110001 COD",
        ),
        (6, "shipping_provider", "FEDEX", "unknown shipping provider"),
        (7, "pincode", "11000", "is not a 6-digit Indian pincode"),
    ]
    assert (job.new_count, job.skipped_count) == (2, 1)
    assert Serviceability.objects.count() == 2  # world's rows, untouched by the check

    job = imported(job, lead, valid_only=True)

    rows = set(
        Serviceability.objects.values_list(
            "pincode", "payment_method", "shipping_provider__code", "priority"
        )
    )
    assert rows == {("110001", "COD", "DELHIVERY", 1), ("110001", "PREPAID", "BLUEDART", 2)}
    assert "2 previous serviceability rows were replaced" in job.message
    assert delhivery.serviceability.count() == 1


# --- The admin: upload returns at once, preview, confirm, permissions -------------------------


def test_the_admin_flow_upload_preview_confirm_result(
    world, client, queued, django_capture_on_commit_callbacks
):
    user = UserFactory(username="sales", roles=["Sales Manager"])
    client.force_login(user)
    page = client.get(reverse("admin:imports_importjob_add") + "?kind=ORDERS")
    assert page.status_code == 200
    assert b"channel_order_id" in page.content and b"download a template" in page.content

    data = csv_bytes([order_row("FK-1"), order_row("FK-2", quantity="0"), order_row("FK-3")])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:imports_importjob_add"),
            {"kind": "ORDERS", "file": io.BytesIO(data)},
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:imports_importjob_change", args=[job.pk])
    # the request only stored the file and queued the check
    assert job.status == JobStatus.PENDING and job.total_rows == 0
    assert queued == [("check_import", job.pk)]
    assert job.file.name.startswith("imports/uploads/")
    assert job.file.storage.exists(job.file.name)

    page = client.get(response.url)
    assert b"Waiting for a worker" in page.content
    assert (
        client.get(reverse("admin:imports_importjob_progress", args=[job.pk])).json()["status"]
        == "PENDING"
    )

    services.import_job_check(job.pk)  # the worker
    page = client.get(response.url).content.decode()
    assert "Import only the 2 valid orders" in page
    assert "<td>3</td><td>quantity</td><td><code>0</code></td><td>must be at least 1</td>" in page
    assert "FLIPKART FK-1: 1 line, 1 unit, 499.00 (row 2)" in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:imports_importjob_confirm", args=[job.pk]), {"valid_only": "1"})
    assert queued[-1] == ("run_import", job.pk)
    assert (
        client.get(reverse("admin:imports_importjob_progress", args=[job.pk])).json()["status"]
        == "QUEUED"
    )
    services.import_job_run(job.pk)  # the worker

    progress = client.get(reverse("admin:imports_importjob_progress", args=[job.pk])).json()
    assert progress["status"] == "DONE" and progress["created_count"] == 2
    assert progress["percent"] == 100
    page = client.get(response.url).content.decode()
    assert "Imported 2, skipped 0 already there, 1 not imported." in page
    report = client.get(reverse("admin:imports_importjob_report", args=[job.pk]))
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert body.splitlines() == ["row,column,value,error", "3,quantity,0,must be at least 1"]
    assert Order.objects.count() == 2


def test_without_valid_only_the_admin_offers_no_import_of_a_file_with_errors(world, client, sales):
    client.force_login(sales)
    job = checked(csv_bytes([order_row("FK-1", sku="NOPE")]), sales)
    page = client.get(reverse("admin:imports_importjob_change", args=[job.pk])).content.decode()
    assert "nothing is imported unless" in page and 'name="_import"' not in page
    client.post(reverse("admin:imports_importjob_confirm", args=[job.pk]), {"valid_only": "0"})
    job.refresh_from_db()
    assert job.status == JobStatus.VALIDATED and Order.objects.count() == 0


def test_the_template_download(world, client, sales):
    client.force_login(sales)
    response = client.get(reverse("admin:imports_importjob_template", args=["ORDERS"]))
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(ORDER_HEADER)
    assert lines[1].startswith("FLIPKART,OD1234567890,2024-05-01 14:30,PREPAID,")
    assert "'+91 98450 00000" in lines[1]  # escaped like every export


def test_sales_manager_may_import_orders_pick_and_pack_may_not(world, client, sales, packer):
    job = checked(csv_bytes([order_row()]), sales)
    urls = [
        reverse("admin:imports_importjob_add"),
        reverse("admin:imports_importjob_template", args=["ORDERS"]),
        reverse("admin:imports_importjob_change", args=[job.pk]),
        reverse("admin:imports_importjob_progress", args=[job.pk]),
        reverse("admin:imports_importjob_report", args=[job.pk]),
    ]
    client.force_login(packer)
    assert [client.get(u).status_code for u in urls] == [403] * 5
    response = client.post(reverse("admin:imports_importjob_confirm", args=[job.pk]))
    assert response.status_code == 403
    assert client.get(reverse("admin:orders_order_changelist")).status_code == 200
    assert b"Import orders" not in client.get(reverse("admin:orders_order_changelist")).content
    with pytest.raises(ValidationError):
        upload(csv_bytes([order_row()]), packer)

    client.force_login(sales)
    assert [client.get(u).status_code for u in urls] == [200] * 5
    changelist = client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "Import orders" in changelist and "Export CSV" in changelist
    # a Sales Manager imports orders, not stock or serviceability
    assert (
        client.get(reverse("admin:imports_importjob_template", args=["INVENTORY"])).status_code
        == 403
    )
    form = client.get(reverse("admin:imports_importjob_add")).content.decode()
    assert 'value="ORDERS"' in form and 'value="INVENTORY"' not in form


def test_the_readme_documents_every_import_column():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Importing and exporting orders", 1)[1].split("\n## ", 1)[0]
    for columns in resources.COLUMNS.values():
        for column in columns:
            assert f"`{column.name}`" in section, column.name
