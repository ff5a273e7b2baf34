"""Talking to sales channels: one interface (`ChannelAdapter`), one implementation per type.

    adapter = adapter_for(channel)          # pooled, cached per worker thread and channel
    reply = adapter.fetch_order_statuses(["FK-1", "FK-2"])   # retries inside the call
    reply = adapter.push_once(STATUS_PUSH, "FK-1", body, key)  # one try: status and text

A new channel type is a new subclass of `ChannelAdapter` (or of `HttpChannelAdapter`) with its
`channel_type`, `label` and `preset`: it registers itself, the Channel model offers the type and
the admin applies its preset.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from . import amazon, marketplaces, shopify  # noqa: F401  (registers the built-in channel types)
from .base import (
    CANCEL_PUSH,
    DISPATCH_PUSH,
    ITEM_STATUSES,
    ORDER_STATUSES,
    STATUS_PUSH,
    STATUS_VALUES,
    BookedShipment,
    CallStats,
    ChannelAdapter,
    ChannelAuthError,
    ChannelBudgetSpent,
    ChannelConfig,
    ChannelError,
    ChannelOrder,
    ChannelOrderItem,
    ChannelReplyError,
    ChannelRequestError,
    ChannelUnavailable,
    OrdersReply,
    PushReply,
    Reply,
    adapter_class,
    channel_types,
)
from .http import HttpChannelAdapter, read_push_reply

__all__ = [
    "BookedShipment",
    "CANCEL_PUSH",
    "DISPATCH_PUSH",
    "ITEM_STATUSES",
    "ORDER_STATUSES",
    "STATUS_PUSH",
    "STATUS_VALUES",
    "CallStats",
    "ChannelAdapter",
    "ChannelAuthError",
    "ChannelBudgetSpent",
    "ChannelConfig",
    "ChannelError",
    "ChannelOrder",
    "ChannelOrderItem",
    "ChannelReplyError",
    "ChannelRequestError",
    "ChannelUnavailable",
    "HttpChannelAdapter",
    "OrdersReply",
    "PushReply",
    "Reply",
    "adapter_class",
    "adapter_for",
    "channel_types",
    "forget_adapters",
    "read_push_reply",
]


class _Cache:
    """One thread's adapters by channel pk, and the process they were made in."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.adapters: dict[int, ChannelAdapter] = {}


_local = threading.local()
_caches: weakref.WeakSet[_Cache] = weakref.WeakSet()  # every live thread's, for forget_adapters
_caches_lock = threading.Lock()


def _cache() -> _Cache:
    cache = getattr(_local, "cache", None)
    if cache is None or cache.pid != os.getpid():  # a forked process: the sockets are the parent's
        cache = _local.cache = _Cache()
        with _caches_lock:
            _caches.add(cache)
    return cache


def adapter_for(channel: Any) -> ChannelAdapter:
    """The adapter of a Channel. Kept per thread while the channel's settings are unchanged,
    so its pooled connections and token serve every run of that worker."""
    config = ChannelConfig.of(channel)
    cache = _cache().adapters
    cached = cache.get(channel.pk)
    if cached is not None and cached.config == config:
        cached.take_stats()
        return cached
    if cached is not None:
        cached.close()
    adapter = adapter_class(channel.channel_type)(config)
    cache[channel.pk] = adapter
    return adapter


def forget_adapters() -> None:
    """Close and drop the cached adapters of every thread of this process (tests, settings
    changes; a thread still holding one gets a connection error from its closed pool)."""
    with _caches_lock:
        caches = [c for c in _caches if c.pid == os.getpid()]
    for cache in caches:
        adapters, cache.adapters = cache.adapters, {}
        for adapter in adapters.values():
            adapter.close()
