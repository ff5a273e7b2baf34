"""Who sees which import and export job.

A job's file, preview and report hold the records of its kind (an order file or export holds
customers' names, phones, e-mails and addresses), so seeing a job needs the *data*
permission of what it holds, whatever `imports.*` permissions the user has:
`DATA_PERMISSIONS` below is the one table of it, used by the job lists, the job pages, the
progress polls, the previews, the reports and the downloads (and by `can_import` /
`can_export`: nobody imports or exports what they may not view).

On top of that, staff see their own jobs; `imports.view_all_jobs` ("Can see other users'
import and export jobs") shows everyone's. A job the user may not see is answered 404, like a
job that does not exist, so job ids cannot be probed.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .models import ExportJob, ExportKind, ImportJob, ImportKind

# Kind (of import or export: the same word means the same data) -> the permissions needed to
# see a job of that kind; a tuple inside the tuple means any one of its permissions. Units and
# shipments carry the order's customer and address, hence view_order as well. Printed
# documents (imports.printing) need what printing them needs: labels and invoices carry the
# buyer's address and are printed by whoever labels or invoices (credit notes also by whoever
# records returns); picklists and handover sheets by whoever may view them.
Needed = tuple[str | tuple[str, ...], ...]
DATA_PERMISSIONS: dict[str, Needed] = {
    ExportKind.ORDERS: ("orders.view_order",),
    ExportKind.UNITS: ("orders.view_order", "orders.view_orderitem"),
    ExportKind.SHIPMENTS: ("orders.view_order", "orders.view_shipment"),
    ExportKind.INVENTORY: ("inventory.view_inventory",),
    ExportKind.SERVICEABILITY: ("inventory.view_serviceability",),
    ExportKind.LISTINGS: ("listings.view_channellisting",),
    ExportKind.LABELS: ("orders.view_order", "orders.view_shipment", "orders.label_shipment"),
    ExportKind.INVOICES: ("orders.view_order", "orders.view_invoice", "orders.invoice_shipment"),
    ExportKind.CREDIT_NOTES: (
        "orders.view_order",
        "orders.view_invoice",
        ("orders.invoice_shipment", "orders.return_shipment"),
    ),
    ExportKind.PICKLISTS: ("orders.view_picklist",),
    ExportKind.MANIFESTS: ("orders.view_manifest",),
}
assert set(ImportKind.values) <= set(DATA_PERMISSIONS), "every import kind needs its entry"

VIEW_ALL_JOBS = "imports.view_all_jobs"


def may_view_data(user, kind: str) -> bool:
    """Whether the user may see the records a job of this kind holds."""
    needed = DATA_PERMISSIONS.get(kind)
    if not (needed and user and user.is_active):
        return False
    return all(
        user.has_perm(p) if isinstance(p, str) else any(user.has_perm(q) for q in p) for p in needed
    )


def viewable_kinds(user, kinds: list[str]) -> list[str]:
    return [kind for kind in kinds if may_view_data(user, kind)]


def visible_jobs(jobs: QuerySet, user) -> QuerySet:
    """The jobs (of `jobs`: ImportJob or ExportJob rows) the user may see: kinds whose data
    they may view; only their own unless they have `imports.view_all_jobs`."""
    kinds = ImportKind.values if jobs.model is ImportJob else ExportKind.values
    jobs = jobs.filter(kind__in=viewable_kinds(user, kinds))
    if not user.has_perm(VIEW_ALL_JOBS):
        jobs = jobs.filter(created_by=user) if user.is_authenticated else jobs.none()
    return jobs


def may_see_job(user, job: ImportJob | ExportJob) -> bool:
    """The same rule as `visible_jobs`, for one job already loaded."""
    if not may_view_data(user, job.kind):
        return False
    return user.has_perm(VIEW_ALL_JOBS) or (
        job.created_by_id is not None and job.created_by_id == user.pk
    )
