"""A channel simulator: the channel side of `channel-api.md` over real HTTP, for demos and tests.

Standalone on purpose (standard library only, nothing from the back-office): the back-office
must work against anything that speaks the contract, and the simulator must not know more.

    from simulator import SimulatorServer
    with SimulatorServer(port=0) as sim:
        sim.store.add_channel("FLIPKART", "user", "pass")
        base_url = sim.channel_url("FLIPKART")
"""

from .contract import ContractError, format_updated, parse_updated
from .generate import DEMO_CHANNELS, seed_demo
from .server import SimulatorServer
from .store import StateFileError, Store

__all__ = [
    "DEMO_CHANNELS",
    "ContractError",
    "SimulatorServer",
    "StateFileError",
    "Store",
    "format_updated",
    "parse_updated",
    "seed_demo",
]
