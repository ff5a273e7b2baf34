"""The channel adapter: token handling, paging, retries with back-off, clear errors.

Most tests fake HTTP with a scripted connection (no network, no sleeping: the adapter's `sleep`
is recorded); the last ones talk to the simulator over loopback.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import ClassVar
from urllib.parse import parse_qsl

import pytest

from channels.adapters import (
    STATUS_PUSH,
    ChannelAuthError,
    ChannelConfig,
    ChannelError,
    ChannelReplyError,
    ChannelUnavailable,
    HttpChannelAdapter,
    adapter_class,
    adapter_for,
    channel_types,
)
from channels.adapters.base import _REGISTRY
from channels.adapters.http import retry_after_seconds
from channels.models import Channel, ChannelType

from .sync_helpers import channel_order, point_at

pytest_plugins = ["tests.sync_fixtures"]


class FakeResponse:
    will_close = False

    def __init__(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.status, self.data = status, data
        self.headers = {name.lower(): value for name, value in headers.items()}

    def read(self) -> bytes:
        return self.data

    def getheader(self, name: str, default=None):
        return self.headers.get(name.lower(), default)


def response(status: int = 200, body=None, headers: dict | None = None, raw: bytes | None = None):
    return FakeResponse(
        status, raw if raw is not None else json.dumps(body).encode(), headers or {}
    )


TIMEOUT = TimeoutError("timed out")
DROPPED = ConnectionResetError(104, "Connection reset by peer")


class FakeSocket:
    def settimeout(self, timeout) -> None:
        pass

    def setsockopt(self, *args) -> None:
        pass


class FakeConnection:
    """Answers each request with the next scripted reply (a response, or an exception raised
    while waiting for it); connecting always works."""

    def __init__(self, *replies) -> None:
        self.replies = list(replies)
        self.calls: list[dict] = []
        self.sock: FakeSocket | None = None
        self.timeout = None
        self.connects = 0

    def connect(self) -> None:
        self.sock = FakeSocket()
        self.connects += 1

    def request(self, method, url, body=None, headers=None) -> None:
        path, _, query = url.partition("?")
        self.calls.append(
            {
                "method": method,
                "url": path,
                "params": dict(parse_qsl(query)),
                "headers": dict(headers or {}),
                "data": body,
            }
        )

    def getresponse(self):
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        self.sock = None


TOKEN = response(body={"status": "SUCCESS", "accessToken": "tok-1"})


def ok_orders(*ids: str):
    return response(body={"orders": [channel_order(i, [(f"{i}-1", "TSHIRT", 1)]) for i in ids]})


def adapter(*replies, **config) -> tuple[HttpChannelAdapter, FakeConnection, list[float]]:
    session = FakeConnection(*replies)
    slept: list[float] = []
    settings = {
        "code": "FK",
        "channel_type": "CUSTOM",
        "base_url": "http://channel.test/api/",
        "username": "u",
        "password": "p",
        "max_attempts": 4,
        "retry_base_delay": 1.0,
        **config,
    }
    a = HttpChannelAdapter(
        ChannelConfig(**settings), connection=session, sleep=slept.append, jitter=lambda: 1.0
    )
    return a, session, slept


# --- token ------------------------------------------------------------------------------------


def test_authenticates_once_and_sends_the_raw_token_in_apikey():
    a, session, _ = adapter(TOKEN, ok_orders("A"), ok_orders("B"))
    assert [o.id for o in a.fetch_order_statuses(["A"]).orders] == ["A"]
    assert [o.id for o in a.fetch_order_statuses(["B"]).orders] == ["B"]
    auth, first, second = session.calls
    assert auth["url"] == "/api/authToken"
    assert auth["params"] == {"username": "u", "password": "p"}
    assert "apiKey" not in auth["headers"]
    assert first["headers"]["apiKey"] == second["headers"]["apiKey"] == "tok-1"


def test_a_401_authenticates_again_once_and_repeats_the_call():
    token2 = response(body={"status": "SUCCESS", "accessToken": "tok-2"})
    a, session, slept = adapter(TOKEN, response(401, {"status": "FAILED"}), token2, ok_orders("A"))
    assert [o.id for o in a.fetch_order_statuses(["A"]).orders] == ["A"]
    assert session.calls[-1]["headers"]["apiKey"] == "tok-2"
    assert a.stats.reauthentications == 1 and a.stats.retries == 0 and slept == []


def test_a_second_401_right_after_re_authenticating_is_an_auth_error():
    token2 = response(body={"status": "SUCCESS", "accessToken": "tok-2"})
    a, _, _ = adapter(TOKEN, response(401, {}), token2, response(401, {}))
    with pytest.raises(ChannelAuthError, match="Channel FK: get order status.*401 again"):
        a.fetch_order_statuses(["A"])


@pytest.mark.parametrize(
    "reply",
    [response(body={"status": "FAILED"}), response(401, {"status": "FAILED", "error": "bad"})],
    ids=["status FAILED", "HTTP 401"],
)
def test_refused_credentials_are_an_auth_error_naming_the_channel(reply):
    a, _, _ = adapter(reply)
    with pytest.raises(ChannelAuthError, match="Channel FK: authentication failed"):
        a.fetch_order_statuses(["A"])


# --- retries ----------------------------------------------------------------------------------


def test_5xx_and_timeouts_are_retried_with_exponential_back_off():
    a, _, slept = adapter(
        TOKEN,
        response(500, {}),
        TIMEOUT,
        response(503, {}),
        ok_orders("A"),
        max_attempts=4,
        retry_base_delay=0.5,
    )
    assert [o.id for o in a.fetch_order_statuses(["A"]).orders] == ["A"]
    assert slept == [0.5, 1.0, 2.0]  # base × 2^(n-1), jitter fixed at its maximum here
    assert a.stats.retries == 3
    assert a.stats.retry_reasons == ["HTTP 500", "timeout after 30 s", "HTTP 503"]
    assert "3 request(s) retried (HTTP 500, timeout after 30 s, HTTP 503)" in a.stats.summary()


def test_jitter_spreads_the_back_off_between_half_and_all_of_it():
    a, _, _ = adapter(retry_base_delay=2.0)
    a.jitter = lambda: 0.0
    assert a._backoff(3, None) == 4.0  # half of 2 × 2^2
    a.jitter = lambda: 0.5
    assert a._backoff(3, None) == 6.0
    a.jitter = lambda: 1.0
    assert a._backoff(30, None) == 60.0  # capped


def test_429_waits_at_least_retry_after():
    a, _, slept = adapter(
        TOKEN, response(429, {}, {"Retry-After": "7"}), ok_orders("A"), retry_base_delay=0.1
    )
    a.fetch_order_statuses(["A"])
    assert slept == [7.0]
    assert a.stats.retry_reasons == ["HTTP 429"]


def test_retry_after_as_seconds_or_an_http_date():
    now = datetime(2026, 11, 2, 10, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=12), usegmt=True)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(later, now=now.timestamp()) == pytest.approx(12.0)
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_retry_after_longer_than_the_run_waits_gives_up_at_once():
    a, _, slept = adapter(TOKEN, response(429, {}, {"Retry-After": "3600"}))
    with pytest.raises(ChannelUnavailable, match="asks to wait 3600 s"):
        a.fetch_order_statuses(["A"])
    assert slept == []


def test_giving_up_names_the_channel_the_call_the_attempts_and_the_last_problem():
    a, session, slept = adapter(TOKEN, *[DROPPED] * 4, max_attempts=3)
    with pytest.raises(ChannelUnavailable) as exc:
        a.fetch_order_statuses(["A", "B"])
    assert str(exc.value) == (
        "Channel FK: get order status (2 orders from A): gave up after 3 attempts, "
        "last: connection error (ConnectionResetError)"
    )
    # the first drop, on the kept-alive connection, was reopened and sent again at once
    assert len(session.calls) == 5 and len(slept) == 2 and session.connects == 4


def test_a_kept_alive_connection_the_channel_closed_is_reopened_within_the_request():
    a, session, slept = adapter(TOKEN, DROPPED, ok_orders("A"))
    assert [o.id for o in a.fetch_order_statuses(["A"]).orders] == ["A"]
    assert session.connects == 2 and slept == [] and a.stats.retries == 0
    assert [c["url"] for c in session.calls] == ["/api/authToken"] + ["/api/orders"] * 2


def test_other_4xx_are_not_retried_and_fail_only_their_orders():
    reply_400 = response(400, raw=b"orderIds: 60 ids, more than pageSize")
    a, session, slept = adapter(TOKEN, reply_400, ok_orders("B"), status_batch_size=1)
    reply = a.fetch_order_statuses(["A", "B"])
    assert [o.id for o in reply.orders] == ["B"]
    assert reply.unanswered == {
        "A": "Channel FK: get order status (1 orders from A): the channel refused the request "
        "with HTTP 400: orderIds: 60 ids, more than pageSize"
    }
    assert len(session.calls) == 3 and slept == []


# --- malformed replies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"<html><body>Service busy</body></html>", "not JSON: '<html><body>Service busy"),
        (b'[{"unexpected": "shape"}]', 'expected {"orders": [...]}, got [{\'unexpected'),
        (b'{"orders": [{"id": "', "not JSON"),
        (b"", "the body is empty"),
        (b'{"orders": {"id": "A"}}', 'expected {"orders": [...]}'),
    ],
    ids=["html", "wrong shape", "truncated", "empty", "orders not a list"],
)
def test_a_malformed_reply_is_a_clear_error_for_its_orders_only(raw, message):
    a, _, slept = adapter(TOKEN, response(200, raw=raw), ok_orders("B"), status_batch_size=1)
    reply = a.fetch_order_statuses(["A", "B"])
    assert [o.id for o in reply.orders] == ["B"]
    assert message in reply.unanswered["A"]
    assert reply.unanswered["A"].startswith("Channel FK: get order status (1 orders from A)")
    assert slept == []  # permanent for this request: not retried


def test_a_malformed_page_stops_the_order_pull():
    a, _, _ = adapter(TOKEN, response(200, raw=b"<html>busy</html>"))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ChannelReplyError, match=r"get orders \(page 1\): malformed reply"):
        list(a.fetch_orders(start, start + timedelta(days=1), ["CREATED"]))


def test_a_bad_order_is_a_problem_of_that_order_only():
    good = channel_order("A", [("A-1", "TSHIRT", 2)])
    bad_quantity = channel_order("B", [("B-1", "TSHIRT", 1)])
    bad_quantity["orderItems"][0]["quantity"] = "two"
    bad_status = channel_order("C", [("C-1", "TSHIRT", 1)], status="LOST")
    a, _, _ = adapter(TOKEN, response(body={"orders": [good, bad_quantity, bad_status, "junk"]}))
    reply = a.fetch_order_statuses(["A", "B", "C"])
    assert [o.id for o in reply.orders] == ["A"]
    assert reply.orders[0].items[0].quantity == 2
    assert reply.problems == [
        ("B", "Channel FK: order B item B-1: quantity must be a whole number, got 'two'"),
        (
            "C",
            "Channel FK: order C item C-1: status 'LOST' is not one of CREATED, CANCELLED, "
            "DISPATCHED, DELIVERED, RETURN_REQUESTED, COURIER_RETURN",
        ),
        ("#4", "Channel FK: an order must be an object, got 'junk'"),
    ]


def test_order_fields_are_read_with_their_types():
    raw = channel_order("A", [("A-1", "TSHIRT", 3)], status="CANCELLED", payment="COD")
    raw["orderItems"][0].update(cancelledQuantity=1, trackingNumber="AWB9", courierName="ECOM")
    a, _, _ = adapter(TOKEN, response(body={"orders": [raw]}))
    order = a.fetch_order_statuses(["A"]).orders[0]
    line = order.items[0]
    assert (order.payment_type, order.order_date.utcoffset()) == ("COD", timedelta(hours=5.5))
    assert (line.quantity, line.cancelled_quantity, line.open_quantity) == (3, 1, 2)
    assert (line.tracking_number, line.courier_name, str(line.selling_price)) == (
        "AWB9",
        "ECOM",
        "499.00",
    )
    assert order.shipping_address["pincode"] == "560001"


# --- paging and batching ---------------------------------------------------------------------


def test_order_pull_pages_until_a_short_page_with_dates_and_statuses():
    start = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    a, session, _ = adapter(
        TOKEN, ok_orders("A", "B"), ok_orders("C", "D"), ok_orders("E"), page_size=2
    )
    pages = list(
        a.fetch_orders(start, start + timedelta(days=1), ["CREATED", "PENDING_VERIFICATION"])
    )
    assert [[o.id for o in p.orders] for p in pages] == [["A", "B"], ["C", "D"], ["E"]]
    params = [c["params"] for c in session.calls[1:]]
    assert [p["pageNumber"] for p in params] == ["1", "2", "3"]
    assert params[0] == {
        "pageSize": "2",
        "pageNumber": "1",
        "orderDateFrom": "2026-11-01T10:00:00+00:00",
        "orderDateTo": "2026-11-02T10:00:00+00:00",
        "orderStatus": "CREATED,PENDING_VERIFICATION",
    }


def test_status_queries_go_in_batches_of_the_channel_setting():
    a, session, _ = adapter(TOKEN, ok_orders("A", "B"), ok_orders("C"), status_batch_size=2)
    reply = a.fetch_order_statuses(["A", "B", "C"])
    assert [o.id for o in reply.orders] == ["A", "B", "C"]
    assert [c["params"]["orderIds"] for c in session.calls[1:]] == ["A,B", "C"]
    assert all(c["params"]["pageSize"] == "2" for c in session.calls[1:])


def test_an_order_the_channel_adds_unasked_is_ignored():
    a, _, _ = adapter(TOKEN, ok_orders("A", "Z"))
    assert [o.id for o in a.fetch_order_statuses(["A"]).orders] == ["A"]


def test_pushes_parse_the_outcome_and_send_the_idempotency_key():
    reply = {
        "status": "PARTIAL_SUCCESS",
        "orderItems": [{"orderItemId": "A-1", "errorMessage": "unknown"}],
        "error": "A-1: unknown",
    }
    a, session, _ = adapter(TOKEN, response(body=reply), response(body={"status": "MAYBE"}))
    out = a.post_status_notification("A/1", [{"orderItemId": "A-1"}], key="k-1")
    assert (out.ok, out.status, out.failed) == (False, "PARTIAL_SUCCESS", (("A-1", "unknown"),))
    assert session.calls[1]["url"] == "/api/order/A%2F1"
    assert session.calls[1]["headers"]["Idempotency-Key"] == "k-1"
    assert json.loads(session.calls[1]["data"]) == {"orderItems": [{"orderItemId": "A-1"}]}
    with pytest.raises(ChannelReplyError, match="malformed reply to .*cancel"):
        a.post_cancel({"orderId": "A", "orderItems": []})


# --- one try (the notification outbox) ---------------------------------------------------------


def test_one_try_returns_the_reply_whatever_its_status_and_never_sleeps():
    a, session, slept = adapter(
        TOKEN,
        response(503, {"status": "FAILED"}, {"Retry-After": "7"}),
        response(400, raw=b"no such order"),
        TIMEOUT,
        response(body={"status": "SUCCESS"}),
    )
    push = [STATUS_PUSH, "A/1", {"orderItems": [{"orderItemId": "A-1"}]}, "k-1"]
    busy, refused, timeout, ok = (a.push_once(*push) for _ in range(4))
    assert (busy.status, busy.error, busy.transient, busy.retry_after) == (503, "HTTP 503", True, 7)
    assert (refused.status, refused.transient, refused.text) == (400, False, "no such order")
    assert refused.error == (
        "Channel FK: status notification for order A/1: the channel refused the request with "
        "HTTP 400: no such order"
    )
    assert (timeout.status, timeout.error, timeout.transient) == (None, "timeout after 30 s", True)
    assert (ok.ok, ok.status, json.loads(ok.text)) == (True, 200, {"status": "SUCCESS"})
    assert slept == [] and a.stats.retries == 0
    assert [c["url"] for c in session.calls] == ["/api/authToken"] + ["/api/order/A%2F1"] * 4
    assert {c["headers"]["Idempotency-Key"] for c in session.calls[1:]} == {"k-1"}


def test_one_try_authenticates_again_once_after_a_401():
    token2 = response(body={"status": "SUCCESS", "accessToken": "tok-2"})
    a, session, _ = adapter(TOKEN, response(401, {}), token2, response(body={"status": "SUCCESS"}))
    assert a.push_once(STATUS_PUSH, "A", {"orderItems": []}, "k").ok
    assert [c["headers"].get("apiKey") for c in session.calls] == [None, "tok-1", None, "tok-2"]
    assert a.stats.reauthentications == 1

    b, _, _ = adapter(TOKEN, response(401, {}), token2, response(401, {}))
    again = b.push_once(STATUS_PUSH, "A", {"orderItems": []}, "k")
    assert (again.status, again.transient) == (401, False)
    assert again.error.endswith("HTTP 401 again right after re-authenticating")


def test_one_try_raises_when_it_cannot_authenticate_saying_whether_that_may_pass():
    a, _, slept = adapter(response(502, {}))
    with pytest.raises(ChannelUnavailable, match="Channel FK: authentication: HTTP 502"):
        a.push_once(STATUS_PUSH, "A", {"orderItems": []}, "k")
    b, _, _ = adapter(response(body={"status": "FAILED"}))
    with pytest.raises(ChannelAuthError, match="refused the username or password"):
        b.push_once(STATUS_PUSH, "A", {"orderItems": []}, "k")
    assert slept == []


def test_a_retried_call_retries_its_authentication_within_its_attempts():
    a, session, slept = adapter(response(503, {}), TIMEOUT, TOKEN, ok_orders("A"))
    assert [o.id for o in a.fetch_order_statuses(["A"]).orders] == ["A"]
    assert len(session.calls) == 4 and len(slept) == 2
    assert a.stats.retry_reasons == [
        "Channel FK: authentication: HTTP 503",
        "Channel FK: authentication: timeout after 30 s",
    ]


def test_a_channel_without_base_url_is_refused_clearly():
    with pytest.raises(ChannelError, match="Channel FK: no base URL"):
        adapter(base_url="")


# --- the registry: a new channel type is a new adapter class ------------------------------------


def test_channel_types_and_presets_come_from_the_adapter_classes(db):
    assert {t for t, _ in channel_types()} == set(ChannelType.values)
    assert channel_types()[0] == ("CUSTOM", "Custom")
    amazon = Channel(code="AMZ", name="Amazon", channel_type="AMAZON")
    amazon.apply_preset()
    assert amazon.supports_status_sync and amazon.status_sync_channel_shipped_only
    flipkart = Channel(code="FK", name="Flipkart", channel_type="FLIPKART")
    flipkart.apply_preset()
    assert flipkart.supports_status_sync and not flipkart.status_sync_channel_shipped_only


def test_a_new_channel_type_needs_only_a_new_adapter_class(db):
    class MeeshoAdapter(HttpChannelAdapter):
        channel_type = "MEESHO"
        label = "Meesho"
        preset: ClassVar = {**HttpChannelAdapter.preset, "supports_status_sync": False}

    try:
        assert ("MEESHO", "Meesho") in channel_types()
        channel = Channel(
            code="MS", name="Meesho", channel_type="MEESHO", base_url="https://meesho.example.com"
        )
        channel.full_clean()  # the type is a valid choice without any migration
        channel.apply_preset()
        assert channel.supports_status_sync is False
        assert adapter_class("MEESHO") is MeeshoAdapter
    finally:
        del _REGISTRY["MEESHO"]
    with pytest.raises(ChannelError, match="No adapter for channel type 'MEESHO'"):
        adapter_class("MEESHO")


def test_pull_statuses_are_checked(db):
    channel = Channel(code="X", name="X", pull_statuses="CREATED, SHIPPED")
    with pytest.raises(Exception, match="unknown channel order status SHIPPED"):
        channel.full_clean()


# --- over HTTP, against the simulator ---------------------------------------------------------


def test_adapters_are_pooled_per_channel_until_its_settings_change(world, sim):
    channel = point_at(world.channel, sim)
    first = adapter_for(channel)
    assert adapter_for(channel) is first
    channel.status_batch_size = 7
    second = adapter_for(channel)
    assert second is not first and second.config.status_batch_size == 7


def test_against_the_simulator_token_expiry_and_faults(world, sim):
    channel = point_at(world.channel, sim, status_batch_size=2)
    sim.store.put_orders(
        "FLIPKART", [channel_order(i, [(f"{i}-1", "TSHIRT", 1)]) for i in ("A", "B", "C")]
    )
    a = adapter_for(channel)
    assert [o.id for o in a.fetch_order_statuses(["A", "B", "C", "NOPE"]).orders] == ["A", "B", "C"]
    sim.store.expire_tokens("FLIPKART")
    sim.store.add_fault({"kind": "error", "status": 502, "path": "/orders", "count": 1})
    sim.store.add_fault({"kind": "rate_limit", "retryAfter": 0, "path": "/orders", "count": 1})
    assert [o.id for o in a.fetch_order_statuses(["C"]).orders] == ["C"]
    stats = a.take_stats()
    assert (stats.reauthentications, stats.retries) == (1, 2)
    statuses = [r["status"] for r in sim.store.requests("FLIPKART")]
    # the 502 and the 429 come before the channel looks at the (expired) token
    assert statuses[-5:] == [502, 429, 401, 200, 200]


def test_a_timeout_against_the_simulator_is_retried(world, sim):
    channel = point_at(world.channel, sim, request_timeout=0.3)
    sim.store.put_orders("FLIPKART", [channel_order("A", [("A-1", "TSHIRT", 1)])])
    sim.store.add_fault({"kind": "slow", "delay": 1.0, "path": "/orders", "count": 1})
    a = adapter_for(channel)
    assert [o.id for o in a.fetch_order_statuses(["A"]).orders] == ["A"]
    assert a.take_stats().retry_reasons == ["timeout after 0.3 s"]
