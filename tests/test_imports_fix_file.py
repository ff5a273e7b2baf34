"""The rows to fix (issue 15): the rows an import could not take, as uploaded, with an
`errors` column; corrected and uploaded back as they are, they import."""

# ruff: noqa: F811  (pytest fixtures imported from tests.importing are parameters)
from __future__ import annotations

import csv
import io

from django.urls import reverse

from imports.models import ImportJob
from orders.models import Order

from .factories import UserFactory
from .importing import ORDER_HEADER, checked, csv_bytes, imported, media, order_row  # noqa: F401


def fix_rows(job: ImportJob) -> list[dict]:
    job.refresh_from_db()
    with job.fix_file.open("rb") as f:
        return list(csv.DictReader(io.StringIO(f.read().decode("utf-8-sig"))))


def test_the_rows_to_fix_come_back_whole_and_import_once_corrected(world, media, client):
    sales = UserFactory(roles=["Sales Manager"])
    rows = [
        order_row("FK-1", "L1"),
        order_row("FK-2", "L1"),
        order_row("FK-2", "L2", sku="NOPE", quantity="2"),
        order_row("FK-3", "L1", pincode="12"),
    ]
    job = imported(checked(csv_bytes(rows), sales), sales, valid_only=True)
    assert list(Order.objects.values_list("channel_order_id", flat=True)) == ["FK-1"]

    fix = fix_rows(job)

    assert list(fix[0]) == [*ORDER_HEADER, "errors"]  # the upload's own columns, then why
    assert [(r["channel_order_id"], r["channel_line_id"]) for r in fix] == [
        ("FK-2", "L1"),  # the whole order, so it comes back whole
        ("FK-2", "L2"),
        ("FK-3", "L1"),
    ]
    assert fix[0]["errors"] == "see its order"
    assert fix[1]["errors"].startswith("sku: ") and fix[1]["quantity"] == "2"
    assert fix[2]["errors"].startswith("pincode: ")
    client.force_login(sales)
    page = client.get(reverse("admin:imports_importjob_change", args=[job.pk]))
    assert "Download the rows not imported" in page.content.decode()
    download = client.get(reverse("admin:imports_importjob_report", args=[job.pk]) + "?rows=1")
    assert b"".join(download.streaming_content).decode("utf-8-sig").startswith("channel,")

    for row in fix:  # staff correct the cells and upload the file back as it is
        row["sku"] = "TSHIRT" if row["sku"] == "NOPE" else row["sku"]
        row["pincode"] = "560001"
    again = checked(csv_bytes(fix, list(fix[0])), sales)
    assert (again.error_count, again.new_count) == (0, 2), again.preview["errors"]
    assert "errors" in again.preview["ignored_columns"]
    imported(again, sales)
    assert Order.objects.get(channel_order_id="FK-2").item_count == 3
    assert not ImportJob.objects.get(pk=again.pk).fix_file  # nothing left to fix
