"""The signal receivers that write notifications in the transaction of the change.

Connected by `NotificationsConfig.ready()`: this module imports the order models and services,
which Django loads only after the apps' own modules. Each receiver has the change's rows built
set-based (per signal one query for the units of every changed object, one for the tenant's
time zone when something is written) and hands them to `outbox.write`:

- `states_changed` of **Shipment** (every transition): `shipments.shipments_changed`;
- `states_changed` of **OrderItem** for `allocate` / `mark_not_serviceable`: the units joined a
  shipment (`units.units_allocated`). Shipment creation itself is audited without a signal and
  the units are linked to their shipment only after it, so this is where the creation becomes
  visible with its units; it also covers units added to an open shipment;
- `states_changed` of **ReversePickup**: `pickups.reverse_pickups_changed`;
- `post_save` of a new **ReversePickup** (its creation sends no signal):
  `pickups.pickup_created`;
- `units_cancelled` (not by the channel): a cancel push, `units.cancel_pushes`.

Only channels that accept them get notifications (`accepts_status_notifications`,
`accepts_cancel`, `accepts_dispatch`), and only for channel orders (reshipment and replacement
orders are unknown to the channel).
"""

from __future__ import annotations

from django.db.models.signals import post_save

from orders.models import OrderItem, ReversePickup, Shipment
from orders.services.cancellation import units_cancelled
from uniware.core.fsm import Change, states_changed

from .outbox import write
from .pickups import pickup_created, reverse_pickups_changed
from .shipments import shipments_changed
from .units import cancel_pushes, units_allocated

ALLOCATING = {"allocate", "mark_not_serviceable"}


def connect() -> None:
    states_changed.connect(on_states_changed, dispatch_uid="notifications.outbox.states")
    units_cancelled.connect(on_units_cancelled, dispatch_uid="notifications.outbox.cancel")
    post_save.connect(
        on_reverse_pickup_saved, sender=ReversePickup, dispatch_uid="notifications.outbox.pickup"
    )


def on_states_changed(sender, transition: str, changes: list[Change], **kwargs) -> None:
    if not changes:
        return
    if sender is Shipment:
        write(shipments_changed(transition, changes))
    elif sender is ReversePickup:
        write(reverse_pickups_changed(changes))
    elif sender is OrderItem and transition in ALLOCATING:
        write(units_allocated(changes))


def on_reverse_pickup_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        write(pickup_created(instance))


def on_units_cancelled(sender, units, reason: str = "", by_channel: bool = False, **kwargs):
    """The seller cancelled units (the channel's own cancellations are not pushed back)."""
    if not by_channel and units:
        write(cancel_pushes(units))
