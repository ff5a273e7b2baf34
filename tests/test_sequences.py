"""Gap-free document numbers: facility sequence over tenant-wide, clear error when missing,
numbers given back on rollback. (Concurrent use: test_concurrency.py.)"""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction

from uniware.core.models import Sequence, SequenceName
from uniware.core.services import SequenceNotDefined, sequence_ensure_defined, sequence_take

from .factories import FacilityFactory


def take(name, **kwargs) -> list[str]:
    with transaction.atomic():
        return sequence_take(name, **kwargs)


def next_value(name, facility=None) -> int:
    return Sequence.objects.get(name=name, facility=facility).next_value


def test_migration_defines_internal_sequences_but_not_legal_invoice_numbers(db):
    tenant_wide = dict(Sequence.objects.filter(facility=None).values_list("name", "prefix"))
    assert tenant_wide == {
        "SHIPMENT": "SP-",
        "PICKLIST": "PL-",
        "MANIFEST": "MF-",
        "PUTAWAY": "PA-",
        "REVERSE_PICKUP": "RP-",
        "GATEPASS": "GP-",
    }
    assert set(SequenceName.values) - set(tenant_wide) == {"INVOICE", "RETURN_INVOICE"}


def test_numbers_are_consecutive_and_formatted(db):
    Sequence.objects.create(name="INVOICE", prefix="INV/", padding=4, next_value=7)
    assert take("INVOICE") == ["INV/0007"]
    assert take("INVOICE", count=3) == ["INV/0008", "INV/0009", "INV/0010"]
    assert next_value("INVOICE") == 11


def test_facility_sequence_wins_over_tenant_wide(db):
    wh1 = FacilityFactory(code="WH1")
    wh2 = FacilityFactory(code="WH2")
    Sequence.objects.create(name="INVOICE", prefix="T-", padding=2)
    Sequence.objects.create(name="INVOICE", facility=wh1, prefix="W1-", padding=2)
    assert take("INVOICE", facility=wh1) == ["W1-01"]
    assert take("INVOICE", facility=wh2) == ["T-01"], "no WH2 sequence: the tenant-wide one"
    assert take("INVOICE") == ["T-02"]
    assert next_value("INVOICE", wh1) == 2 and next_value("INVOICE") == 3


def test_missing_sequence_is_a_clear_error_that_changes_nothing(db):
    wh1 = FacilityFactory(code="WH1")
    with pytest.raises(SequenceNotDefined) as caught:
        take("INVOICE", facility=wh1)
    assert str(caught.value) == "Sequence INVOICE is not defined for facility WH1"
    assert (caught.value.name, caught.value.facility) == ("INVOICE", wh1)
    with pytest.raises(
        SequenceNotDefined, match="^Sequence RETURN_INVOICE is not defined tenant-wide$"
    ):
        sequence_ensure_defined("RETURN_INVOICE")
    assert not Sequence.objects.filter(name__in=["INVOICE", "RETURN_INVOICE"]).exists()


def test_rollback_gives_the_numbers_back(db):
    Sequence.objects.create(name="INVOICE", prefix="I", padding=1)
    with pytest.raises(RuntimeError, match="later failure"), transaction.atomic():
        assert sequence_take("INVOICE", count=2) == ["I1", "I2"]
        raise RuntimeError("later failure")
    assert next_value("INVOICE") == 1
    assert take("INVOICE") == ["I1"]


def test_taking_numbers_outside_a_transaction_is_refused(db):
    """In autocommit the row lock would end with the statement: numbers could repeat."""
    Sequence.objects.create(name="INVOICE")
    # pytest-django wraps each test in a transaction: pretend to be autocommit code
    with (
        mock.patch.object(connection, "in_atomic_block", False),
        pytest.raises(RuntimeError, match="inside transaction.atomic"),
    ):
        sequence_take("INVOICE")
    assert next_value("INVOICE") == 1


def test_one_sequence_per_name_and_facility(db):
    wh1 = FacilityFactory(code="WH1")
    Sequence.objects.create(name="INVOICE", facility=wh1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Sequence.objects.create(name="INVOICE", facility=wh1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Sequence.objects.create(name="SHIPMENT", facility=None)  # the migration made one
    assert Sequence.objects.filter(name="INVOICE").count() == 1


def test_str_shows_the_next_number(db):
    wh1 = FacilityFactory(code="WH1")
    seq = Sequence.objects.create(name="INVOICE", facility=wh1, prefix="A", padding=3)
    assert str(seq) == "INVOICE (WH1): next A001"
    assert str(Sequence.objects.get(name="SHIPMENT")) == "SHIPMENT (tenant-wide): next SP-000001"
