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


# The APIs a channel scenario runs against: the channel contract and the marketplaces' own
# APIs the simulator plays (`simulator.native`). A test module or test names the ones its
# scenario can be told in with `@pytest.mark.dialects(...)`; without it, the contract only.
DIALECTS = ("contract", "amazon", "shopify")


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("dialects")
    if "dialect" in metafunc.fixturenames and marker is not None:
        names = marker.args or DIALECTS
        metafunc.parametrize("dialect", names, indirect=True)


@pytest.fixture
def dialect(request) -> str:
    return getattr(request, "param", "contract")


@pytest.fixture
def channel(world, sim, dialect) -> Channel:
    """The world's FLIPKART channel, pointed at the simulator (in the test's dialect)."""
    return point_at(world.channel, sim, dialect=dialect)


@pytest.fixture
def live(db):
    tenant = Tenant.get()
    tenant.is_live = True
    tenant.save()
    return tenant
