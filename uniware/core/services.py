"""Numbering: gap-free document numbers from `Sequence` rows."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from .models import Sequence


class SequenceNotDefined(Exception):
    """The operation needs a sequence nobody configured; it changed nothing."""

    def __init__(self, name: str, facility=None) -> None:
        self.name = name
        self.facility = facility
        where = f"for facility {facility.code}" if facility is not None else "tenant-wide"
        super().__init__(f"Sequence {name} is not defined {where}")


def sequence_find(name: str, *, facility=None, lock: bool = False) -> Sequence:
    qs = Sequence.objects.filter(name=name).order_by("pk")
    if lock:
        qs = qs.select_for_update(of=("self",))
    candidates = list(qs.filter(facility=facility)) if facility is not None else []
    if not candidates:
        candidates = list(qs.filter(facility__isnull=True))
    if not candidates:
        raise SequenceNotDefined(name, facility)
    return candidates[0]


def sequence_take(name: str, *, facility=None, count: int = 1) -> list[str]:
    """Take the next `count` numbers. Must run in the transaction that uses them: the row lock
    makes numbers unique under concurrency, and a rollback gives them back (no gaps)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("sequence_take must run inside transaction.atomic()")
    seq = sequence_find(name, facility=facility, lock=True)
    first = seq.next_value
    Sequence.objects.filter(pk=seq.pk).update(next_value=F("next_value") + count)
    seq.next_value = first + count
    return [seq.format(v) for v in range(first, first + count)]


def sequence_ensure_defined(name: str, *, facility=None) -> None:
    """Fail early, before anything changes, when a needed sequence is missing."""
    sequence_find(name, facility=facility)
