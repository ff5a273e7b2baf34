"""Secrets at rest: channel passwords are Fernet tokens in the database, keys rotate without a
value becoming unreadable, a missing or wrong key is a clear error, and the password reaches
no page, run message, notification attempt or log line."""

from __future__ import annotations

import http.server
import logging
import threading
from urllib.parse import quote_plus

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from channels.adapters import STATUS_PUSH, ChannelConfig, ChannelError, HttpChannelAdapter
from channels.models import Channel
from channels.sync import pull_orders
from uniware.core import secrets
from uniware.core.models import AdminAuditEvent

from .factories import ChannelFactory, UserFactory

PASSWORD = "Zebra-S3cret pass&x=1"  # a space and URL-special characters: encoded in queries
KEY1, KEY2, KEY3 = (Fernet.generate_key().decode() for _ in range(3))


def stored(channel: Channel, column: str = "password") -> str:
    """The column as the database holds it (raw SQL, past the field)."""
    with connection.cursor() as cursor:
        sql = f"SELECT {column} FROM channels_channel WHERE id = %s"  # noqa: S608 (a test's own)
        cursor.execute(sql, [channel.pk])
        return cursor.fetchone()[0]


def leaks(text: str) -> bool:
    return PASSWORD in text or quote_plus(PASSWORD) in text or "Zebra" in text


@pytest.fixture
def keys(settings):
    """Explicit keys (not the development key derived from SECRET_KEY)."""
    settings.SECRETS_KEYS = [KEY1]
    settings.SECRETS_DEV_KEY_FROM_SECRET_KEY = False
    return settings


# --- at rest ----------------------------------------------------------------------------------


def test_the_stored_value_is_a_token_that_decrypts_to_the_password(db, keys):
    channel = ChannelFactory(code="MYSHOP", username="seller", password=PASSWORD)
    raw = stored(channel)
    assert raw != PASSWORD and "Zebra" not in raw
    assert Fernet(KEY1).decrypt(raw.encode()).decode() == PASSWORD
    assert Channel.objects.get(pk=channel.pk).password == PASSWORD
    channel.save()
    assert stored(channel) != raw  # a new IV every time: equal passwords are not visible
    channel.refresh_token = "Atzr|Zebra-refresh"  # a native API's OAuth token, likewise
    channel.save()
    raw_token = stored(channel, "refresh_token")
    assert "Zebra" not in raw_token
    assert Fernet(KEY1).decrypt(raw_token.encode()).decode() == "Atzr|Zebra-refresh"
    ChannelFactory(code="EMPTY", password="")
    assert stored(Channel.objects.get(code="EMPTY")) == ""  # "not set" needs no key


def test_rotation_keeps_old_values_readable_before_and_after(db, keys):
    channel = ChannelFactory(code="MYSHOP", password=PASSWORD, refresh_token="Atzr|Zebra-1")
    old_token = stored(channel)
    keys.SECRETS_KEYS = [KEY2, KEY1]  # the new key first, the old one still there
    assert Channel.objects.get(pk=channel.pk).password == PASSWORD  # before the command
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    new_token = stored(channel)
    assert new_token != old_token
    assert Fernet(KEY2).decrypt(new_token.encode()).decode() == PASSWORD
    with pytest.raises(InvalidToken):
        Fernet(KEY1).decrypt(new_token.encode())
    keys.SECRETS_KEYS = [KEY2]  # the old key removed: still readable
    assert Channel.objects.get(pk=channel.pk).password == PASSWORD
    event = AdminAuditEvent.objects.get(action="secrets re-encrypted")
    assert event.changes == {
        "re-encrypted": {"channels.Channel.password": 1, "channels.Channel.refresh_token": 1}
    }
    assert Channel.objects.get(pk=channel.pk).refresh_token == "Atzr|Zebra-1"
    assert event.actor == "command:rotate_secrets"


def test_rotation_stops_naming_a_record_no_key_opens(db, keys):
    channel = ChannelFactory(code="MYSHOP", password=PASSWORD)
    keys.SECRETS_KEYS = [KEY2]  # the key that encrypted it was dropped too early
    with pytest.raises(CommandError, match=rf"channels.Channel.password of #{channel.pk}"):
        call_command("rotate_secrets")
    keys.SECRETS_KEYS = [KEY1]
    assert Channel.objects.get(pk=channel.pk).password == PASSWORD  # nothing half-rotated


def test_a_wrong_key_is_a_clear_error_naming_the_field(db, keys):
    channel = ChannelFactory(code="MYSHOP", password=PASSWORD)
    keys.SECRETS_KEYS = [KEY3]
    with pytest.raises(secrets.SecretUnreadable, match="channels.Channel.password") as caught:
        Channel.objects.get(pk=channel.pk)
    assert "SECRETS_KEYS" in str(caught.value) and not leaks(str(caught.value))


def test_a_missing_key_outside_development_is_improperly_configured(db, keys):
    keys.SECRETS_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="SECRETS_KEYS is not set"):
        ChannelFactory(code="MYSHOP", password=PASSWORD)
    ChannelFactory(code="NOPASS", password="")  # nothing to encrypt: no key needed


def test_a_malformed_key_is_named_by_position_never_echoed(db, keys):
    keys.SECRETS_KEYS = [KEY1, "not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="key 2 of 2 is not a Fernet key") as caught:
        secrets.encrypt("x")
    assert "not-a-fernet-key" not in str(caught.value)


def test_development_derives_a_key_from_secret_key(db, settings):
    settings.SECRETS_KEYS = []
    settings.SECRETS_DEV_KEY_FROM_SECRET_KEY = True
    channel = ChannelFactory(code="MYSHOP", password=PASSWORD)
    assert stored(channel) != PASSWORD
    assert Channel.objects.get(pk=channel.pk).password == PASSWORD


def test_dumpdata_writes_the_token_and_loaddata_reads_it_back(db, keys, tmp_path):
    channel = ChannelFactory(code="MYSHOP", password=PASSWORD)
    dump = tmp_path / "channels.json"
    call_command("dumpdata", "channels.channel", output=str(dump))
    assert "Zebra" not in dump.read_text()
    Channel.objects.all().delete()
    call_command("loaddata", str(dump), verbosity=0)
    assert Channel.objects.get(pk=channel.pk).password == PASSWORD


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_encrypts_existing_clear_values(keys):
    executor = MigrationExecutor(connection)
    before, after = ("channels", "0002_sync"), ("channels", "0003_encrypt_channel_passwords")
    try:
        executor.migrate([before])
        old_apps = executor.loader.project_state(before).apps
        old = old_apps.get_model("channels", "Channel").objects.create(
            code="OLD", name="Old", password=PASSWORD
        )
        old_apps.get_model("channels", "Channel").objects.create(code="NONE", name="None")
        assert stored(old) == PASSWORD  # clear text, as it was
        executor = MigrationExecutor(connection)
        executor.migrate([after])
        assert Fernet(KEY1).decrypt(stored(old).encode()).decode() == PASSWORD
        # the model as it was then (later migrations add columns this state has not)
        then = executor.loader.project_state(after).apps.get_model("channels", "Channel")
        assert then.objects.get(code="OLD").password == PASSWORD
        assert then.objects.get(code="NONE").password == ""
        executor = MigrationExecutor(connection)
        executor.migrate([before])  # reversible: clear again
        assert stored(old) == PASSWORD
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    Channel.objects.all().delete()


# --- never rendered -------------------------------------------------------------------------


def change_url(channel: Channel) -> str:
    return reverse("admin:channels_channel_change", args=[channel.pk])


def test_a_view_only_user_sees_whether_a_password_is_set_never_the_password(db, client):
    channel = ChannelFactory(code="MYSHOP", username="seller", password=PASSWORD)
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_channel"))
    client.force_login(viewer)
    page = client.get(change_url(channel)).content.decode()
    assert "MYSHOP" in page and "seller" in page
    assert not leaks(page)
    assert 'name="password"' not in page
    assert ">set<" in page.replace(" ", "")
    empty = ChannelFactory(code="NOPASS", password="")
    assert "not set" in client.get(change_url(empty)).content.decode()


def test_the_change_form_never_renders_the_password(db, admin_client):
    channel = ChannelFactory(code="MYSHOP", username="seller", password=PASSWORD)
    page = admin_client.get(change_url(channel)).content.decode()
    assert 'name="password"' in page  # the write-only input, empty
    assert not leaks(page) and stored(channel) not in page
    listing = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()
    history = admin_client.get(change_url(channel) + "history/").content.decode()
    assert not leaks(listing) and not leaks(history)


def test_the_channel_config_repr_hides_the_password(db):
    channel = ChannelFactory(code="MYSHOP", password=PASSWORD)
    assert not leaks(repr(ChannelConfig.of(channel)))


# --- never in run messages, attempt records or logs -----------------------------------------


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """A channel that refuses every request and echoes its URL back (as many do)."""

    def do_GET(self):  # noqa: N802
        body = f"Bad request: {self.path}".encode()
        self.send_response(400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def sync_channel(base_url: str) -> Channel:
    return ChannelFactory(
        code="MYSHOP",
        base_url=base_url,
        username="seller",
        password=PASSWORD,
        max_attempts=1,
        retry_base_delay=0,
        request_timeout=5,
    )


def test_an_echoed_auth_url_never_reaches_the_run_message_nor_the_log(db, echo_url, caplog):
    channel = sync_channel(echo_url)
    with caplog.at_level(logging.DEBUG):
        run = pull_orders(channel)
    assert "HTTP 400" in run.message and "authentication" in run.message
    assert "password=***" in run.message  # the echo is kept, the value is not
    assert not leaks(run.message)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/authToken" in logged  # the adapter logged the request ...
    assert not leaks(logged)  # ... without the password


def test_an_auth_connection_error_saved_to_a_run_has_no_password(db):
    run = pull_orders(sync_channel(closed_port_url()))
    assert "connection error" in run.message
    assert not leaks(run.message)


def test_a_notification_attempt_never_records_the_password(db, echo_url):
    channel = sync_channel(echo_url)
    adapter = HttpChannelAdapter(ChannelConfig.of(channel))
    with pytest.raises(ChannelError) as caught:  # what the attempt records
        adapter.push_once(STATUS_PUSH, "OD-1", {"orderItems": [{"orderItemId": "1"}]}, "key-1")
    assert "HTTP 400" in str(caught.value)
    assert not leaks(str(caught.value))
    adapter.close()


def test_scrub_removes_the_secret_in_every_form():
    text = f"x {PASSWORD} y {quote_plus(PASSWORD)} /a?user=u&password=abc&z=1"
    assert secrets.scrub(text, [PASSWORD]) == "x *** y *** /a?user=u&password=***&z=1"
