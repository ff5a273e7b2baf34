"""Try every admin page, action, custom view and download as a user, over HTTP.

`probe(client)` asks the admin site itself what exists (every registered ModelAdmin, its
actions, its own URLs), so a page or action added later is tried without touching this file;
a custom URL this module does not know how to call fails the test that uses it, naming it.
The result is the set of entries (`uniware.core.access` names) the logged-in user may use.

How each entry is tried:
- `list`: GET the changelist; `add`: GET the add page; `view`: GET an object's page (for
  jobs, any of the user's own: which kinds it may open is tried by the per-kind entries);
  `change`: that page is editable (the admin's own `has_change_permission` in its context,
  which also decides whether a POST is accepted); `delete`: GET the delete confirmation.
- `action NAME`: NAME is offered in the changelist's action bar (Django accepts no other
  action on POST; the change-page buttons are the same list).
- custom views (`download ORDERS` ...): called with the method they answer; allowed unless
  the answer is 403, 404 or 405 or, for a GET, the page a redirect leads to is one of these.
  GETs follow redirects (the tenant's list leads to its one page, which may refuse).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from imports.models import ExportJob, ExportKind, ImportJob, ImportKind
from orders.models import Manifest, Shipment
from stations.models import Station, StationKind

STANDARD_VIEWS = {"changelist", "add", "change", "delete", "history", "autocomplete"}
# Records staff see only when they made them (managers: everyone's): tried on the user's own.
OWN_RECORDS = {"imports.importjob", "imports.exportjob"}
# Records no domain flow makes, one per user: the probe makes the user's own.
MADE_HERE: dict[str, Callable[[object], object]] = {
    "stations.station": lambda user: Station.objects.get_or_create(
        user=user, kind=StationKind.PACKING
    ),
}


@dataclass
class Call:
    entry: str
    method: str
    url: str


def label_of(model: type[Model]) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def allowed(response) -> bool:
    """A page answered (GETs follow redirects: a redirect to a refusal is a refusal)."""
    if response.status_code in (403, 404, 405):
        return False
    if response.status_code in (301, 302):
        return "/login/" not in response["Location"]
    final_url = response.redirect_chain[-1][0] if getattr(response, "redirect_chain", None) else ""
    return response.status_code < 400 and "/login/" not in final_url


def _own_job(model, user, kind: str):
    return model.objects.filter(created_by=user, kind=kind).order_by("pk").first()


def _job_calls(model, url_name: str, user, kinds, verb: str, method: str) -> Iterator[Call]:
    for kind in kinds:
        job = _own_job(model, user, kind)
        if job is None:
            raise AssertionError(f"no {model.__name__} {kind} of {user} to try {url_name} on")
        yield Call(f"{verb} {kind}", method, reverse(f"admin:{url_name}", args=[job.pk]))


# How to call each custom admin URL: its name → (user → calls). A custom URL missing here
# fails `custom_calls`, so a new view cannot go untried.
IMPORT_KINDS = ImportKind.values
EXPORT_KINDS = ExportKind.values
CUSTOM_VIEWS: dict[str, Callable[[object], Iterator[Call]]] = {
    "auth_user_password_change": lambda user: [
        Call("set password", "get", reverse("admin:auth_user_password_change", args=[other.pk]))
        for other in get_user_model().objects.exclude(pk=user.pk).order_by("pk")[:1]
    ],
    "imports_importjob_template": lambda user: (
        Call(f"template {k}", "get", reverse("admin:imports_importjob_template", args=[k]))
        for k in IMPORT_KINDS
    ),
    "imports_importjob_progress": lambda user: _job_calls(
        ImportJob, "imports_importjob_progress", user, IMPORT_KINDS, "progress", "get"
    ),
    "imports_importjob_report": lambda user: _job_calls(
        ImportJob, "imports_importjob_report", user, IMPORT_KINDS, "error report", "get"
    ),
    "imports_importjob_confirm": lambda user: _job_calls(
        ImportJob, "imports_importjob_confirm", user, IMPORT_KINDS, "confirm", "post"
    ),
    "imports_importjob_discard": lambda user: _job_calls(
        ImportJob, "imports_importjob_discard", user, IMPORT_KINDS, "discard", "post"
    ),
    "imports_exportjob_start": lambda user: (
        Call(f"start {k}", "post", reverse("admin:imports_exportjob_start", args=[k, "csv"]))
        for k in EXPORT_KINDS
    ),
    "imports_exportjob_progress": lambda user: _job_calls(
        ExportJob, "imports_exportjob_progress", user, EXPORT_KINDS, "progress", "get"
    ),
    "imports_exportjob_download": lambda user: _job_calls(
        ExportJob, "imports_exportjob_download", user, EXPORT_KINDS, "download", "get"
    ),
    "stations_station_packing": lambda user: [
        Call("packing", "get", reverse("admin:stations_station_packing"))
    ],
    "stations_station_manifest": lambda user: [
        Call("manifest", "get", reverse("admin:stations_station_manifest"))
    ],
    "stations_station_putaway": lambda user: [
        Call("putaway", "get", reverse("admin:stations_station_putaway"))
    ],
    "stations_station_commands": lambda user: [
        Call("command sheet", "get", reverse("admin:stations_station_commands"))
    ],
    "stations_station_print": lambda user: _station_prints(),
}


def _station_prints() -> list[Call]:
    """A packed shipment's invoice and label, and a manifest's handover sheet."""
    shipment = Shipment.objects.exclude(tracking_number="").order_by("pk").first()
    manifest = Manifest.objects.order_by("pk").first()
    if shipment is None or manifest is None:
        raise AssertionError("the station's print links need a labelled shipment and a manifest")
    url = "admin:stations_station_print"
    return [
        Call("print invoice", "get", reverse(url, args=["invoice", shipment.pk])),
        Call("print label", "get", reverse(url, args=["label", shipment.pk])),
        Call("print handover sheet", "get", reverse(url, args=["handover", manifest.pk])),
    ]


def custom_url_names(model_admin) -> list[str]:
    names = []
    for pattern in model_admin.get_urls():
        name = getattr(pattern, "name", None)
        if not name:
            continue
        meta = model_admin.model._meta
        prefix = f"{meta.app_label}_{meta.model_name}_"
        if name.startswith(prefix) and name[len(prefix) :] in STANDARD_VIEWS:
            continue
        names.append(name)
    return names


def custom_calls(model_admin, user) -> list[Call]:
    """Every call of the model admin's own views, GETs first (POSTs may change the record:
    a discarded job's files are gone)."""
    calls: list[Call] = []
    for name in custom_url_names(model_admin):
        if name not in CUSTOM_VIEWS:
            raise AssertionError(
                f"custom admin view {name!r} has no probe: add one to tests/access_probe.py"
            )
        calls += CUSTOM_VIEWS[name](user)
    return sorted(calls, key=lambda call: call.method != "get")


def action_names(response) -> set[str]:
    form = response.context.get("action_form") if response.context else None
    if form is None:
        return set()
    return {name for name, _ in form.fields["action"].choices if name}


def probe_model(client: Client, model_admin, user) -> set[str]:
    model = model_admin.model
    label = label_of(model)
    meta = model._meta
    base = f"admin:{meta.app_label}_{meta.model_name}"
    found: set[str] = set()
    if label in MADE_HERE:
        MADE_HERE[label](user)
    response = client.get(reverse(f"{base}_changelist"), follow=True)
    if allowed(response):
        found.add(f"{label} list")
        found |= {f"{label} action {name}" for name in action_names(response)}
    if allowed(client.get(reverse(f"{base}_add"), follow=True)):
        found.add(f"{label} add")
    objects = model._default_manager.order_by("pk")
    if label in OWN_RECORDS:  # the user's own, one of each kind: open any of them
        candidates = list(objects.filter(created_by=user))
    else:
        candidates = list(objects[:1])
    if not candidates:
        raise AssertionError(f"no {label} to try its pages on: add one to the probe's records")
    for obj in candidates:
        response = client.get(reverse(f"{base}_change", args=[obj.pk]), follow=True)
        if allowed(response):
            break
    if allowed(response):
        found.add(f"{label} view")
        if response.status_code == 200 and response.context.get("has_change_permission"):
            found.add(f"{label} change")
    if allowed(client.get(reverse(f"{base}_delete", args=[obj.pk]), follow=True)):
        found.add(f"{label} delete")
    for call in custom_calls(model_admin, user):
        follow = call.method == "get"
        response = getattr(client, call.method)(call.url, follow=follow)
        if allowed(response):
            found.add(f"{label} {call.entry}")
    return found


def probe(client: Client, user) -> set[str]:
    """Every entry `user` (logged in on `client`) may use, tried over HTTP."""
    found: set[str] = set()
    for model_admin in admin.site._registry.values():
        found |= probe_model(client, model_admin, user)
    return found
