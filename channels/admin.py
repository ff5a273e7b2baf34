"""Admin for sales channels (the channels issue adds integration settings and sync)."""

from django.contrib import admin

from .models import Channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "channel_type", "is_enabled"]
    list_filter = ["channel_type", "is_enabled"]
    search_fields = ["=code", "name"]
