"""The forms of the channel admin: a channel (its secrets write-only), a re-sync from a date,
a dismissal of sync errors."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from .models import SCHEDULED_KINDS, Channel, SyncKind


class ChannelForm(forms.ModelForm):
    base_url = forms.URLField(
        label="Base URL",
        required=False,
        assume_scheme="https",
        help_text=Channel._meta.get_field("base_url").help_text,
    )
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: never shown again. Leave empty to keep the saved password.",
    )
    clear_password = forms.BooleanField(required=False, label="Remove the saved password")
    refresh_token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Native APIs with OAuth (Amazon: the LWA refresh token). Write-only: never "
        "shown again. Leave empty to keep the saved one.",
    )
    clear_refresh_token = forms.BooleanField(required=False, label="Remove the saved refresh token")

    class Meta:
        model = Channel
        fields = [  # the admin narrows this to its fieldsets
            f.name for f in Channel._meta.concrete_fields if f.editable and not f.primary_key
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "api_settings" in self.fields:
            self.fields["api_settings"].help_text = api_settings_help()

    def _write_only(self, name: str) -> str:
        """A secret the page never shows: what was entered, else the saved one (or none,
        when "remove" is ticked)."""
        entered = self.cleaned_data.get(name, "")
        if entered:
            return entered
        return "" if self.data.get(f"clear_{name}") else (getattr(self.instance, name) or "")

    def clean_password(self) -> str:
        return self._write_only("password")

    def clean_refresh_token(self) -> str:
        return self._write_only("refresh_token")


def api_settings_help() -> str:
    """What each native channel type needs in its API settings (from the adapter classes)."""
    from .adapters import adapter_class, channel_types

    needs = []
    for channel_type, label in channel_types():
        keys = adapter_class(channel_type).settings_keys
        if keys:
            listed = ", ".join(f'"{key}" ({what})' for key, what in keys.items())
            needs.append(f"{label}: {listed}")
    return "A JSON object. " + "; ".join(needs) + ". Other types need none."


class ResyncForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(k, SyncKind(k).label) for k in SCHEDULED_KINDS], label="Sync"
    )
    since = forms.DateField(
        label="From date",
        help_text="The next run of this sync covers the channel's orders from this date.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean_since(self):
        since = self.cleaned_data["since"]
        if since > timezone.localdate():
            raise forms.ValidationError(f"{since:%d %b %Y} is in the future")
        return since


class DismissForm(forms.Form):
    reason = forms.CharField(
        max_length=255,
        help_text="Why nothing more will be done (kept on each error).",
        widget=forms.TextInput(attrs={"size": 80}),
    )
