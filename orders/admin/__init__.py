"""The orders admin: orders and units, shipments and invoices, picklists and manifests.

Every status change goes through a service (`orders.services`); this package only shows
records, offers bulk actions guarded by the role permissions, and reports per object what was
done and what was refused and why.
"""

from . import orders, shipments, warehouse  # noqa: F401  (registers the ModelAdmins)
from .returns import courier, pickups  # noqa: F401  (return manifests, reverse pickups)
