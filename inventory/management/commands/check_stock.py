"""`python manage.py check_stock`: every stock row against the stock ledger."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from inventory.ledger import stock_drift


class Command(BaseCommand):
    help = (
        "Recompute every stock row (quantity and blocked quantity) from the stock ledger and "
        "report the rows that differ. Exit status 1 when any does, 0 otherwise."
    )

    def handle(self, *args, **options) -> None:
        drift = stock_drift()
        if not drift:
            self.stdout.write("Stock matches the ledger: no drift.")
            return
        for row in drift:
            (q, b), (lq, lb) = row.stored, row.ledger
            self.stdout.write(
                f"{row.label} (stock row {row.inventory_id}): stored quantity {q}, blocked {b}; "
                f"ledger quantity {lq}, blocked {lb} (drift {q - lq:+d} / {b - lb:+d})"
            )
        self.stderr.write(f"{len(drift)} stock row(s) differ from the ledger.")
        sys.exit(1)
