"""Marketplaces' own APIs, played over the same store as the contract (`/ch/<CODE>`).

A dialect serves one real API's shapes (paths, bodies, status codes, paging tokens, rate-limit
headers) under `/<dialect>/<CODE>/...`, reading and changing the very orders the contract
serves: a test sets a channel's orders once (control API or `Store`) and runs the same
scenario against the contract and against each dialect. Fault rules match a dialect's
requests by the contract operation they stand for (`Dialect.operation`), so a rule on
`/orders` fails Amazon's getOrders as it fails the contract's order pull.

Each dialect keeps the request and reply shapes of its API in one module (`shapes`) and
refuses a request that does not match them with the API's own error, as the real one would.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from functools import cached_property
from typing import Any, Protocol

from ..faults import FaultRule

Reply = tuple[int, Any, dict[str, str]]


@dataclass
class NativeRequest:
    """One request to a dialect, as the server read it."""

    store: Any  # simulator.store.Store
    code: str  # the channel
    method: str
    path: str  # below /<dialect>/<CODE>
    query: dict[str, list[str]]
    headers: Message
    raw: bytes
    notes: dict[str, Any] = field(default_factory=dict)  # what the dialect logs with it

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    @cached_property
    def body(self) -> Any:
        """The body's JSON, read once (None when it is not JSON)."""
        try:
            return json.loads(self.raw or b"null")
        except ValueError:
            return None


class LeakyBucket:
    """An API's limit per key (a channel, or a channel's operation): `capacity` points that
    refill at `rate` a second; a request costs some (Amazon: one call, Shopify: its query
    cost)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[Any, tuple[float, float]] = {}

    def spend(self, key: Any, cost: float, capacity: float, rate: float) -> tuple[bool, float]:
        """(whether the request may run, what is left after it)."""
        with self.lock:
            now = time.monotonic()
            level, at = self.state.get(key, (capacity, now))
            level = min(capacity, level + (now - at) * rate)
            ok = cost <= level
            level = level - cost if ok else level
            self.state[key] = (level, now)
            return ok, level


def last_changed(order: dict) -> datetime:
    """When the channel last changed a store order (its date, an item's, or a control change):
    what the native APIs list orders by."""
    moments = [order["orderDate"], order.get("changedAt") or ""]
    moments += [item["updated"] for item in order["orderItems"]]
    return max(datetime.fromisoformat(m) for m in moments if m)


class Dialect(Protocol):
    name: str

    def operation(self, request: NativeRequest) -> tuple[str, str]:
        """The contract (method, path) this request stands for, for fault rules."""

    def call(self, request: NativeRequest) -> Reply:
        """The API's reply."""

    def fault(self, rule: FaultRule, reply: Reply) -> Reply:
        """A fault rule's reply (contract-shaped) in the API's own shape."""


DIALECTS: dict[str, Dialect] = {}


def register(dialect: Dialect) -> Dialect:
    DIALECTS[dialect.name] = dialect
    return dialect


# The dialects register themselves on import (after the registry above exists).
from . import amazon, shopify  # noqa: E402, F401
