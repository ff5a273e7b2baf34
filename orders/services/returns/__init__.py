"""Returns: courier returns (RTO) through return manifests or "mark returned", customer
returns (CIR) through reverse pickups, reshipment and replacement. One module each:

- `courier`: shipment DISPATCHED/SHIPPED → RETURN_EXPECTED (`shipments_expect_return`,
  or a cancellation after dispatch). With ITEM traceability it is received on a return
  manifest (RETURN_ACKNOWLEDGED); closing the manifest issues the sale return invoices and a
  `PUTAWAY_COURIER_RETURNED_ITEMS` putaway, whose completion makes the shipment RETURNED.
  With SKU/NONE traceability `shipments_mark_returned` does it all at once: RETURNED, a sale
  return invoice, and a `PUTAWAY_RECEIVED_RETURNS` putaway completed on the spot.
  A courier return covers the whole package: every unit dispatched in it comes back.
- `pickups`: customer return: `reverse_pickup_create` → courier allocated → COMPLETE (a
  `PUTAWAY_REVERSE_PICKUP_ITEM` putaway and a sale return invoice) or NOT_RECEIVED;
  cancelled only as a whole.
- `follow_ups`: reship (seed 001's three options) and replacement make a new, linked order
  (`Order.kind`, `Order.source_order`, `OrderItem.source_item`), allocated after the commit.
- `common`: what they (and cancellation, repacking) share: the status groups, reasons,
  sequence checks and the allocation after the commit.

Every closed return reverses the shipment's sale invoice for its units with a sale return
invoice (RETURN_INVOICE sequence of the facility); when that sequence is missing the
operation is refused for that shipment or pickup and nothing of it changes.

Import the services from `orders.services`; the helpers from `orders.services.returns.common`.
"""
