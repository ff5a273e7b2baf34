"""Printing from the admin, over HTTP as staff of each role, and `render_document`.

Every PDF is the real one (orders.printing + documents), read back with poppler's pdftotext:
the buttons on the change pages and the bulk actions give one PDF whose text holds the
selected documents' codes; roles without the permission get no action and no PDF; what
cannot be printed gives a message and no PDF; a selection above PRINT_INLINE_MAX becomes a
background job (run by the task, and once by a real Celery worker) whose download holds every
document.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pikepdf
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

import imports.printing
from documents.pdf import page_count
from imports.models import ExportJob, ExportKind, JobStatus
from imports.tasks import run_export
from inventory.models import Inventory
from orders.models import Invoice, Manifest, Picklist, Shipment, ShipmentStatus
from orders.services import (
    return_manifest_add_shipments,
    return_manifest_close,
    return_manifest_create,
    shipments_expect_return,
)
from uniware.core.admin_utils import admin_url

from .access_probe import action_names
from .factories import ShelfFactory, SkuFactory, UserFactory
from .returns_flow import advance, return_invoice_sequence, shipment_of
from .workers import celery_worker


@pytest.fixture(autouse=True)
def _pdftotext(require_services):
    if not shutil.which("pdftotext"):
        require_services("pdftotext is missing: apt-get install poppler-utils")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def text_of(pdf: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def pages(pdf: bytes) -> int:
    return page_count(pdf)


def pdf_of(response) -> bytes:
    """The inline PDF an action or button answered with."""
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    assert response["Content-Type"] == "application/pdf"
    assert re.fullmatch(r'inline; filename="[\w-]+\.pdf"', response["Content-Disposition"])
    return response.content


def shown(response) -> list[str]:
    return [re.sub(r"<[^>]+>", " ", str(m)) for m in response.context["messages"]]


def staff(role: str):
    return UserFactory(username=role.lower().replace(" ", "-"), roles=[role])


def act(client, model, action: str, objs, **extra):
    """POST a changelist action for `objs`, as the action bar does."""
    meta = model._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    data = {"action": action, "_selected_action": [o.pk for o in objs], "index": 0}
    return client.post(url, data, **extra)


def offered(client, model) -> set[str]:
    meta = model._meta
    return action_names(client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")))


def buttons(client, obj) -> dict[str, dict]:
    page = client.get(admin_url(obj))
    assert page.status_code == 200
    return {b["label"]: b for b in page.context["object_action_buttons"]}


def press(client, obj, label: str, **extra):
    """Press a change-page button: its form POSTs the action for this object (new tab)."""
    page = client.get(admin_url(obj))
    html = page.content.decode()
    found = {b["label"]: b for b in page.context["object_action_buttons"]}
    assert label in found, list(found)
    name = found[label]["name"]
    form = re.search(rf'<form [^>]*target="_blank"[^>]*>(?:(?!</form>).)*"{name}"', html, re.S)
    assert form, f"no new-tab form for {label}"
    data = {"action": name, "_selected_action": obj.pk, "index": 0, "_return_to": admin_url(obj)}
    return client.post(page.context["object_action_url"], data, **extra)


def second_shelf_order(world, channel_order_id: str):
    """An order of JEANS, stocked on shelf B1 (walked after A1, where TSHIRT is)."""
    shelf = ShelfFactory(facility=world.facility, code="B1")
    jeans = SkuFactory(code="JEANS", name="Blue jeans")
    Inventory.objects.create(facility=world.facility, shelf=shelf, sku=jeans, quantity=10)
    return world.order(channel_order_id, sku="JEANS")


@pytest.fixture
def manifested(world):
    """Two shipments picked on one picklist, invoiced, labelled and on one manifest: FK-1
    (JEANS on shelf B1) and FK-2 (TSHIRT on shelf A1), so FK-2 is picked first."""
    first = shipment_of(second_shelf_order(world, "FK-1"))
    second = shipment_of(world.order("FK-2"))
    advance([first, second], ShipmentStatus.MANIFESTED)
    return [Shipment.objects.get(pk=s.pk) for s in (first, second)]


def credit_note(world, channel_order_id: str) -> Invoice:
    """A courier return received on a return manifest: its credit note."""
    return_invoice_sequence(world)
    shipment = shipment_of(world.order(channel_order_id))
    advance(shipment, ShipmentStatus.DISPATCHED)
    shipments_expect_return([shipment.pk])
    manifest = return_manifest_create(facility=world.facility)
    return_manifest_add_shipments(manifest, [shipment.pk])
    return_manifest_close(manifest)
    return Invoice.objects.get(shipment=shipment, invoice_type="SALE_RETURN")


def invoice_of(shipment) -> Invoice:
    return Invoice.objects.get(shipment=shipment, invoice_type="SALE")


# --- Buttons on the owner pages -------------------------------------------------------------


def test_shipment_buttons_print_its_invoice_and_its_label(manifested, client):
    client.force_login(staff("Pick and Pack"))
    shipment = manifested[0]
    assert {"Print invoice", "Print label"} <= set(buttons(client, shipment))
    invoice = text_of(pdf_of(press(client, shipment, "Print invoice")))
    assert invoice_of(shipment).code in invoice and "TAX INVOICE" in invoice
    label = pdf_of(press(client, shipment, "Print label"))
    assert shipment.tracking_number in text_of(label) and pages(label) == 1


def test_invoice_page_prints_the_same_stored_invoice(manifested, client):
    client.force_login(staff("Pick and Pack"))
    invoice = invoice_of(manifested[1])
    first = pdf_of(press(client, invoice, "Print"))
    assert invoice.code in text_of(first)
    assert pdf_of(press(client, invoice, "Print")) == first  # rendered once, then kept


def test_picklist_page_prints_the_picklist_and_its_labels_in_pick_order(manifested, client):
    client.force_login(staff("Pick and Pack"))
    picklist = Picklist.objects.get()
    sheet = text_of(pdf_of(press(client, picklist, "Print picklist")))
    assert picklist.code in sheet and "TSHIRT" in sheet and "JEANS" in sheet
    labels = pdf_of(press(client, picklist, "Print labels"))
    text = text_of(labels)
    fk1, fk2 = (s.tracking_number for s in manifested)
    assert pages(labels) == 2 and text.index(fk2) < text.index(fk1)  # shelf A1 before B1


def test_manifest_page_prints_the_handover_sheet(manifested, client):
    client.force_login(staff("Warehouse Manager"))
    manifest = Manifest.objects.get()
    sheet = text_of(pdf_of(press(client, manifest, "Print handover sheet")))
    assert manifest.code in sheet
    assert all(s.tracking_number in sheet for s in manifested)


def test_buttons_show_only_what_can_be_printed_by_whom(world, manifested, client):
    packed = shipment_of(world.order("FK-3"))
    advance(packed, ShipmentStatus.PACKED)  # invoiced, no label yet
    client.force_login(staff("Pick and Pack"))
    assert "Print label" not in buttons(client, packed)
    assert "Print invoice" in buttons(client, packed)
    client.force_login(staff("Sales Manager"))  # sees shipments and invoices, prints nothing
    assert not {"Print invoice", "Print label"} & set(buttons(client, manifested[0]))
    assert "Print" not in buttons(client, invoice_of(manifested[0]))
    client.force_login(staff("Returns Manager"))  # credit notes only
    assert "Print" not in buttons(client, invoice_of(manifested[0]))


# --- Bulk actions ---------------------------------------------------------------------------


def test_bulk_labels_one_pdf_in_pick_order_and_four_up(manifested, client):
    client.force_login(staff("Pick and Pack"))
    labels = pdf_of(act(client, Shipment, "print_labels", manifested))
    text = text_of(labels)
    fk1, fk2 = (s.tracking_number for s in manifested)
    assert pages(labels) == 2 and text.index(fk2) < text.index(fk1)
    four_up = pdf_of(act(client, Shipment, "print_labels_4up", manifested))
    assert pages(four_up) == 1 and {fk1, fk2} <= set(text_of(four_up).split())
    with pikepdf.Pdf.open(io.BytesIO(four_up)) as document:
        width, height = document.pages[0].mediabox[2:]
    assert (round(float(width)), round(float(height))) == (595, 842)  # A4


def test_bulk_invoices_from_shipments_and_from_the_invoice_list(manifested, client):
    client.force_login(staff("Pick and Pack"))
    codes = [invoice_of(s).code for s in manifested]
    from_shipments = pdf_of(act(client, Shipment, "print_invoices", manifested))
    text = text_of(from_shipments)
    assert text.index(codes[1]) < text.index(codes[0])  # the labels' order: pick order
    invoices = [invoice_of(s) for s in manifested]
    from_list = text_of(pdf_of(act(client, Invoice, "print_invoices", invoices)))
    assert all(code in from_list for code in codes)


def test_bulk_picklists_and_handover_sheets(world, manifested, client):
    later = shipment_of(world.order("FK-3"))
    advance(later, ShipmentStatus.MANIFESTED)  # a second picklist, on the same open manifest
    client.force_login(staff("Returns Manager"))  # may view them: may print them
    picklists = list(Picklist.objects.order_by("pk"))
    assert len(picklists) == 2
    text = text_of(pdf_of(act(client, Picklist, "print_picklists", picklists)))
    assert all(p.code in text for p in picklists)
    manifest = Manifest.objects.get()
    sheet = text_of(pdf_of(act(client, Manifest, "print_handover_sheets", [manifest])))
    later.refresh_from_db()
    assert all(s.tracking_number in sheet for s in [*manifested, later])


def test_returns_print_credit_notes_but_not_tax_invoices(world, manifested, client):
    note = credit_note(world, "RET-1")
    client.force_login(staff("Returns Manager"))
    assert "print_invoices" in offered(client, Invoice)
    assert not {"print_labels", "print_invoices"} & offered(client, Shipment)
    assert note.code in text_of(pdf_of(press(client, note, "Print")))
    sale = invoice_of(manifested[0])
    response = act(client, Invoice, "print_invoices", [note, sale], follow=True)
    assert response["Content-Type"].startswith("text/html")
    [message] = shown(response)
    assert "Nothing printed" in message and sale.code in message and note.code not in message


def test_roles_without_the_permission_get_no_action_and_no_pdf(manifested, client):
    client.force_login(staff("Sales Manager"))
    assert not {"print_labels", "print_labels_4up", "print_invoices"} & offered(client, Shipment)
    response = act(client, Shipment, "print_labels", manifested, follow=True)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert "print_invoices" not in offered(client, Invoice)
    client.force_login(staff("Inbound Manager"))  # no view of shipments at all
    assert act(client, Shipment, "print_labels", manifested).status_code == 403


def test_what_cannot_be_printed_is_named_and_nothing_is_printed(world, manifested, client):
    packed = shipment_of(world.order("FK-3"))
    advance(packed, ShipmentStatus.PACKED)
    fresh = shipment_of(world.order("FK-4"))  # not even invoiced
    client.force_login(staff("Pick and Pack"))
    response = act(client, Shipment, "print_labels", [*manifested, packed], follow=True)
    assert response["Content-Type"].startswith("text/html")
    [message] = shown(response)
    assert "Nothing printed" in message and packed.code in message and "AWB" in message
    assert not any(s.code in message for s in manifested)
    response = act(client, Shipment, "print_invoices", [manifested[0], fresh], follow=True)
    [message] = shown(response)
    assert "not invoiced" in message and fresh.code in message
    assert manifested[0].code not in message


# --- Big selections: a background job --------------------------------------------------------


def _labelled(world, n: int) -> list[Shipment]:
    shipments = [shipment_of(world.order(f"BIG-{i}")) for i in range(n)]
    advance(shipments, ShipmentStatus.READY_TO_SHIP)
    return list(Shipment.objects.filter(pk__in=[s.pk for s in shipments]).order_by("code"))


def test_a_big_selection_becomes_a_job_whose_pdf_holds_every_document(
    world, client, settings, monkeypatch
):
    settings.PRINT_INLINE_MAX = 2
    monkeypatch.setattr(imports.printing, "CHUNK", 2)  # 3 labels: two chunks, merged
    shipments = _labelled(world, 3)
    packer = staff("Pick and Pack")
    client.force_login(packer)
    response = act(client, Shipment, "print_labels", shipments)
    job = ExportJob.objects.get()
    assert response.status_code == 303
    assert response["Location"] == reverse("admin:imports_exportjob_change", args=[job.pk])
    assert (job.kind, job.format, job.status) == (ExportKind.LABELS, "pdf", JobStatus.QUEUED)
    assert job.total_rows == 3 and job.created_by == packer
    page = client.get(response["Location"])
    assert page.status_code == 200 and "0 of 3 documents" in page.content.decode()

    assert run_export(job.pk) == JobStatus.DONE  # what the worker runs
    job.refresh_from_db()
    assert (job.processed_rows, job.message) == (3, "3 labels printed on 3 pages.")
    page = client.get(reverse("admin:imports_exportjob_change", args=[job.pk])).content.decode()
    download = reverse("admin:imports_exportjob_download", args=[job.pk])
    assert "3 of 3 documents" in page and download in page
    response = client.get(download)
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    pdf = b"".join(response.streaming_content)
    text = text_of(pdf)
    assert pages(pdf) == 3 and all(s.tracking_number in text for s in shipments)


def test_a_print_job_is_seen_by_whoever_may_print_it(world, client, settings):
    settings.PRINT_INLINE_MAX = 2
    client.force_login(staff("Pick and Pack"))
    act(client, Shipment, "print_labels", _labelled(world, 3))
    job = ExportJob.objects.get()
    run_export(job.pk)
    download = reverse("admin:imports_exportjob_download", args=[job.pk])
    client.force_login(staff("Warehouse Manager"))  # sees everyone's jobs
    assert client.get(download).status_code == 200
    for role in ("Returns Manager", "Sales Manager"):  # may not print labels
        client.force_login(staff(role))
        assert client.get(download).status_code in (403, 404)


def test_a_big_selection_with_an_unprintable_record_makes_no_job(world, client, settings):
    settings.PRINT_INLINE_MAX = 2
    shipments = _labelled(world, 2)
    packed = shipment_of(world.order("FK-3"))
    advance(packed, ShipmentStatus.PACKED)
    client.force_login(staff("Pick and Pack"))
    response = act(client, Shipment, "print_labels", [*shipments, packed], follow=True)
    [message] = shown(response)
    assert "Nothing printed" in message and packed.code in message
    assert not ExportJob.objects.exists()


def test_a_job_that_meets_an_unprintable_record_fails_naming_it(world, client, settings):
    settings.PRINT_INLINE_MAX = 2
    shipments = _labelled(world, 3)
    client.force_login(staff("Pick and Pack"))
    act(client, Shipment, "print_labels", shipments)
    Shipment.objects.filter(pk=shipments[1].pk).update(tracking_number="")  # meanwhile
    job = ExportJob.objects.get()
    assert run_export(job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert shipments[1].code in job.message and not job.file


def test_a_four_up_job_whose_worker_died_is_printed_by_the_next_attempt(world, client, settings):
    settings.PRINT_INLINE_MAX = 2
    shipments = _labelled(world, 3)
    client.force_login(staff("Pick and Pack"))
    act(client, Shipment, "print_labels_4up", shipments)
    job = ExportJob.objects.get()
    long_ago = timezone.now() - timedelta(hours=1)
    ExportJob.objects.filter(pk=job.pk).update(  # a worker took it, then died
        status=JobStatus.RUNNING, attempts=1, started_at=long_ago, heartbeat_at=long_ago
    )
    assert run_export(job.pk) == JobStatus.DONE  # as the reaper queues it again
    job.refresh_from_db()
    assert job.attempts == 2 and job.message == "3 labels printed on 1 page."
    pdf = job.file.read()
    assert pages(pdf) == 1 and all(s.tracking_number in text_of(pdf) for s in shipments)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_prints_a_big_selection(client, settings, require_services, tmp_path):
    from .factories import make_world

    settings.PRINT_INLINE_MAX = 2
    settings.MEDIA_ROOT = tmp_path / "var" / "media"  # the worker's too
    world = make_world()
    shipments = _labelled(world, 3)
    client.force_login(staff("Pick and Pack"))
    env = {"UNIWARE_VAR_DIR": str(tmp_path / "var")}
    with celery_worker("imports", tmp_path / "worker.log", require_services, env=env):
        response = act(client, Shipment, "print_invoices", shipments)
        assert response.status_code == 303
        job = ExportJob.objects.get()
        progress = reverse("admin:imports_exportjob_progress", args=[job.pk])
        deadline = time.monotonic() + 120
        while client.get(progress).json()["status"] not in ("DONE", "FAILED"):
            if time.monotonic() > deadline:
                raise AssertionError((tmp_path / "worker.log").read_text()[-3000:])
            time.sleep(0.2)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.message
    response = client.get(reverse("admin:imports_exportjob_download", args=[job.pk]))
    text = text_of(b"".join(response.streaming_content))
    assert all(invoice_of(s).code in text for s in shipments)


# --- render_document ------------------------------------------------------------------------


def test_render_document_renders_each_kind_to_a_file(world, manifested, tmp_path):
    note = credit_note(world, "RET-1")
    sale = invoice_of(manifested[0])
    picklist = Picklist.objects.order_by("pk").first()
    manifest = Shipment.objects.get(pk=manifested[0].pk).manifest
    cases = [
        ("invoice", [sale.code], [sale.code, "TAX INVOICE"]),
        ("credit-note", [note.code], [note.code, "CREDIT NOTE", note.reverses.code]),
        ("label", [s.code for s in manifested], [s.tracking_number for s in manifested]),
        ("picklist", [picklist.code], [picklist.code]),
        ("manifest", [manifest.code], [manifest.code, manifested[1].tracking_number]),
    ]
    for kind, codes, expected in cases:
        out = tmp_path / f"{kind}.pdf"
        said = io.StringIO()
        call_command("render_document", kind, *codes, "-o", str(out), stdout=said)
        assert str(out) in said.getvalue()
        text = text_of(out.read_bytes())
        assert all(e in text for e in expected), (kind, text[:500])
    out = tmp_path / "four-up.pdf"
    codes = [s.code for s in manifested]
    call_command("render_document", "label", *codes, "--four-up", "-o", str(out))
    assert pages(out.read_bytes()) == 1


def test_render_document_refuses_with_the_code_named(world, manifested, tmp_path):
    note = credit_note(world, "RET-1")
    sale = invoice_of(manifested[0])
    packed = shipment_of(world.order("FK-3"))
    advance(packed, ShipmentStatus.PACKED)
    out = str(tmp_path / "x.pdf")
    refusals = [
        (["invoice", note.code], note.code),
        (["credit-note", sale.code], sale.code),
        (["label", "SP-NOPE"], "SP-NOPE"),
        (["picklist", manifested[0].code], manifested[0].code),
        (["label", manifested[0].code, packed.code], packed.code),  # no AWB: NotPrintable
        (["invoice", sale.code, "--four-up"], "--four-up"),
    ]
    for args, named in refusals:
        with pytest.raises(CommandError, match=re.escape(named)):
            call_command("render_document", *args, "-o", out)
    assert not Path(out).exists()
