"""The channel listings file (issue 16): one row per listing, created or updated by (channel,
product id, variant id) through `listings.services.listings_import`, so a SKU given maps the
listing and releases the orders that waited on it."""

from __future__ import annotations

from channels.models import Channel
from inventory.models import Sku
from listings.services import listings_import

from ..readers import RawRow
from ..resources import ListingResource, columns_of
from .base import NEW, SKIPPED, Record, check_cells, checks_of
from .rows import RowImporter, looked_up, row_record

COLUMNS = columns_of(ListingResource)
CELLS = checks_of(COLUMNS, "product_id", "variant_id", "seller_sku", "sync_enabled", "buffer")


class ListingImporter(RowImporter):
    kind = "LISTINGS"
    columns = COLUMNS

    def __init__(self) -> None:
        self.channels = {c.code.upper(): c for c in Channel.objects.all()}
        self.seen: dict[tuple[int, str, str], int] = {}  # listing key -> its first row

    def _record(self, row: RawRow) -> Record:
        record = row_record(row)
        if row.errors:
            return record
        product_id, variant_id, seller_sku, enabled, buffer = check_cells(record, row, CELLS)
        channel = looked_up(record, row, "channel", self.channels, "channel")
        sku_code = row.values.get("sku", "").strip()
        record.label = f"{row.values.get('channel', '')} {product_id}/{variant_id or '-'}"
        record.key_column, record.key_value = "product_id", product_id or ""
        record.data = {
            "channel_id": channel.pk if channel else None,
            "product_id": product_id,
            "variant_id": variant_id or "",
            "seller_sku": seller_sku or "",
            "sku_code": sku_code,
            "sync_enabled": enabled != "no",
            "buffer": buffer or 0,
        }
        if record.state == NEW and channel is not None:
            key = (channel.pk, product_id, variant_id or "")
            if key in self.seen:
                record.state, record.note = SKIPPED, f"the same listing as row {self.seen[key]}"
            else:
                self.seen[key] = row.number
        return record

    def _finish(self, records: list[Record]) -> None:
        """SKU codes are checked once per batch (one query)."""
        codes = {r.data["sku_code"].upper() for r in records if r.data and r.data["sku_code"]}
        known = (
            {
                code.upper(): pk
                for code, pk in Sku.objects.filter(code__in=codes).values_list("code", "pk")
            }
            if codes
            else {}
        )
        for record in records:
            data = record.data
            if not data or not data["sku_code"]:
                continue
            data["sku_id"] = known.get(data["sku_code"].upper())
            if data["sku_id"] is None:
                record.error(record.first_row, "sku", data["sku_code"], "unknown SKU")

    def run(self, batches, *, actor, report, progress, job=None) -> None:
        for batch in batches:
            ready = [r for r in batch.records if not report.not_written(r)]
            if ready:
                listings_import([r.data for r in ready], actor=actor)
                report.created(len(ready))
            progress(batch.rows_done)
