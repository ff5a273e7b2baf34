"""GSTIN: the 15-character GST identification number of a regular taxpayer.

Layout: state code (2 digits), PAN (5 letters, 4 digits, 1 letter), entity number (1-9, A-Z: the
registration's number among those of one PAN in one state), 'Z', check character. The check
character is GSTN's Luhn mod 36 over the first 14 characters, so a typo is caught offline.
Other GSTN identifiers (UIN, TDS/TCS, non-resident registrations) have other layouts and are
not accepted here: invoices carry the seller's and a business buyer's regular GSTIN.
"""

from __future__ import annotations

import re

from .states import STATES

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PAN = re.compile(r"[A-Z]{5}\d{4}[A-Z]")


def check_character(first14: str) -> str:
    """The check character of a GSTIN's first 14 characters (Luhn mod 36: every second
    character from the left is doubled, and a product of 36 or more counts as its two base-36
    digits)."""
    total = 0
    for position, char in enumerate(first14):
        product = _ALPHABET.index(char) * (2 if position % 2 else 1)
        total += product // 36 + product % 36
    return _ALPHABET[-total % 36]


def gstin_problem(value: str) -> str | None:
    """Why `value` is not a valid GSTIN, or None. Expects it stripped and upper-cased."""
    if len(value) != 15:
        return f"must be 15 characters (got {len(value)})"
    if not all(char in _ALPHABET for char in value):
        return "may contain only capital letters and digits"
    state = value[:2]
    if state not in STATES:
        return f"state code {state} is not a GST state"
    if not _PAN.fullmatch(value[2:12]):
        return f"characters 3-12 must be a PAN (5 letters, 4 digits, 1 letter), not {value[2:12]}"
    if value[12] == "0":
        return "entity number (character 13) must be 1-9 or A-Z"
    if value[13] != "Z":
        return "character 14 must be Z"
    expected = check_character(value[:14])
    if value[14] != expected:
        return f"check character should be {expected}"
    return None


def gstin_state(value: str) -> str:
    """The GST state code a GSTIN is registered in."""
    return value[:2]


def make_gstin(state_code: str, pan: str, entity: str = "1") -> str:
    """The GSTIN of this PAN's `entity`-th registration in a state (for demo data and tests);
    refuses parts that do not make a valid one."""
    body = f"{state_code}{pan}{entity}Z"
    if len(body) != 14 or not all(char in _ALPHABET for char in body):
        raise ValueError(f"no GSTIN from state {state_code!r}, PAN {pan!r}, entity {entity!r}")
    value = body + check_character(body)
    problem = gstin_problem(value)
    if problem:
        raise ValueError(f"no GSTIN from state {state_code!r}, PAN {pan!r}: {problem}")
    return value
