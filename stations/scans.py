"""What every station shares: the typed result of a scan, the command words, the station
row (locked per scan) and the double-fire window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from .models import ScanOutcome, Station

# Command barcodes: these words are read as commands, before any other meaning.
VALIDATE, UNDO, CANCEL, CLOSE, SPLIT = "VALIDATE", "UNDO", "CANCEL", "CLOSE", "SPLIT"
COMMANDS = (VALIDATE, UNDO, CANCEL, CLOSE, SPLIT)


class ScanError(models.TextChoices):
    """Why a scan was refused. A refused scan changes nothing but the message shown."""

    UNKNOWN_CODE = "UNKNOWN_CODE", "Nobody knows this code"
    WRONG_ITEM = "WRONG_ITEM", "Not in this shipment"
    EXTRA_UNIT = "EXTRA_UNIT", "Every unit of it is scanned already"
    CANCELLED = "CANCELLED", "Cancelled"
    ON_HOLD = "ON_HOLD", "Order on hold"
    INCOMPLETE = "INCOMPLETE", "Units still to scan"
    SUPERVISOR_NEEDED = "SUPERVISOR_NEEDED", "A supervisor must confirm"
    NOTHING_OPEN = "NOTHING_OPEN", "Nothing to work on yet"
    WRONG_STATUS = "WRONG_STATUS", "Not in a status the station takes"
    OTHER_ROUTE = "OTHER_ROUTE", "Another channel or provider than the open manifest"
    REFUSED = "REFUSED", "The service refused it"


@dataclass(frozen=True)
class ScanResult:
    outcome: str
    message: str
    error: str = ""

    @classmethod
    def ok(cls, message: str) -> ScanResult:
        return cls(ScanOutcome.OK, message)

    @classmethod
    def done(cls, message: str) -> ScanResult:
        return cls(ScanOutcome.DONE, message)

    @classmethod
    def refuse(cls, error: ScanError, message: str) -> ScanResult:
        return cls(ScanOutcome.ERROR, message, str(error))


def lock_station(user, kind: str, *related: str) -> Station:
    """The user's station of this kind, created on first use and locked (inside a
    transaction) so two tabs of one user scan one after the other. Stations are locked
    before anything in `orders.locks`' order, and only ever one station per transaction."""
    rows = Station.objects.select_for_update(of=("self",)).select_related(*related)
    try:
        return rows.get(user=user, kind=kind)
    except Station.DoesNotExist:
        Station.objects.get_or_create(user=user, kind=kind)
        return rows.get(user=user, kind=kind)


def is_double_fire(station: Station, code: str, now: datetime) -> bool:
    """The same non-empty code again within the window: the scanner fired twice."""
    window = timedelta(seconds=settings.STATION_DOUBLE_SCAN_SECONDS)
    return bool(
        code
        and code == station.last_code
        and station.last_scan_at is not None
        and now - station.last_scan_at < window
    )


def repeat_ignored(station: Station, code: str) -> ScanResult:
    """What a double fire answers: the last outcome again, nothing counted."""
    return ScanResult(station.outcome, f"Repeat scan of {code} ignored. {station.message}")


def remember(station: Station, code: str, now: datetime, result: ScanResult, *fields) -> None:
    """Store the scan's outcome (and the state fields the scan changed) on the station."""
    station.last_code, station.last_scan_at = code, now
    station.outcome, station.message, station.error = (
        result.outcome,
        result.message[:500],
        result.error,
    )
    station.save(
        update_fields=[
            "last_code",
            "last_scan_at",
            "outcome",
            "message",
            "error",
            "updated_at",
            *fields,
        ]
    )
