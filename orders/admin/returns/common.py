"""What the cancel and return actions share: the intermediate page that asks for input before
calling a service, and how they name the selection, the units and what they created."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from uniware.core.admin_utils import admin_url, changelist_url
from uniware.core.models import Tenant, Traceability
from uniware.core.results import Outcome

from ...models import Order

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
    """(valid form, None) once the page was confirmed; else (None, the page to show)."""
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


def created_links(objs) -> str:
    """`Created <link>, <link>.` for a success message ('' when nothing was created)."""
    if not objs:
        return ""
    return format_html(
        "Created {}.",
        format_html_join(", ", '<a href="{}">{}</a>', ((admin_url(o), o) for o in objs)),
    )


def created_of(outcome: Outcome | None, kind: type) -> list:
    """What the service created of this kind (putaways, orders), for `created_links`."""
    return [o for o in (outcome.created if outcome else []) if isinstance(o, kind)]


def unit_labels(outcome: Outcome | None) -> Outcome | None:
    """Units are reported as `<order>/<unit>`: unit codes repeat across orders."""
    if outcome is not None:
        codes = dict(
            Order.objects.filter(pk__in={u.order_id for u in outcome.done}).values_list(
                "pk", "code"
            )
        )
        outcome.done = [f"{codes[u.order_id]}/{u.code}" for u in outcome.done]
    return outcome


def item_traceability() -> bool:
    """ITEM traceability: courier returns go through return manifests, not "mark returned"."""
    return Tenant.get().traceability == Traceability.ITEM
