"""Building blocks shared by every ModelAdmin of the project.

- `FastChangeListMixin`: changelists that stay fast on millions of rows (no full COUNT(*),
  PostgreSQL's row estimate when unfiltered, counts capped when filtered, fixed filter choices).
- `recent_filter`: date filters by simple ranges (today / 7 days / 30 days), no queries.
- `run_action` / `report_outcome`: call a service from a bulk action and tell staff, object by
  object, what was done and what failed and why; domain errors become messages, never a 500.
- `Table` / `Row`: read-only tables (units, shipments, history ...) shown on change pages
  (rendered by `templates/admin/uniware/change_form.html`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, connections, models
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from .results import Outcome
from .services import SequenceNotDefined

log = logging.getLogger(__name__)

# --- Counting ------------------------------------------------------------------------------


class FastCountPaginator(Paginator):
    """A paginator that never runs an unbounded COUNT(*) over a big table.

    Unfiltered on PostgreSQL it reads the planner's row estimate (`pg_class.reltuples`, kept
    fresh by autovacuum's ANALYZE) once the table has `estimate_from` rows; below that, or when
    filtered, or on SQLite, it counts at most `count_cap + 1` rows (`COUNT(*)` over a `LIMIT`
    subquery), so a filter matching half a million rows costs what 5,001 rows cost.
    """

    estimate_from = 20_000
    count_cap = 5_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count_is_estimate = False
        self.count_is_capped = False

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, models.QuerySet):
            return super().count
        if not qs.query.where and not qs.query.distinct:
            estimate = estimated_row_count(qs.model, using=qs.db)
            if estimate is not None and estimate >= self.estimate_from:
                self.count_is_estimate = True
                return estimate
        counted = qs.order_by()[: self.count_cap + 1].count()
        if counted > self.count_cap:
            self.count_is_capped = True
            return self.count_cap
        return counted


def estimated_row_count(model: type[models.Model], *, using: str = "default") -> int | None:
    """PostgreSQL's estimate of the table's rows; None elsewhere or when never analysed."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    if not row or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class FastChangeListMixin:
    """Changelist defaults for big tables (see shared/performance-notes.md)."""

    paginator = FastCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are a COUNT per filter choice
    list_per_page = 50
    list_max_show_all = 200


class ExactSearchMixin:
    """Search by exact values of indexed columns, tried one field after the other.

    Django's `=field` search means `iexact` (`UPPER(col) = UPPER(%s)`), which no plain index
    serves; this uses `exact`, and returns the first field that matches (one small query per
    field tried).
    """

    exact_search_fields: Sequence[str] = ()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        for name in self.exact_search_fields:
            narrowed = queryset.filter(**{name: term})
            if narrowed.exists():
                return narrowed, False
        return queryset.none(), False


# --- Filters -------------------------------------------------------------------------------

RECENT_RANGES = {"today": ("Today", 0), "7d": ("Past 7 days", 7), "30d": ("Past 30 days", 30)}


def work_list_filter(
    field_name: str, choices: Sequence[tuple[str, str]], default: str, *, title: str = "status"
) -> type[admin.SimpleListFilter]:
    """A list filter whose default is a work list (open errors, pending putaways): `default`
    unless another value, or "all", is chosen (parameter `state`)."""

    class WorkListFilter(admin.SimpleListFilter):
        parameter_name = "state"

        def lookups(self, request, model_admin):
            return [*choices, ("all", "All")]

        def choices(self, changelist):
            value = self.value() or default
            for lookup, label in self.lookup_choices:
                yield {
                    "selected": value == lookup,
                    "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                    "display": label,
                }

        def queryset(self, request, queryset):
            value = self.value() or default
            return queryset if value == "all" else queryset.filter(**{field_name: value})

    WorkListFilter.title = title
    return WorkListFilter


def recent_filter(field_name: str, title: str) -> type[admin.SimpleListFilter]:
    """A list filter on a date-time field with fixed ranges (no query for its choices)."""

    class RecentFilter(admin.SimpleListFilter):
        parameter_name = f"{field_name}_range"

        def lookups(self, request, model_admin):
            return [(key, label) for key, (label, _) in RECENT_RANGES.items()]

        def queryset(self, request, queryset):
            value = self.value()
            if value not in RECENT_RANGES:
                return queryset
            today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
            start = today - timedelta(days=RECENT_RANGES[value][1])
            return queryset.filter(**{f"{field_name}__gte": start})

    RecentFilter.title = title
    RecentFilter.__name__ = f"Recent{field_name.title().replace('_', '')}Filter"
    return RecentFilter


# --- Links and badges ------------------------------------------------------------------------

STATUS_COLOURS = {
    "teal": {"CREATED", "CUSTOMIZATION_COMPLETE", "COURIER_ALLOCATED"},
    "green": {"DELIVERED", "DISPATCHED", "SHIPPED", "COMPLETE", "CLOSED", "RECEIVED", "RETURNED"},
    "blue": {
        "FULFILLABLE",
        "PICKING",
        "PICKED",
        "PICKING_FOR_STAGING",
        "PICKING_FOR_INVOICING",
        "PACKED",
        "READY_TO_SHIP",
        "MANIFESTED",
        "PROCESSING",
    },
    "orange": {
        "ON_HOLD",
        "UNFULFILLABLE",
        "LOCATION_NOT_SERVICEABLE",
        "PENDING_VERIFICATION",
        "RETURN_EXPECTED",
        "RETURN_ACKNOWLEDGED",
        "PENDING_CUSTOMIZATION",
    },
    "grey": {"CANCELLED", "DISCARDED", "SPLITTED", "MERGED", "REPLACED", "RESHIPPED"},
}
_HEX = {
    "teal": "#17808a",
    "green": "#1e7e34",
    "blue": "#1f5f99",
    "orange": "#b45f06",
    "grey": "#6c757d",
}


def status_colour(status: str) -> str:
    """A colour per kind of status: done green, moving blue, needs attention orange."""
    colour = next((c for c, names in STATUS_COLOURS.items() if status in names), "")
    return _HEX.get(colour, "#444")


def status_badge(status: str, label: str = "") -> SafeString:
    return format_html(
        '<span class="uw-status" style="color:#fff;background:{};padding:1px 6px;'
        'border-radius:8px;white-space:nowrap;font-size:11px">{}</span>',
        status_colour(status),
        label or status,
    )


def admin_url(obj: models.Model | None, view: str = "change") -> str:
    """The admin URL of an object (no query)."""
    if obj is None or obj.pk is None:
        return ""
    meta = obj._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[obj.pk])
    except NoReverseMatch:
        return ""


def changelist_url(model: type[models.Model], **params: Any) -> str:
    from urllib.parse import urlencode

    meta = model._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def link(obj: models.Model | None, text: Any = None) -> SafeString | str:
    if obj is None:
        return "—"
    url = admin_url(obj)
    return format_html('<a href="{}">{}</a>', url, text or obj) if url else str(text or obj)


# --- Read-only tables on change pages -------------------------------------------------------


@dataclass
class Row:
    cells: Sequence[Any]
    group: bool = False  # a heading row spanning the table (e.g. a channel line)


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: list[Row] = field(default_factory=list)
    empty: str = "None yet."
    note: SafeString | str = ""

    def add(self, *cells: Any, group: bool = False) -> None:
        self.rows.append(Row(cells, group=group))


class ReadOnlyAdminMixin:
    """Records that only services write (invoices, audit rows): view only."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class SaveChangedFieldsMixin:
    """On change, write only the fields the form changed.

    A plain `save()` writes every column, so saving an object would put back the status (or
    manifest, dispatch time ...) that a service changed between loading and saving it.
    """

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            return super().save_model(request, obj, form, change)
        names = []
        for name in form.changed_data:
            try:
                model_field = obj._meta.get_field(name)
            except Exception:  # a form-only field
                continue
            if model_field.concrete and not model_field.many_to_many:
                names.append(model_field.name)
        if names:
            if any(f.name == "updated_at" for f in obj._meta.concrete_fields):
                names.append("updated_at")
            obj.save(update_fields=names)
        return None


class NoDeleteMixin:
    """Business records are never deleted from the admin: their history stays."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- Bulk actions as buttons on a change page ---------------------------------------------


class ObjectActionsMixin:
    """Offer the bulk actions that fit an object's status as buttons on its change page.

    A button POSTs the changelist action for this one object (so the same permission checks,
    services and messages apply) and comes back to the page. `object_actions` maps an action
    name to the statuses it is offered in, or to a test of the object (None: always).
    """

    object_actions: dict[str, Iterable[str] | Callable[[Any], bool] | None] = {}

    def object_action_buttons(self, request: HttpRequest, obj: models.Model) -> list[dict]:
        allowed = self.get_actions(request)
        buttons = []
        for name, statuses in self.object_actions.items():
            if name not in allowed:
                continue
            if callable(statuses):
                if not statuses(obj):
                    continue
            elif statuses is not None and getattr(obj, "status", None) not in set(statuses):
                continue
            buttons.append({"name": name, "label": allowed[name][2]})
        return buttons

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["object_action_buttons"] = self.object_action_buttons(request, obj)
            context["object_action_url"] = changelist_url(type(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def response_action(self, request, queryset):
        response = super().response_action(request, queryset)
        back = request.POST.get("_return_to", "")
        if (
            back
            and isinstance(response, HttpResponseRedirect)
            and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
        ):
            return HttpResponseRedirect(back)
        return response


# --- Running services from actions ----------------------------------------------------------

DOMAIN_ERRORS = (TransitionNotAllowed, ConcurrentTransition, SequenceNotDefined, ValidationError)
MAX_LISTED = 50


def error_text(exc: BaseException) -> str:
    """What staff should read for a refused operation."""
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    if isinstance(exc, IntegrityError):
        return "someone else changed these records at the same time; nothing was changed, try again"
    return str(exc)


def run_action(request: HttpRequest, func: Callable[[], Any], *, what: str = "") -> Any:
    """Call a service; a refused operation becomes an error message (and returns None)."""
    try:
        return func()
    except (*DOMAIN_ERRORS, ValueError, IntegrityError) as exc:
        if isinstance(exc, ValueError | IntegrityError):
            log.warning("admin action %s refused", what, exc_info=True)
        prefix = f"{what}: " if what else ""
        messages.error(request, f"{prefix}{error_text(exc)}")
        return None


def _listing(items: Iterable[Any]) -> str:
    items = [str(i) for i in items]
    shown = ", ".join(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown += f" and {len(items) - MAX_LISTED} more"
    return shown


def plural(n: int, singular: str, plural_form: str = "") -> str:
    return f"{n} {singular if n == 1 else (plural_form or singular + 's')}"


def report_outcome(
    request: HttpRequest,
    outcome: Outcome | None,
    *,
    done: str,
    failed: str,
    noun: str,
    extra: str | SafeString = "",
) -> None:
    """One success message naming what was done, one error message listing every failure
    with its reason (`SP-000003: Sequence INVOICE is not defined for facility WH1`)."""
    if outcome is None:
        return
    if outcome.done:
        text = f"{done} {plural(len(outcome.done), noun)}: {_listing(outcome.done)}."
        if extra:
            text = format_html("{} {}", text, extra)
        messages.success(request, text)
    if outcome.failed:
        shown = outcome.failed[:MAX_LISTED]
        more = len(outcome.failed) - len(shown)
        messages.error(
            request,
            format_html(
                "{} {}:<ul>{}</ul>{}",
                failed,
                plural(len(outcome.failed), noun),
                format_html_join("", "<li>{}: {}</li>", shown),
                f"… and {more} more" if more else "",
            ),
        )
    if not outcome.done and not outcome.failed:
        messages.warning(request, f"Nothing to do for the selected {noun}s.")


MAX_SELECTED = 5000  # an intermediate page lists every selected id


def form_step(
    modeladmin,
    request,
    queryset,
    form_class,
    *,
    action: str,
    title: str,
    intro: str = "",
    submit: str = "Confirm",
    form_kwargs: dict | None = None,
    rows=None,
    row_columns=(),
    row_fields=(),
):
    """The intermediate page of an admin action that asks for input (a reason, a date ...):
    (valid form, None) once the page was confirmed; else (None, the page to show)."""
    objects = list(queryset[: MAX_SELECTED + 1])
    if len(objects) > MAX_SELECTED:
        messages.error(request, f"Select at most {MAX_SELECTED} at a time.")
        return None, None
    kwargs = form_kwargs or {}
    if request.POST.get("confirm"):
        form = form_class(request.POST, **kwargs)
        if form.is_valid():
            return form, None
    else:
        form = form_class(**kwargs)
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "opts": opts,
        "form": form,
        "objects": objects,
        "shown": objects[:50],
        "more": max(0, len(objects) - 50),
        "rows": rows(form) if callable(rows) else rows,
        "row_columns": row_columns,
        "row_fields": set(row_fields),
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "submit_label": submit,
        "return_to": request.POST.get("_return_to", ""),
        "cancel_url": request.POST.get("_return_to", "") or changelist_url(modeladmin.model),
    }
    return None, TemplateResponse(request, "admin/uniware/action_form.html", context)


def selected_ids(queryset) -> list[int]:
    return list(queryset.values_list("pk", flat=True))
