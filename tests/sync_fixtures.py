"""Fixtures for the channel tests: the simulator on loopback and a channel pointed at it.

Test modules load them with `pytest_plugins = ["tests.sync_fixtures"]`.
"""

from __future__ import annotations

import pytest

from channels.adapters import forget_adapters
from channels.models import Channel
from simulator import SimulatorServer
from uniware.core.models import Tenant

from .sync_helpers import point_at


@pytest.fixture
def sim():
    """The channel simulator on a free loopback port, with channels FLIPKART and AMAZON."""
    with SimulatorServer(port=0) as server:
        server.store.add_channel("FLIPKART", "user", "pass")
        server.store.add_channel("AMAZON", "user", "pass")
        yield server
    forget_adapters()


@pytest.fixture
def channel(world, sim) -> Channel:
    """The world's FLIPKART channel, pointed at the simulator."""
    return point_at(world.channel, sim)


@pytest.fixture
def live(db):
    tenant = Tenant.get()
    tenant.is_live = True
    tenant.save()
    return tenant
