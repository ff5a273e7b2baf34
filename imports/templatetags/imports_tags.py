"""`{% import_export_buttons cl "ORDERS" "ORDERS" %}`: the export (and import) buttons of a
changelist, shown only to users with the permissions."""

from __future__ import annotations

from django import template
from django.urls import reverse

from ..models import TABLE_FORMATS, ImportKind
from ..services import can_export, can_import

register = template.Library()


@register.inclusion_tag("admin/imports/buttons.html", takes_context=True)
def import_export_buttons(context, cl, export_kind: str, import_kind: str = "") -> dict:
    request = context["request"]
    user = request.user
    query = cl.get_query_string()[1:] if cl is not None else ""
    exports = []
    if can_export(user, export_kind):
        for fmt in TABLE_FORMATS:
            url = reverse("admin:imports_exportjob_start", args=[export_kind, fmt.value])
            label = f"Export {fmt.label}"
            exports.append({"url": f"{url}?{query}" if query else url, "label": label})
    imports = {}
    if import_kind and can_import(user, import_kind):
        imports = {
            "url": f"{reverse('admin:imports_importjob_add')}?kind={import_kind}",
            "label": f"Import {ImportKind(import_kind).label.split(' (')[0].lower()}",
            "template_url": reverse("admin:imports_importjob_template", args=[import_kind]),
        }
    return {"exports": exports, "import": imports, "csrf_token": context.get("csrf_token")}
