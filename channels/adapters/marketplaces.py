"""The marketplace channel types of seed 000 and their presets.

They all speak the channel contract here (the simulator plays them); a marketplace whose real
API differs gets its own adapter class translating to it behind the same interface. Presets
(seed 000, domain.md): status sync on for every one of them; Amazon syncs only the orders it
ships itself.
"""

from __future__ import annotations

from .http import HttpChannelAdapter

MARKETPLACE = {
    "supports_status_sync": True,
    "status_sync_channel_shipped_only": False,
    "provides_shipping": True,
    "accepts_status_notifications": False,
    "accepts_cancel": True,
    "accepts_dispatch": True,
    "accepts_inventory": True,
}


class FlipkartAdapter(HttpChannelAdapter):
    channel_type = "FLIPKART"
    label = "Flipkart"
    preset = MARKETPLACE


class AmazonAdapter(HttpChannelAdapter):
    channel_type = "AMAZON"
    label = "Amazon"
    preset = {**MARKETPLACE, "status_sync_channel_shipped_only": True}


class PaytmAdapter(HttpChannelAdapter):
    channel_type = "PAYTM"
    label = "Paytm"
    preset = MARKETPLACE


class SnapdealAdapter(HttpChannelAdapter):
    channel_type = "SNAPDEAL"
    label = "Snapdeal"
    preset = MARKETPLACE


class ShopcluesAdapter(HttpChannelAdapter):
    channel_type = "SHOPCLUES"
    label = "Shopclues"
    preset = MARKETPLACE


class WooplrAdapter(HttpChannelAdapter):
    channel_type = "WOOPLR"
    label = "Wooplr"
    preset = MARKETPLACE


class TataCliqAdapter(HttpChannelAdapter):
    channel_type = "TATA_CLIQ"
    label = "Tata Cliq"
    preset = MARKETPLACE


class VoonikAdapter(HttpChannelAdapter):
    channel_type = "VOONIK"
    label = "Voonik"
    preset = MARKETPLACE
