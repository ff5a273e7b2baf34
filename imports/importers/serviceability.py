"""The serviceability file: every row of the table, replaced at once
(`bulk.serviceability_replace`, as Uniware's "Shipping Provider Location" import does)."""

from __future__ import annotations

from collections.abc import Iterator

from inventory.models import ShippingProvider

from ..bulk import serviceability_replace
from ..readers import RawRow
from ..resources import ServiceabilityResource, columns_of
from .base import NEW, SKIPPED, Record, check_cells, checks_of
from .rows import RowImporter, looked_up, row_record

COLUMNS = columns_of(ServiceabilityResource)
ROUTE = checks_of(COLUMNS, "pincode", "payment_method")
PRIORITY = checks_of(COLUMNS, "priority")


class ServiceabilityImporter(RowImporter):
    kind = "SERVICEABILITY"
    columns = COLUMNS

    def __init__(self) -> None:
        self.providers = {s.code.upper(): s for s in ShippingProvider.objects.all()}
        self.seen: dict[tuple[int, str, str], tuple[int, int]] = {}  # -> (row, priority)

    def _record(self, row: RawRow) -> Record:
        record = row_record(row)
        if row.errors:
            return record
        pincode, method = check_cells(record, row, ROUTE)
        provider = looked_up(record, row, "shipping_provider", self.providers, "shipping provider")
        (priority,) = check_cells(record, row, PRIORITY)
        record.label = f"{pincode} {method} {row.values.get('shipping_provider', '')}"
        record.key_column, record.key_value = "pincode", pincode or ""
        record.details = f"priority {priority}"
        if record.state == NEW:
            self._once(record, row, provider, (pincode, method), priority)
        record.data = {
            "shipping_provider_id": provider.pk if provider else None,
            "pincode": pincode,
            "payment_method": method,
            "priority": priority,
        }
        return record

    def _once(
        self,
        record: Record,
        row: RawRow,
        provider: ShippingProvider,
        route: tuple[str, str],
        priority: int,
    ) -> None:
        """A route (pincode, payment method) given again for a provider is skipped, or a
        conflict when its priority differs."""
        earlier = self.seen.get((provider.pk, *route))
        if earlier is None:
            self.seen[(provider.pk, *route)] = (row.number, priority)
        elif earlier[1] == priority:
            record.state, record.note = SKIPPED, f"the same as row {earlier[0]}"
        else:
            record.error(
                row.number,
                "priority",
                row.values.get("priority", ""),
                f"conflicts with row {earlier[0]}, which gives {provider.code} priority "
                f"{earlier[1]} for {' '.join(route)}",
            )

    def run(self, batches, *, actor, report, progress, job=None) -> None:
        def valid_rows() -> Iterator[dict]:
            for batch in batches:
                for record in batch.records:
                    if not report.not_written(record):
                        report.created(1)
                        yield record.data
                progress(batch.rows_done)

        replaced = serviceability_replace(valid_rows(), actor=actor)
        report.message = f"{replaced:,} previous serviceability rows were replaced."
