"""Talking to sales channels: one interface (`ChannelAdapter`), one implementation per type.

    adapter = adapter_for(channel)          # pooled, cached per worker thread and channel
    reply = adapter.fetch_order_statuses(["FK-1", "FK-2"])

A new channel type is a new subclass of `ChannelAdapter` (or of `HttpChannelAdapter`) with its
`channel_type`, `label` and `preset`: it registers itself, the Channel model offers the type and
the admin applies its preset.
"""

from __future__ import annotations

import threading
from typing import Any

from .base import (
    ITEM_STATUSES,
    ORDER_STATUSES,
    STATUS_VALUES,
    CallStats,
    ChannelAdapter,
    ChannelAuthError,
    ChannelConfig,
    ChannelError,
    ChannelOrder,
    ChannelOrderItem,
    ChannelReplyError,
    ChannelRequestError,
    ChannelUnavailable,
    OrdersReply,
    PushReply,
    adapter_class,
    channel_types,
)
from .http import HttpChannelAdapter

__all__ = [
    "ITEM_STATUSES",
    "ORDER_STATUSES",
    "STATUS_VALUES",
    "CallStats",
    "ChannelAdapter",
    "ChannelAuthError",
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
    "adapter_class",
    "adapter_for",
    "channel_types",
    "forget_adapters",
]

_local = threading.local()


def adapter_for(channel: Any) -> ChannelAdapter:
    """The adapter of a Channel. Kept per thread while the channel's settings are unchanged,
    so its pooled connections and token serve every run of that worker."""
    config = ChannelConfig.of(channel)
    cache: dict = getattr(_local, "adapters", None) or {}
    _local.adapters = cache
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
    """Close and drop this thread's cached adapters (tests, settings changes)."""
    for adapter in (getattr(_local, "adapters", None) or {}).values():
        adapter.close()
    _local.adapters = {}
