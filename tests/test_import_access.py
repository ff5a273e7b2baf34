# ruff: noqa: F811  (pytest fixtures imported from tests.importing are parameters)
"""Who sees which import and export job (imports.access): the data permission of what the job
holds, and own jobs unless `imports.view_all_jobs`. Users get their permissions from groups
made here (the predefined roles are the lead engineer's, in uniware/core/roles.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from imports.access import DATA_PERMISSIONS
from imports.models import ExportJob, ImportJob, JobStatus

from .factories import UserFactory
from .importing import media  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("media")

JOB_PAGES = ["view", "imports", "exports"]
INBOUND = [
    "imports.import_inventory",
    "imports.export_inventory",
    "imports.view_importjob",
    "imports.view_exportjob",
    "imports.view_all_jobs",  # even seeing everyone's jobs shows no order data
    "inventory.view_inventory",
    "inventory.view_serviceability",
]
SALES = [
    "imports.import_orders",
    "imports.export_orders",
    "imports.view_importjob",
    "imports.view_exportjob",
    "orders.view_order",
    "orders.view_orderitem",
    "orders.view_shipment",
]


def group(name: str, perms: list[str]) -> Group:
    made, _ = Group.objects.get_or_create(name=f"test {name}")
    for perm in perms:
        app, codename = perm.split(".")
        made.permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return made


def user(name: str, perms: list[str]):
    made = UserFactory(username=name)
    made.groups.add(group(name, perms))
    return made


def import_job(kind: str, owner) -> ImportJob:
    """A checked import with its upload and its report, as the worker leaves it."""
    job = ImportJob(
        kind=kind, status=JobStatus.VALIDATED, original_name=f"{kind}.csv", created_by=owner
    )
    job.file.save(f"{kind}.csv", ContentFile(b"customer_name\nAsha Rao\n"), save=False)
    job.error_report.save("report.csv", ContentFile(b"row,column,value,error\n"), save=False)
    job.preview = {"new": ["FLIPKART FK-1: Asha Rao"]}
    job.validated_at = timezone.now()
    job.save()
    return job


def export_job(kind: str, owner) -> ExportJob:
    job = ExportJob(kind=kind, status=JobStatus.DONE, created_by=owner, finished_at=timezone.now())
    job.file.save(f"{kind}.csv", ContentFile(b"customer_phone\n+91 98450 00000\n"), save=False)
    job.save()
    return job


def import_urls(job: ImportJob) -> list[str]:
    return [
        reverse("admin:imports_importjob_change", args=[job.pk]),
        reverse("admin:imports_importjob_progress", args=[job.pk]),
        reverse("admin:imports_importjob_report", args=[job.pk]),
        reverse("admin:imports_importjob_history", args=[job.pk]),
    ]


def export_urls(job: ExportJob) -> list[str]:
    return [
        reverse("admin:imports_exportjob_change", args=[job.pk]),
        reverse("admin:imports_exportjob_progress", args=[job.pk]),
        reverse("admin:imports_exportjob_download", args=[job.pk]),
    ]


def listed(client, model: str) -> set[int]:
    response = client.get(reverse(f"admin:imports_{model}_changelist"))
    assert response.status_code == 200
    return {job.pk for job in response.context["cl"].result_list}


def statuses(client, urls: list[str]) -> list[int]:
    return [client.get(url).status_code for url in urls]


def test_every_kind_has_its_data_permissions_and_they_exist(db):
    for kind, needed in DATA_PERMISSIONS.items():
        for each in needed:
            for perm in [each] if isinstance(each, str) else each:  # a tuple: any one of them
                app, codename = perm.split(".")
                assert Permission.objects.filter(
                    content_type__app_label=app, codename=codename
                ).exists(), (kind, perm)
    assert Permission.objects.filter(
        content_type__app_label="imports", codename="view_all_jobs"
    ).exists()


@pytest.mark.parametrize("kind", ["ORDERS", "UNITS", "SHIPMENTS"])
def test_inbound_cannot_see_order_exports_but_sees_stock_exports(db, client, kind):
    sales = user("sales", SALES)
    inbound = user("inbound", INBOUND)
    orders = export_job(kind, sales)
    mine = export_job(kind, inbound)  # even one of their own (made before they lost a right)
    stock = export_job("INVENTORY", sales)
    client.force_login(inbound)
    assert listed(client, "exportjob") == {stock.pk}
    assert statuses(client, export_urls(orders)) == [404, 404, 404]
    assert statuses(client, export_urls(mine)) == [404, 404, 404]
    assert statuses(client, export_urls(stock)) == [200, 200, 200]


def test_inbound_cannot_open_order_import_previews_or_reports(db, client):
    sales = user("sales", SALES)
    inbound = user("inbound", INBOUND)
    orders = import_job("ORDERS", sales)
    stock = import_job("INVENTORY", sales)
    client.force_login(inbound)
    assert listed(client, "importjob") == {stock.pk}
    assert statuses(client, import_urls(orders)) == [404, 404, 404, 302]  # history: "not found"
    for action in ("confirm", "discard"):
        url = reverse(f"admin:imports_importjob_{action}", args=[orders.pk])
        assert client.post(url).status_code == 404
    assert statuses(client, import_urls(stock)) == [200, 200, 200, 200]
    page = client.get(import_urls(orders)[0])
    assert b"Asha Rao" not in page.content
    orders.refresh_from_db()
    assert orders.status == JobStatus.VALIDATED


def test_a_sales_user_sees_own_order_jobs_not_another_sales_users(db, client):
    asha, ravi = user("asha", SALES), user("ravi", SALES)
    asha_import, ravi_import = import_job("ORDERS", asha), import_job("ORDERS", ravi)
    asha_export, ravi_export = export_job("ORDERS", asha), export_job("ORDERS", ravi)
    client.force_login(asha)
    assert listed(client, "importjob") == {asha_import.pk}
    assert listed(client, "exportjob") == {asha_export.pk}
    assert statuses(client, import_urls(asha_import)[:3]) == [200, 200, 200]
    assert statuses(client, export_urls(asha_export)) == [200, 200, 200]
    assert statuses(client, import_urls(ravi_import)[:3]) == [404, 404, 404]
    assert statuses(client, export_urls(ravi_export)) == [404, 404, 404]


def test_view_all_jobs_shows_everyones_jobs_of_the_kinds_whose_data_one_may_view(db, client):
    asha, inbound = user("asha", SALES), user("inbound", INBOUND)
    lead = user("lead", [*SALES, "imports.view_all_jobs"])  # no stock permissions
    jobs = {
        "asha import": import_job("ORDERS", asha),
        "inbound import": import_job("INVENTORY", inbound),
    }
    exports = {
        "asha orders": export_job("ORDERS", asha),
        "asha units": export_job("UNITS", asha),
        "inbound stock": export_job("INVENTORY", inbound),
        "system shipments": export_job("SHIPMENTS", None),
    }
    client.force_login(lead)
    assert listed(client, "importjob") == {jobs["asha import"].pk}
    assert listed(client, "exportjob") == {
        exports["asha orders"].pk,
        exports["asha units"].pk,
        exports["system shipments"].pk,
    }
    assert statuses(client, export_urls(exports["asha units"])) == [200, 200, 200]
    assert statuses(client, export_urls(exports["inbound stock"])) == [404, 404, 404]
    assert statuses(client, import_urls(jobs["inbound import"])[:3]) == [404, 404, 404]


def test_units_need_view_orderitem_as_well_as_view_order(db, client):
    asha = user("asha", [p for p in SALES if p != "orders.view_orderitem"])
    units, orders = export_job("UNITS", asha), export_job("ORDERS", asha)
    client.force_login(asha)
    assert listed(client, "exportjob") == {orders.pk}
    assert statuses(client, export_urls(units)) == [404, 404, 404]
    # and no new units export starts (the list's button and the start view)
    start = reverse("admin:imports_exportjob_start", args=["UNITS", "csv"])
    assert client.post(start).status_code == 403


def test_an_order_import_needs_view_order(db, client):
    clerk = user("clerk", ["imports.import_orders", "imports.view_importjob"])
    client.force_login(clerk)
    form = client.get(reverse("admin:imports_importjob_add")).content.decode()
    assert 'value="ORDERS"' not in form
