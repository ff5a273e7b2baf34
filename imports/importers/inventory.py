"""The stock file: each row adds units of a SKU to a shelf (`bulk.stock_add_many`)."""

from __future__ import annotations

from inventory.models import Facility, Shelf, Sku

from ..bulk import stock_add_many
from ..readers import RawRow
from ..resources import InventoryResource, columns_of
from .base import NEW, Record, check_cells, checks_of
from .rows import RowImporter, looked_up, row_record

COLUMNS = columns_of(InventoryResource)
CHECKS = checks_of(COLUMNS, "shelf", "sku", "quantity", "inventory_type")


class InventoryImporter(RowImporter):
    kind = "INVENTORY"
    columns = COLUMNS

    def __init__(self) -> None:
        self.facilities = {f.code.upper(): f for f in Facility.objects.all()}
        self.shelves: dict[tuple[int, str], int | None] = {}
        self.sku_ids: dict[str, int | None] = {}

    def _record(self, row: RawRow) -> Record:
        record = row_record(row)
        if row.errors:
            return record
        facility = looked_up(record, row, "facility", self.facilities, "facility")
        shelf, sku, quantity, kind = check_cells(record, row, CHECKS)
        record.label = f"{sku} on {row.values.get('facility', '')}/{shelf}"
        record.key_column, record.key_value = "sku", sku or ""
        record.details = f"+{quantity} {kind}"
        record.data = {
            "facility": facility,
            "shelf": shelf,
            "sku": sku,
            "quantity": quantity,
            "inventory_type": kind,
        }
        return record

    def _finish(self, records: list[Record]) -> None:
        """The shelves and SKUs of the batch: one query each."""
        valid = [r for r in records if r.state == NEW]
        self._find_shelves({(r.data["facility"].pk, r.data["shelf"]) for r in valid})
        self._find_skus({r.data["sku"] for r in valid})
        for record in valid:
            data = record.data
            n = record.first_row
            data["shelf_id"] = self.shelves.get((data["facility"].pk, data["shelf"]))
            if data["shelf_id"] is None:
                record.error(
                    n, "shelf", data["shelf"], f"no such shelf in facility {data['facility'].code}"
                )
            data["sku_id"] = self.sku_ids.get(data["sku"])
            if data["sku_id"] is None:
                record.error(n, "sku", data["sku"], "unknown SKU")

    def _find_shelves(self, keys: set[tuple[int, str]]) -> None:
        wanted = keys - self.shelves.keys()
        if not wanted:
            return
        rows = Shelf.objects.filter(
            facility_id__in={f for f, _ in wanted}, code__in={c for _, c in wanted}
        ).values_list("facility_id", "code", "pk")
        found = {(f, c): pk for f, c, pk in rows}
        for key in wanted:
            self.shelves[key] = found.get(key)

    def _find_skus(self, codes: set[str]) -> None:
        wanted = codes - self.sku_ids.keys()
        if not wanted:
            return
        found = dict(Sku.objects.filter(code__in=wanted).values_list("code", "pk"))
        for code in wanted:
            self.sku_ids[code] = found.get(code)

    def run(self, batches, *, actor, report, progress, job=None) -> None:
        for batch in batches:
            ready = [r for r in batch.records if not report.not_written(r)]
            if ready:
                stock_add_many(
                    [
                        (d["shelf_id"], d["sku_id"], d["inventory_type"], d["quantity"])
                        for d in (r.data for r in ready)
                    ],
                    actor=actor,
                    job=job,  # the ledger's reference
                )
                report.created(len(ready))
            progress(batch.rows_done)
