"""Celery tasks: thin wrappers around services."""

from celery import shared_task

from .services import reallocate_waiting_units


@shared_task(name="orders.tasks.reallocate_unfulfillable")
def reallocate_unfulfillable(sku_ids: list[int] | None = None) -> dict:
    """Retry UNFULFILLABLE units: after stock arrives, and periodically as a safety net."""
    result = reallocate_waiting_units(sku_ids=sku_ids, actor="task:reallocate_unfulfillable")
    return {"fulfillable": len(result.fulfillable), "not_serviceable": len(result.not_serviceable)}
