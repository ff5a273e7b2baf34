"""Secrets at rest: channel credentials (and any future API token) encrypted in the database.

- `EncryptedTextField`: the database holds a Fernet token, Python code sees the clear text.
  An empty value stays empty (so "is a password set?" needs no key). Fernet tokens carry a
  random IV, so the same password never gives the same column value: lookups other than
  `= ""` on such a field do not work, by design.
- Keys: `settings.SECRETS_KEYS` (from the environment, comma-separated Fernet keys). The first
  encrypts, every one decrypts (`MultiFernet`), which is what makes rotation possible: put a
  new key first, run `manage.py rotate_secrets` (re-encrypts every stored secret with it),
  then remove the old key. Without SECRETS_KEYS a development deployment
  (`SECRETS_DEV_KEY_FROM_SECRET_KEY`, i.e. DEBUG at start-up) derives a key from SECRET_KEY;
  any other deployment gets `ImproperlyConfigured` at the first use, never a silent default.
- `scrub()`: removes a secret (and its URL-encoded forms, and any `password=` query value)
  from text that may reach a run message, an error record or a log line.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, quote_plus

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

HIDDEN = "***"
TOKEN_START = "gAAAAA"  # every Fernet token (version byte 0x80, then the time)
GENERATE_HINT = (
    "generate one with: python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'"
)
_QUERY_SECRET = re.compile(r"(?i)((?:password|passwd|secret|token|api_?key)=)[^&\s'\"<>)]*")


class SecretKeyMissing(ImproperlyConfigured):
    """No key to encrypt or decrypt secrets with (SECRETS_KEYS unset outside development)."""


class SecretUnreadable(ImproperlyConfigured):
    """A stored secret opens with none of the configured keys."""


def _derived_dev_key(secret_key: str) -> bytes:
    """A Fernet key derived from SECRET_KEY (development only: one less thing to set up)."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"uniware secrets at rest"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...], dev_secret: str | None) -> MultiFernet:
    if not keys:
        if dev_secret is None:
            raise SecretKeyMissing(
                "SECRETS_KEYS is not set: channel passwords are encrypted in the database and "
                "need a Fernet key outside development (DEBUG=0). Set SECRETS_KEYS to one or "
                f"more comma-separated keys; {GENERATE_HINT}"
            )
        return MultiFernet([Fernet(_derived_dev_key(dev_secret))])
    fernets = []
    for n, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError) as exc:  # never echo the key itself
            raise ImproperlyConfigured(
                f"SECRETS_KEYS: key {n} of {len(keys)} is not a Fernet key (32 bytes, "
                f"url-safe base64); {GENERATE_HINT}"
            ) from exc
    return MultiFernet(fernets)


def keyring() -> MultiFernet:
    """The configured keys (first encrypts, all decrypt); raises when there are none."""
    keys = tuple(k for k in getattr(settings, "SECRETS_KEYS", ()) if k)
    derive = getattr(settings, "SECRETS_DEV_KEY_FROM_SECRET_KEY", False)
    return _fernet(keys, settings.SECRET_KEY if derive else None)


def encrypt(value: str) -> str:
    """The Fernet token of `value` under the first key ("" stays "")."""
    if not value:
        return ""
    return keyring().encrypt(value.encode()).decode()


def decrypt(token: str, *, what: str = "a stored secret") -> str:
    """The clear text of a token ("" stays ""); `what` names the record and field in errors."""
    if not token:
        return ""
    try:
        return keyring().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            f"Cannot decrypt {what}: none of the keys in SECRETS_KEYS opens it (was the key "
            "that encrypted it removed, or the stored value changed?)"
        ) from None


def is_token(value: str) -> bool:
    """True when `value` opens with the configured keys (the data migration's test)."""
    try:
        keyring().decrypt(value.encode())
    except (InvalidToken, ValueError, TypeError):
        return False
    return True


def rotate(token: str) -> str:
    """The token re-encrypted with the first key (its clear text unchanged)."""
    if not token:
        return ""
    return keyring().rotate(token.encode()).decode()


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets (as they are, and URL-encoded) nor `password=` values."""
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                text = text.replace(form, HIDDEN)
    return _QUERY_SECRET.sub(lambda m: m.group(1) + HIDDEN, text)


class ScrubQueryFilter(logging.Filter):
    """Hides `password=...` in log records (urllib3 logs every request URL at DEBUG, and the
    channel contract sends the credentials as query parameters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; the model attribute is the clear text."""

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return decrypt(value, what=f"{self.model._meta.label}.{self.name}")

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return value
        return encrypt(value)

    def to_python(self, value):
        """A token (from `loaddata` of what `dumpdata` wrote) becomes its clear text again."""
        value = super().to_python(value)
        if value and value.startswith(TOKEN_START) and is_token(value):
            return decrypt(value, what=f"{self.model._meta.label}.{self.name}")
        return value

    def value_to_string(self, obj) -> str:
        """Serialisation (dumpdata) writes the token, never the clear text."""
        return encrypt(self.value_from_object(obj) or "")
