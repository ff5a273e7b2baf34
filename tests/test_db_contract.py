"""The fast paths' contract (uniware/core/db.py): the models they write, listed in
`FAST_WRITE_MODELS`, get no receiver of the signals the fast paths skip, and the fast paths
write no model that is not listed."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db.models import signals

from uniware.core.db import (
    FAST_WRITE_MODELS,
    SKIPPED_SIGNALS,
    add_per_row,
    build,
    bulk_set,
    contract_violations,
    copy_rows,
    insert_new,
)

HERE = "tests.test_db_contract"


def on_change(sender, **kwargs) -> None:
    """A receiver someone might connect."""


def test_no_fast_written_model_has_a_receiver_of_the_skipped_signals():
    assert len(FAST_WRITE_MODELS) == len({apps.get_model(label) for label in FAST_WRITE_MODELS})
    assert contract_violations() == []


@pytest.mark.parametrize("name", SKIPPED_SIGNALS)
def test_a_receiver_connected_to_a_listed_model_breaks_the_contract(name):
    signal = getattr(signals, name)
    model = apps.get_model("orders.OrderItem")
    signal.connect(on_change, sender=model, dispatch_uid=HERE)
    try:
        assert contract_violations() == [f"orders.OrderItem: {name} {HERE}.on_change"]
    finally:
        signal.disconnect(sender=model, dispatch_uid=HERE)
    assert contract_violations() == []


def test_a_receiver_of_every_sender_breaks_it_for_every_listed_model():
    signals.post_save.connect(on_change, dispatch_uid=HERE)
    try:
        found = contract_violations()
    finally:
        signals.post_save.disconnect(dispatch_uid=HERE)
    assert found == [f"{label}: post_save {HERE}.on_change" for label in FAST_WRITE_MODELS]


def test_only_the_receivers_listed_as_harmless_are_let_through():
    model = apps.get_model("inventory.Inventory")
    assert FAST_WRITE_MODELS["inventory.Inventory"] == ("inventory.ledger._opening_on_create",)
    assert signals.post_save.has_listeners(model)  # the ledger's, allowed with its reason
    signals.post_save.connect(on_change, sender=model, dispatch_uid=HERE)
    try:
        assert contract_violations() == [f"inventory.Inventory: post_save {HERE}.on_change"]
    finally:
        signals.post_save.disconnect(sender=model, dispatch_uid=HERE)


def test_the_fast_paths_refuse_a_model_that_is_not_listed():
    channel_model = apps.get_model("channels.Channel")
    refused = "channels.Channel is not in uniware.core.db.FAST_WRITE_MODELS"
    with pytest.raises(TypeError, match=refused):
        build(channel_model, code="X")
    with pytest.raises(TypeError, match=refused):
        insert_new(channel_model, [channel_model(code="X")])
    with pytest.raises(TypeError, match=refused):
        bulk_set(channel_model, [channel_model(pk=1, code="X")], ["code"])
    with pytest.raises(TypeError, match=refused):
        add_per_row(channel_model, {1: 1}, ["page_size"])
    with pytest.raises(TypeError, match=refused):
        copy_rows("channels_channel", ["code"], ["varchar"], [("X",)])
    with pytest.raises(TypeError, match="no model has the table 'nowhere'"):
        copy_rows("nowhere", ["code"], ["varchar"], [("X",)])
