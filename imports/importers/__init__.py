"""The streaming, chunked import path: file rows -> checked records -> batches for the services.

One module per kind of import (`orders`, `inventory`, `serviceability`, `listings`), on what
they share (`base`: records, batches, checking cells; `rows`: files of one record per row;
`reporter`: the counts and the row-level report). Each reads the file a row at a time, checks
every cell with its column's parser (`imports.resources` declares the columns) and against
cached maps, and hands out batches of records: valid and new, already in the database
(skipped), or invalid with their errors. The same pass serves the preview (nothing is written)
and the import (valid records go to the services a batch at a time).
"""

from __future__ import annotations

from .base import Importer
from .inventory import InventoryImporter
from .listings import ListingImporter
from .orders import OrderImporter
from .serviceability import ServiceabilityImporter

IMPORTERS: dict[str, type[Importer]] = {
    "ORDERS": OrderImporter,
    "INVENTORY": InventoryImporter,
    "SERVICEABILITY": ServiceabilityImporter,
    "LISTINGS": ListingImporter,
}
