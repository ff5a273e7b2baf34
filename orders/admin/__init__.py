"""The orders admin: orders and units, shipments and invoices, picklists and manifests,
putaways, and the audit trail of their state changes.

Every status change goes through a service (`orders.services`); this package only shows
records, offers bulk actions guarded by the role permissions, and reports per object what was
done and what was refused and why.
"""

# Importing a module registers its ModelAdmins.
from . import audit, orders, putaways, shipments, warehouse  # noqa: F401
from .returns import courier, pickups  # noqa: F401  (return manifests, reverse pickups)
