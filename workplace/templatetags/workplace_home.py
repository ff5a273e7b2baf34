"""`{% role_home %}`: the work waiting for each role the user holds, on the admin's front
page above the warehouse dashboard."""

from __future__ import annotations

from django import template
from django.utils import timezone

from ..selectors import WORK_TTL_SECONDS, work_figures
from ..tiles import role_homes, roles_of

register = template.Library()


@register.inclusion_tag("admin/workplace/home.html", takes_context=True)
def role_home(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not roles_of(user):
        return {"homes": []}
    from stations.admin import station_links

    figures = work_figures()
    return {
        "homes": role_homes(user, figures),
        "stations": station_links(user),
        "computed_at": timezone.localtime(figures.computed_at),
        "ttl": WORK_TTL_SECONDS,
    }
