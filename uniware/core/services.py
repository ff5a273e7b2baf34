"""Numbering: gap-free document numbers from `Sequence` rows."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gst.numbering import exhausted, financial_year

from .models import Sequence


class SequenceNotDefined(Exception):
    """The operation needs a sequence nobody configured (or one configured so that it may not
    number these documents: `problem`); it changed nothing."""

    def __init__(self, name: str, facility=None, problem: str = "") -> None:
        self.name = name
        self.facility = facility
        where = f"for facility {facility.code}" if facility is not None else "tenant-wide"
        if problem:
            super().__init__(f"Sequence {name} {where} cannot be used: {problem}")
        else:
            super().__init__(f"Sequence {name} is not defined {where}")


def sequence_find(name: str, *, facility=None, lock: bool = False) -> Sequence:
    """The sequence numbering `name` documents of this facility; refuses a missing one and one
    whose configuration could give an illegal number (invoice series)."""
    qs = Sequence.objects.filter(name=name).order_by("pk")
    if lock:
        qs = qs.select_for_update(of=("self",))
    candidates = list(qs.filter(facility=facility)) if facility is not None else []
    if not candidates:
        candidates = list(qs.filter(facility__isnull=True))
    if not candidates:
        raise SequenceNotDefined(name, facility)
    seq = candidates[0]
    problem = seq.problem()
    if problem:
        raise SequenceNotDefined(name, facility, problem)
    return seq


def sequence_take(name: str, *, facility=None, count: int = 1) -> list[str]:
    """Take the next `count` numbers. Must run in the transaction that uses them: the row lock
    makes numbers unique under concurrency, and a rollback gives them back (no gaps).

    A sequence that restarts each financial year starts again at 1 with the first number taken
    in a new one (the year in the tenant's zone); an invoice series that ran out of digits
    refuses (a longer number would break Rule 46's 16 characters)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("sequence_take must run inside transaction.atomic()")
    seq = sequence_find(name, facility=facility, lock=True)
    today = timezone.localdate()
    year = financial_year(today)
    if seq.restarts_yearly and seq.financial_year != year:
        seq.next_value, seq.financial_year = 1, year
        Sequence.objects.filter(pk=seq.pk).update(next_value=1, financial_year=year)
    first = seq.next_value
    if seq.numbers_invoices and exhausted(seq.padding, first + count - 1):
        raise SequenceNotDefined(
            name, facility, f"it has run out of its {seq.padding} digits: start a new prefix"
        )
    Sequence.objects.filter(pk=seq.pk).update(next_value=F("next_value") + count)
    seq.next_value = first + count
    return [seq.format(v, today) for v in range(first, first + count)]


def sequence_ensure_defined(name: str, *, facility=None) -> None:
    """Fail early, before anything changes, when a needed sequence is missing."""
    sequence_find(name, facility=facility)
