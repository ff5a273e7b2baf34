"""What the cancel and return actions share: how they name the selection, the units and what
they created (their intermediate page is `uniware.core.admin_utils.form_step`)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join

from uniware.core.admin_utils import admin_url
from uniware.core.models import Tenant, Traceability
from uniware.core.results import Outcome

from ...models import Order


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
