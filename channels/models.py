"""Sales channels. The channels issue adds the integration (credentials, adapters, sync)."""

from django.db import models


class ChannelType(models.TextChoices):
    CUSTOM = "CUSTOM", "Custom"
    FLIPKART = "FLIPKART", "Flipkart"
    AMAZON = "AMAZON", "Amazon"
    PAYTM = "PAYTM", "Paytm"
    SNAPDEAL = "SNAPDEAL", "Snapdeal"
    SHOPCLUES = "SHOPCLUES", "Shopclues"
    WOOPLR = "WOOPLR", "Wooplr"
    TATA_CLIQ = "TATA_CLIQ", "Tata Cliq"
    VOONIK = "VOONIK", "Voonik"


class Channel(models.Model):
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    channel_type = models.CharField(max_length=20, choices=ChannelType.choices, default="CUSTOM")
    is_enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code
