"""What the inventory app announces to the apps above it, which it does not import.

Orders answers both (`orders.receivers`, connected in `OrdersConfig.ready`); a receiver that
raises rolls the sender's transaction back, as the work it does belongs to that transaction.

- `putaways_closed`: putaways were completed or discarded. Sent inside the transaction with
  the putaways locked, before their stock rows are (Putaway and Order come before Inventory in
  the lock order of `orders.locks`). Arguments: `putaways` (list of Putaway), `sellable_sku_ids`
  (SKUs whose units came back as good stock; empty for a discard) and `actor`. Receivers
  return the orders they made (orders: reshipments of units waiting for a courier return),
  which the putaway service reports as created.
- `stock_added`: good stock was added to shelves by staff, an adjustment or an import (not by
  a putaway: `putaways_closed` covers those). Sent inside the transaction; arguments
  `sku_ids` and `actor`. Orders queues the re-allocation of units waiting for these SKUs.
"""

from __future__ import annotations

from django.dispatch import Signal

putaways_closed = Signal()
stock_added = Signal()
