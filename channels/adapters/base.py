"""The one interface for talking to a sales channel, the data it returns, and its errors.

An adapter class per channel type registers itself (`channel_type`, `label`, `preset`); the
Channel model takes its type choices and presets from this registry, so a new channel type is
a new adapter class and nothing else. Adapters know nothing of the ORM: they get a
`ChannelConfig` snapshot and return plain data classes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

ORDER_STATUSES = ("PENDING_VERIFICATION", "CREATED", "COMPLETE", "CANCELLED")
ITEM_STATUSES = (
    "CREATED",
    "CANCELLED",
    "DISPATCHED",
    "DELIVERED",
    "RETURN_REQUESTED",
    "COURIER_RETURN",
)
STATUS_VALUES = ORDER_STATUSES


# --- errors -----------------------------------------------------------------------------


class ChannelError(Exception):
    """A call to the channel failed; the message names the channel and says why."""


class ChannelUnavailable(ChannelError):
    """Transient failures (429, 5xx, timeouts, connection errors) outlasted every retry."""


class ChannelBudgetSpent(ChannelUnavailable):
    """The run's time budget is spent (a rate limit would make it wait past it): stop now,
    never retried; the next run goes on from the cursor."""


class ChannelAuthError(ChannelError):
    """The channel refused our credentials (or kept answering 401 after re-authenticating)."""


class ChannelRequestError(ChannelError):
    """The channel refused the request (a 4xx other than 401/429): retrying will not help."""


class ChannelReplyError(ChannelError):
    """The channel answered something that is not the contract's reply (not JSON, wrong
    shape, truncated). Permanent for that request; recorded, never a crash."""


# --- what channels send -----------------------------------------------------------------


@dataclass(frozen=True)
class ChannelOrderItem:
    """One channel line: `quantity` units, `cancelled_quantity` of them cancelled."""

    order_item_id: str
    sku: str
    quantity: int
    status: str
    cancelled_quantity: int = 0
    product_id: str = ""
    variant_id: str = ""
    title: str = ""
    selling_price: Decimal = Decimal(0)
    shipping_charges: Decimal = Decimal(0)
    updated: datetime | None = None
    courier_name: str = ""
    tracking_number: str = ""
    return_reason: str = ""
    return_date: str = ""
    return_awb: str = ""
    return_shipping_provider: str = ""

    @property
    def open_quantity(self) -> int:
        """Units of the line in `status` (the others are cancelled)."""
        return self.quantity - self.cancelled_quantity


@dataclass(frozen=True)
class ChannelOrder:
    id: str
    order_status: str
    order_date: datetime | None
    payment_type: str
    third_party_shipping: bool
    items: tuple[ChannelOrderItem, ...]
    currency: str = "INR"
    shipping_address: dict[str, str] = field(default_factory=dict)
    dispatch_by: datetime | None = None  # the channel's latest ship date (Amazon's)
    billing_address: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as received


@dataclass
class OrdersReply:
    """Orders of one reply; the orders that could not be read (channel order id or "#n" for
    the n-th entry, and why); the ids whose request failed (id: the request's error); and,
    when the channel stopped answering part way, why and which ids were never asked."""

    orders: list[ChannelOrder] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    unanswered: dict[str, str] = field(default_factory=dict)
    # A reply cut short when the channel stopped answering (unavailable, credentials refused):
    # why, and the ids no request asked about. What was received before stays usable.
    stopped: str = ""
    not_asked: list[str] = field(default_factory=list)
    # Order pull of a native API that lists by time slices: every order changed up to this
    # instant has been listed (with this page or before), so the pull's cursor may move there
    # even if the run stops later (a run out of rate-limit budget resumes from it).
    complete_up_to: datetime | None = None
    # Where the listing goes on if the run stops after this page (a native API's paging
    # token): the pull keeps it on its cursor and hands it to the next run's fetch_orders.
    resume: dict[str, Any] | None = None


@dataclass
class Reply:
    """What one try of a call got: the channel's reply (`status`, `text`), or why there is
    none. `error` is empty only for a 2xx reply; `transient` says whether trying again later
    can help (429, 5xx, timeouts, connection errors); `retry_after` is the reply's
    `Retry-After` in seconds."""

    status: int | None = None
    text: str = ""
    error: str = ""
    transient: bool = False
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)  # the adapter's `reply_headers`
    # The channel took the push to process later (Amazon's Feeds API): its reference, asked
    # about by the next try (`push_once(..., ref=)`) after `retry_after` seconds.
    awaiting: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class BookedShipment:
    """A package the channel ships, booked with it (Amazon Easy Ship): its carrier and
    tracking number, the channel's label (PDF), and when the carrier collects it."""

    carrier: str
    tracking_number: str
    label_pdf: bytes
    handover: str = ""  # "PICKUP 2026-12-04 10:00–12:00", as the channel said


# The pushes a channel may accept (channel-api.md §4-6), as `push_once` names them.
STATUS_PUSH, CANCEL_PUSH, DISPATCH_PUSH = "STATUS", "CANCEL", "DISPATCH"


@dataclass(frozen=True)
class PushReply:
    """A channel's answer to a push (notification, cancel, dispatch, inventory)."""

    status: str
    failed: tuple[tuple[str, str], ...] = ()
    error: str = ""
    # The channel took the listings to process later (a feed): its reference, for
    # `inventory_report` (`status` is then "SUBMITTED").
    awaiting: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def order_unknown(self) -> bool:
        """Every failure says the channel does not know the order: retrying cannot help."""
        said = [message for _, message in self.failed if message] or [self.error]
        return not self.ok and all(UNKNOWN_ORDER.search(m or "") for m in said)


def failed_push(entries: list[dict], message: str, reasons: dict[str, str] | None = None) -> dict:
    """The contract's FAILED push reply (channel-api.md §4) naming every item sent: its own
    reason from `reasons` (by orderItemId), else `message`. For adapters of APIs that answer
    otherwise, so that the outbox reads their refusals as any channel's."""
    reasons = reasons or {}
    items = [
        {
            "orderItemId": e.get("orderItemId"),
            "errorMessage": reasons.get(str(e.get("orderItemId")), message),
        }
        for e in entries
    ]
    error = "; ".join(f"{i}: {m}" for i, m in reasons.items()) or message
    return {"status": "FAILED", "error": error, "orderItems": items}


# How channels say they do not know an order ("order FK-1 is unknown", "Order not found").
UNKNOWN_ORDER = re.compile(r"\border\b.*\b(is unknown|not found|does not exist)", re.I)


@dataclass(frozen=True)
class ChannelConfig:
    """What an adapter needs to know of a Channel (a snapshot: no ORM in adapters)."""

    code: str
    channel_type: str
    base_url: str
    username: str = ""
    password: str = field(default="", repr=False)  # never in a log line or error report
    refresh_token: str = field(default="", repr=False)  # likewise (native OAuth APIs)
    settings: dict[str, Any] = field(default_factory=dict)  # Channel.api_settings
    page_size: int = 50
    status_batch_size: int = 50
    timeout: float = 30.0
    connect_timeout: float = 5.0
    max_attempts: int = 5
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0

    @classmethod
    def of(cls, channel: Any) -> ChannelConfig:
        return cls(
            code=channel.code,
            channel_type=channel.channel_type,
            base_url=channel.base_url,
            username=channel.username,
            password=channel.password,
            refresh_token=channel.refresh_token,
            settings=dict(channel.api_settings or {}),
            page_size=channel.page_size,
            status_batch_size=channel.status_batch_size,
            timeout=channel.request_timeout,
            connect_timeout=min(5.0, channel.request_timeout),
            max_attempts=channel.max_attempts,
            retry_base_delay=channel.retry_base_delay,
        )


@dataclass
class CallStats:
    """What the calls of one run cost: requests, retries and why they were retried."""

    requests: int = 0
    retries: int = 0
    reauthentications: int = 0
    retry_reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.retries and not self.reauthentications:
            return ""
        parts = []
        if self.retries:
            reasons = ", ".join(self.retry_reasons[:5])
            more = f" and {len(self.retry_reasons) - 5} more" if len(self.retry_reasons) > 5 else ""
            parts.append(f"{self.retries} request(s) retried ({reasons}{more})")
        if self.reauthentications:
            parts.append(f"re-authenticated {self.reauthentications} time(s)")
        return "; ".join(parts)


def statuses_in_batches(
    order_ids: list[str], size: int, ask: Callable[[list[str]], OrdersReply]
) -> OrdersReply:
    """Ask about orders in requests of `size` ids (`ask` makes one). A malformed or refused
    reply fails only its ids (`unanswered`); a channel that stays unavailable (or refuses our
    credentials) raises on the first request, and later ends the reply early (`stopped`,
    `not_asked`) so the answers already received are not lost."""
    result = OrdersReply()
    for start in range(0, len(order_ids), size):
        chunk = order_ids[start : start + size]
        try:
            reply = ask(chunk)
        except (ChannelReplyError, ChannelRequestError) as exc:
            result.unanswered.update(dict.fromkeys(chunk, str(exc)))
            continue
        except (ChannelUnavailable, ChannelAuthError) as exc:
            if not start:
                raise  # nothing received: the whole call failed
            result.unanswered.update(dict.fromkeys(chunk, str(exc)))
            result.stopped, result.not_asked = str(exc), order_ids[start + size :]
            return result
        asked = set(chunk)
        result.orders += [o for o in reply.orders if o.id in asked]
        result.problems += reply.problems
    return result


def status_query_what(code: str, chunk: list[str]) -> str:
    """How messages name one status request."""
    return f"Channel {code}: get order status ({len(chunk)} orders from {chunk[0]})"


# --- the interface and its registry -------------------------------------------------------

_REGISTRY: dict[str, type[ChannelAdapter]] = {}


class ChannelAdapter(ABC):
    """Talk to one channel. Subclasses set `channel_type`, `label` and `preset` (the channel
    type's default capability flags) and are registered by defining them."""

    channel_type: ClassVar[str] = ""
    label: ClassVar[str] = ""
    preset: ClassVar[dict[str, bool]] = {}
    # Native APIs: the `Channel.api_settings` keys the adapter needs (key: what it is).
    settings_keys: ClassVar[dict[str, str]] = {}
    # The order pull asks only for orders changed since its cursor (a native API whose
    # listing is rate-limited), not for the whole pull window every run.
    incremental: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("channel_type"):
            _REGISTRY[cls.channel_type] = cls

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self.stats = CallStats()

    def take_stats(self) -> CallStats:
        """The stats since the last call (one run's worth)."""
        stats, self.stats = self.stats, CallStats()
        return stats

    @classmethod
    def settings_problems(cls, settings: dict[str, Any]) -> list[str]:
        """What is missing from a channel's `api_settings` for this adapter."""
        return [
            f"API settings need {key!r} ({what})"
            for key, what in cls.settings_keys.items()
            if not str(settings.get(key) or "").strip()
        ]

    def listed_until(self, now: datetime) -> datetime:
        """The latest instant the channel's order listing is complete up to (Amazon lists
        nothing changed in the last two minutes): the pull asks up to it, and its cursor
        moves there, so no order is skipped."""
        return now

    @abstractmethod
    def fetch_orders(
        self,
        date_from: datetime,
        date_to: datetime,
        statuses: list[str],
        known: Callable[[list[str]], set[str]] | None = None,
        resume: dict[str, Any] | None = None,
    ) -> Iterator[OrdersReply]:
        """Order pull: one OrdersReply per page, until the channel has no more. `known` tells
        which ids we have already: an adapter that needs a call per order for its lines
        skips those and yields them without lines (the pull only reads their status).
        `resume`: the last `OrdersReply.resume` of a run that stopped part way."""

    @abstractmethod
    def fetch_order_statuses(self, order_ids: list[str]) -> OrdersReply:
        """The current state of these orders (ids the channel does not know are absent)."""

    def push_once(self, push: str, order_id: str, body: dict, key: str, *, ref: str = "") -> Reply:
        """One try of a push (`STATUS_PUSH` to the order `order_id`, `CANCEL_PUSH`,
        `DISPATCH_PUSH`), for a caller that schedules its own retries: the notification
        outbox. Never sleeps; a 2xx reply's `text` is the contract's push reply (§4-6), which
        `read_push_reply` reads. A channel that processes a push later answers
        `Reply.awaiting` (its reference); the caller's next try passes it back as `ref` and
        gets the outcome, or `awaiting` again. Raises ChannelError when it cannot try
        (authentication failed: ChannelUnavailable when that may pass)."""
        raise NotImplementedError(f"{self.label} adapter does not push one try at a time")

    def post_status_notification(self, order_id: str, entries: list[dict]) -> PushReply:
        raise NotImplementedError(f"{self.label} adapter does not send status notifications")

    def post_cancel(self, payload: dict) -> PushReply:
        raise NotImplementedError(f"{self.label} adapter does not send cancellations")

    def post_dispatch(self, payload: dict) -> PushReply:
        raise NotImplementedError(f"{self.label} adapter does not send dispatches")

    def post_inventory(self, listings: list[dict]) -> PushReply:
        raise NotImplementedError(f"{self.label} adapter does not send inventory")

    books_shipments = False  # the channel ships its orders and books them when we pack

    def book_shipment(self, order_id: str, item_ids: list[str]) -> BookedShipment:
        """Book the package of these items of an order the channel ships: its carrier,
        tracking number and label. Raises ChannelError (the channel's reason) when refused."""
        raise NotImplementedError(f"{self.label} adapter does not book shipments")

    def inventory_report(self, reference: str, product_ids: list[str]) -> PushReply | None:
        """The outcome of listings sent for later processing (`PushReply.awaiting`), named
        by productId in the order they were sent; None while the channel is still at it."""
        raise NotImplementedError(f"{self.label} adapter does not process inventory later")

    def close(self) -> None:  # noqa: B027 (optional: most adapters hold nothing to free)
        """Free pooled connections."""


def adapter_class(channel_type: str) -> type[ChannelAdapter]:
    """The registered adapter class of a type (the package registers the built-in ones)."""
    try:
        return _REGISTRY[channel_type]
    except KeyError:
        raise ChannelError(
            f"No adapter for channel type {channel_type!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


def channel_types() -> list[tuple[str, str]]:
    """(type, label) of every registered adapter, CUSTOM first."""
    return sorted(
        ((t, cls.label) for t, cls in _REGISTRY.items()), key=lambda c: (c[0] != "CUSTOM", c[1])
    )
