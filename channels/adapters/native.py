"""What the adapters of marketplaces' own APIs share: a run's time budget for waiting on the
API's limits (rate limits, query cost), and an incremental order pull."""

from __future__ import annotations

import time
from typing import Any

from .base import ChannelBudgetSpent
from .http import HttpChannelAdapter

RUN_BUDGET_SECONDS = 480.0  # under the 10-minute pull interval


class NativeApiAdapter(HttpChannelAdapter):
    """An `HttpChannelAdapter` for a marketplace's own API (no channel type of its own)."""

    incremental = True

    def __init__(self, config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.deadline = float("inf")

    def _start_budget(self) -> None:
        """A call of the interface starts: it may wait on limits for `run_budget_seconds`."""
        budget = self.config.settings.get("run_budget_seconds") or RUN_BUDGET_SECONDS
        self.deadline = time.monotonic() + float(budget)

    def _wait(self, seconds: float, what: str, limit: str) -> None:
        """Wait for the API's limit, or stop the run (`ChannelBudgetSpent`: the next run goes
        on) when the wait would end past its budget."""
        if time.monotonic() + seconds > self.deadline:
            raise ChannelBudgetSpent(
                f"{what}: {limit} allows the next call in {seconds:.0f} s, after this run's "
                "time budget; the next run goes on from here"
            )
        self.sleep(seconds)
