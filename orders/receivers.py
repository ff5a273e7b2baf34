"""How orders answers what the inventory app below it announces (`inventory.signals`), so
inventory never imports orders. Connected once, in `OrdersConfig.ready`."""

from __future__ import annotations

from inventory.models import Putaway, PutawayType
from inventory.signals import putaways_closed, stock_added
from uniware.core.actors import Actor

from . import tasks
from .models import Order
from .services.allocation import allocate_after_commit
from .services.returns.courier import returns_after_putaway


def finish_returns_after_putaway(
    sender, *, putaways: list[Putaway], sellable_sku_ids, actor: Actor, **kwargs
) -> list[Order]:
    """Putaways were completed or discarded (in the sender's transaction, putaways locked):
    the shipments of the courier-returned ones are RETURNED and the units waiting for them
    reshipped. After the commit, those reshipments are allocated here, and a worker
    re-allocates the units waiting for the SKUs put back as good stock (at 1M orders that took
    1.8 s inline, in the scan that completed a putaway). Returns the reshipment orders."""
    courier = [p for p in putaways if p.putaway_type == PutawayType.PUTAWAY_COURIER_RETURNED_ITEMS]
    follow_ups = returns_after_putaway(courier, actor=actor) if courier else []
    allocate_after_commit(
        order_ids=[o.pk for o in follow_ups],
        sku_ids=sellable_sku_ids,
        actor=actor,
        worker=tasks.reallocate_unfulfillable,  # the waiting units: a worker's job, not the scan's
    )
    return follow_ups


def reallocate_after_stock_added(sender, *, sku_ids, actor: Actor, **kwargs) -> None:
    """Good stock was added by staff or an import: a worker re-allocates the units waiting for
    these SKUs after the commit."""
    allocate_after_commit(sku_ids=sku_ids, actor=actor, worker=tasks.reallocate_unfulfillable)


def connect() -> None:
    putaways_closed.connect(finish_returns_after_putaway, dispatch_uid="orders.putaways_closed")
    stock_added.connect(reallocate_after_stock_added, dispatch_uid="orders.stock_added")
