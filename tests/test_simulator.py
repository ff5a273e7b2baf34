"""The channel simulator over real HTTP on loopback (no database: it is not a Django app)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from simulator import SimulatorServer, StateFileError, Store, format_updated, parse_updated

ROOT = Path(__file__).resolve().parents[1]
UPDATED = "Mar 8, 2026 7:12:31 PM"


@pytest.fixture
def sim():
    with SimulatorServer(port=0) as server:
        server.store.add_channel("FLIPKART", "user", "pass")
        server.store.add_channel("AMAZON", "amz", "secret")
        yield server


class Client:
    """Just enough of a contract client to drive the simulator from the tests."""

    def __init__(self, sim: SimulatorServer, code: str = "FLIPKART", login=("user", "pass")):
        self.sim, self.base, self.login = sim, sim.channel_url(code), login
        self.http = requests.Session()
        self.token = None

    def auth(self) -> str:
        reply = self.http.get(
            f"{self.base}/authToken", params={"username": self.login[0], "password": self.login[1]}
        )
        assert reply.json()["status"] == "SUCCESS", reply.text
        self.token = reply.json()["accessToken"]
        return self.token

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(
            f"{self.base}{path}", params=params, headers={"apiKey": self.token}, timeout=5
        )

    def post(self, path: str, body, **headers) -> requests.Response:
        return self.http.post(
            f"{self.base}{path}", json=body, headers={"apiKey": self.token, **headers}, timeout=5
        )

    def status_query(self, *ids: str, page_size: int = 50) -> list[dict]:
        reply = self.get("/orders", pageSize=page_size, pageNumber=1, orderIds=",".join(ids))
        assert reply.status_code == 200, reply.text
        return reply.json()["orders"]

    def control(self, method: str, path: str, body=None) -> requests.Response:
        return self.http.request(method, f"{self.sim.url}/_control{path}", json=body, timeout=5)


@pytest.fixture
def client(sim):
    client = Client(sim)
    client.auth()
    return client


def order(order_id: str, date: str = "2026-11-02T16:13:44+05:30", *lines, **extra) -> dict:
    """An order in the contract's shape; lines are (orderItemId, sku, quantity)."""
    lines = lines or ((f"{order_id}-1", "TSHIRT-RED", 1),)
    return {
        "id": order_id,
        "orderDate": date,
        "orderItems": [{"orderItemId": i, "sku": s, "quantity": q} for i, s, q in lines],
        **extra,
    }


def entry(item_id: str, status: str = "DISPATCHED", **fields) -> dict:
    return {
        "orderItemId": item_id,
        "status": status,
        "IsReverse": False,
        "courier_status": "",
        "updated": UPDATED,
        **fields,
    }


# -- authentication ----------------------------------------------------------------------


def test_auth_gives_a_token_that_every_call_needs(sim):
    client = Client(sim)
    assert client.get("/orders").status_code == 401  # no apiKey
    token = client.auth()
    assert len(token) == 32
    assert client.get("/orders").status_code == 200
    amazon = Client(sim, "AMAZON", ("amz", "secret"))
    amazon.token = token  # a FLIPKART token is no good on AMAZON
    reply = amazon.get("/orders")
    assert reply.status_code == 401 and "AMAZON" in reply.json()["error"]


def test_bad_credentials_fail_in_the_body_or_with_401(sim):
    reply = requests.get(
        f"{sim.channel_url('FLIPKART')}/authToken", params={"username": "user", "password": "x"}
    )
    assert (reply.status_code, reply.json()["status"]) == (200, "FAILED")
    sim.store.add_channel("PAYTM", "u", "p", auth_failure="http")
    reply = requests.get(f"{sim.channel_url('PAYTM')}/authToken", params={"username": "u"})
    assert (reply.status_code, reply.json()["status"]) == (401, "FAILED")


def test_token_expires_after_its_ttl_and_a_new_one_works(sim):
    sim.store.add_channel("PAYTM", "u", "p", token_ttl=0.3)
    client = Client(sim, "PAYTM", ("u", "p"))
    client.auth()
    assert client.get("/orders").status_code == 200
    time.sleep(0.35)
    reply = client.get("/orders")
    assert (reply.status_code, reply.json()["error"]) == (401, "token expired")
    client.auth()
    assert client.get("/orders").status_code == 200


def test_control_can_expire_tokens_at_once(sim, client):
    assert client.control("POST", "/channels/FLIPKART/expire-tokens").json() == {"expired": 1}
    assert client.get("/orders").status_code == 401


# -- order pull and status query -----------------------------------------------------------


def test_order_pull_pages_by_order_date_until_a_short_page(sim, client):
    dates = [f"2026-11-0{d}T10:00:00+05:30" for d in (5, 1, 7, 3, 2, 6, 4)]
    sim.store.put_orders("FLIPKART", [order(f"FK-{n}", d) for n, d in enumerate(dates)])
    pages = []
    for number in range(1, 5):
        pages.append(client.get("/orders", pageSize=3, pageNumber=number).json()["orders"])
        if len(pages[-1]) < 3:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    pulled = [o["orderDate"][:10] for page in pages for o in page]
    assert pulled == sorted(d[:10] for d in dates)
    assert client.get("/orders", pageSize=3, pageNumber=4).json()["orders"] == []


def test_order_pull_date_window_is_inclusive_and_offset_aware(sim, client):
    sim.store.put_orders(
        "FLIPKART",
        [
            order("FK-10", "2026-11-02T10:00:00+05:30"),
            order("FK-11", "2026-11-02T11:00:00+05:30"),
            order("FK-12", "2026-11-02T12:00:00+05:30"),
        ],
    )
    reply = client.get(
        "/orders",
        pageSize=50,
        orderDateFrom="2026-11-02T04:30:00+00:00",  # 10:00 in India
        orderDateTo="2026-11-02T11:00:00+05:30",
    )
    assert [o["id"] for o in reply.json()["orders"]] == ["FK-10", "FK-11"]
    naive = client.get("/orders", pageSize=50, orderDateFrom="2026-11-02T10:00:00")
    assert naive.status_code == 400 and "no UTC offset" in naive.json()["error"]
    unencoded = client.http.get(
        f"{client.base}/orders?pageSize=5&orderDateFrom=2026-11-02T10:00:00+05:30",
        headers={"apiKey": client.token},
    )
    assert unencoded.status_code == 400 and "%2B" in unencoded.json()["error"]


def test_order_pull_filters_on_order_status(sim, client):
    sim.store.put_orders(
        "FLIPKART",
        [
            order("FK-1", orderStatus="PENDING_VERIFICATION"),
            order("FK-2"),
            order("FK-3", "2026-11-02T16:13:44+05:30", ("FK-3-1", "X", 1), orderStatus="CANCELLED"),
        ],
    )
    reply = client.get("/orders", pageSize=50, orderStatus="CREATED,PENDING_VERIFICATION")
    assert sorted(o["id"] for o in reply.json()["orders"]) == ["FK-1", "FK-2"]
    second = client.get("/orders", pageSize=1, pageNumber=2, orderStatus="CREATED,CANCELLED")
    assert [o["id"] for o in second.json()["orders"]] == ["FK-3"]
    bad = client.get("/orders", pageSize=50, orderStatus="SHIPPED")
    assert bad.status_code == 400 and "orderStatus" in bad.json()["error"]


def test_status_query_returns_known_ids_and_refuses_more_than_page_size(sim, client):
    sim.store.put_orders("FLIPKART", [order("FK-1"), order("FK-2"), order("FK-3")])
    assert [o["id"] for o in client.status_query("FK-3", "NOPE", "FK-1")] == ["FK-3", "FK-1"]
    reply = client.get("/orders", pageSize=3, pageNumber=1, orderIds="FK-1,FK-2,FK-3,FK-4")
    assert reply.status_code == 400 and "more than pageSize 3" in reply.json()["error"]


def test_orders_have_exactly_the_contract_shape(sim, client):
    sim.store.generate_orders("FLIPKART", 1, ["TSHIRT-RED"], seed=3)
    (pulled,) = client.get("/orders", pageSize=5).json()["orders"]
    assert set(pulled) == {
        "id",
        "orderDate",
        "orderStatus",
        "paymentType",
        "thirdPartyShipping",
        "currency",
        "orderItems",
        "shippingAddress",
        "billingAddress",
    }
    assert set(pulled["orderItems"][0]) == {
        "orderItemId",
        "sku",
        "productId",
        "variantId",
        "title",
        "quantity",
        "sellingPrice",
        "shippingCharges",
        "status",
        "updated",
        "courierName",
        "trackingNumber",
        "returnReason",
        "returnDate",
        "returnAWB",
        "returnShippingProvider",
    }
    assert set(pulled["billingAddress"]) == set(pulled["shippingAddress"]) >= {"pincode", "phone"}
    assert datetime.fromisoformat(pulled["orderDate"]).utcoffset() is not None
    assert pulled["orderItems"][0]["sellingPrice"].count(".") == 1


def test_generated_orders_repeat_with_the_same_seed():
    window = {"date_from": "2026-11-01T00:00:00+05:30", "date_to": "2026-11-02T00:00:00+05:30"}
    stores = [Store(), Store()]
    for store in stores:
        store.add_channel("FLIPKART")
        store.generate_orders("FLIPKART", 5, seed=42, **window)
    assert stores[0].all_orders("FLIPKART") == stores[1].all_orders("FLIPKART")
    assert [o["id"] for o in stores[0].all_orders("FLIPKART")][:2] == [
        "FLIPKART-1001",
        "FLIPKART-1002",
    ]


# -- status changes through the control API ---------------------------------------------


def test_status_changes_through_control_show_in_the_status_query(sim, client):
    sim.store.put_orders(
        "FLIPKART",
        [
            order("FK-1"),
            order("FK-2", "2026-11-02T16:13:44+05:30", ("FK-2-1", "A", 2), ("FK-2-2", "B", 1)),
        ],
    )
    reply = client.control(
        "POST",
        "/channels/FLIPKART/orders/FK-1/items/FK-1-1/status",
        {"status": "DISPATCHED", "courierName": "BLUEDART", "trackingNumber": "BD123"},
    )
    assert reply.status_code == 200, reply.text
    client.control(
        "POST",
        "/channels/FLIPKART/orders/FK-2/items/FK-2-1/status",
        {"status": "CANCELLED", "cancelledQuantity": 1},
    )
    fk1, fk2 = client.status_query("FK-1", "FK-2")
    item = fk1["orderItems"][0]
    assert (item["status"], item["courierName"], item["trackingNumber"]) == (
        "DISPATCHED",
        "BLUEDART",
        "BD123",
    )
    assert item["updated"] != "2026-11-02T16:13:44+05:30"
    assert datetime.fromisoformat(item["updated"]).utcoffset() is not None
    assert fk1["orderStatus"] == "COMPLETE"
    assert fk2["orderItems"][0]["status"] == "CANCELLED"
    assert fk2["orderItems"][0]["cancelledQuantity"] == 1
    assert fk2["orderStatus"] == "CREATED"  # one unit of FK-2-1 and the line FK-2-2 are open
    client.control(
        "POST", "/channels/FLIPKART/orders/FK-2/status", {"status": "DISPATCHED"}
    )  # the rest ships: the cancelled unit stays cancelled
    (fk2,) = client.status_query("FK-2")
    assert [(i["status"], i.get("cancelledQuantity")) for i in fk2["orderItems"]] == [
        ("DISPATCHED", 1),
        ("DISPATCHED", None),
    ]
    assert fk2["orderStatus"] == "COMPLETE"

    client.control(
        "POST",
        "/channels/FLIPKART/orders/FK-1/items/FK-1-1/status",
        {"status": "COURIER_RETURN", "returnAWB": "R-1", "returnShippingProvider": "BLUEDART"},
    )
    (fk1,) = client.status_query("FK-1")
    item = fk1["orderItems"][0]
    assert (item["status"], item["returnAWB"], item["courierName"]) == (
        "COURIER_RETURN",
        "R-1",
        "BLUEDART",
    )
    assert item["returnDate"]


def test_bulk_status_change_and_its_errors(sim, client):
    sim.store.put_orders("FLIPKART", [order("FK-1"), order("FK-2")])
    reply = client.control(
        "POST",
        "/channels/FLIPKART/status-changes",
        {"orderIds": ["FK-1", "FK-2"], "status": "DELIVERED"},
    )
    assert reply.json()["changed"] == 2
    assert {o["orderItems"][0]["status"] for o in client.status_query("FK-1", "FK-2")} == {
        "DELIVERED"
    }

    bad = client.control(
        "POST", "/channels/FLIPKART/orders/FK-1/items/FK-1-1/status", {"status": "LOST"}
    )
    assert bad.status_code == 400 and "order FK-1 item FK-1-1: status" in bad.json()["error"]
    too_many = client.control(
        "POST",
        "/channels/FLIPKART/orders/FK-1/items/FK-1-1/status",
        {"status": "CANCELLED", "cancelledQuantity": 5},
    )
    assert too_many.status_code == 400 and "cancelledQuantity" in too_many.json()["error"]
    # all or nothing: FK-1 is not changed when FK-404 is unknown
    missing = client.control(
        "POST",
        "/channels/FLIPKART/status-changes",
        {
            "changes": [
                {"orderId": "FK-1", "status": "CREATED"},
                {"orderId": "FK-404", "status": "CREATED"},
            ]
        },
    )
    assert missing.status_code == 404
    assert client.status_query("FK-1")[0]["orderItems"][0]["status"] == "DELIVERED"


def test_control_rejects_orders_of_the_wrong_shape(sim, client):
    bad_date = client.control(
        "POST", "/channels/FLIPKART/orders", order("FK-1", "2026-11-02T16:13:44")
    )
    assert bad_date.status_code == 400 and "order FK-1: orderDate" in bad_date.json()["error"]
    sim.store.put_orders("FLIPKART", [order("FK-1")])
    clash = client.control(
        "POST",
        "/channels/FLIPKART/orders",
        order("FK-2", "2026-11-02T16:13:44+05:30", ("FK-1-1", "X", 1)),
    )
    assert clash.status_code == 400 and "already belongs to order FK-1" in clash.json()["error"]
    assert client.control("GET", "/channels/NOPE/orders").status_code == 404


def test_order_status_follows_its_units():
    store = Store()
    store.add_channel("FLIPKART")
    store.put_orders(
        "FLIPKART",
        [
            order("FK-1", "2026-11-02T16:13:44+05:30", ("FK-1-1", "A", 2), ("FK-1-2", "B", 1)),
            order("FK-2", orderStatus="PENDING_VERIFICATION"),
        ],
    )
    assert store.set_item_status("FLIPKART", "FK-1", "FK-1-2", "CANCELLED")["orderStatus"] == (
        "CREATED"
    )
    assert store.set_item_status("FLIPKART", "FK-1", "FK-1-1", "CANCELLED")["orderStatus"] == (
        "CANCELLED"
    )
    reopened = store.set_item_status("FLIPKART", "FK-1", "FK-1-1", "CREATED")
    assert reopened["orderStatus"] == "CREATED"
    assert store.get_order("FLIPKART", "FK-2")["orderStatus"] == "PENDING_VERIFICATION"
    verified = store.apply_changes("FLIPKART", [{"orderId": "FK-2", "orderStatus": "CREATED"}])
    assert verified["changed"] == 1
    assert store.get_order("FLIPKART", "FK-2")["orderStatus"] == "CREATED"


# -- status notifications ------------------------------------------------------------------


def test_updated_format_round_trips():
    assert format_updated(datetime(2023, 3, 8, 19, 12, 31)) == "Mar 8, 2023 7:12:31 PM"
    assert format_updated(datetime(2023, 3, 8, 0, 5, 0)) == "Mar 8, 2023 12:05:00 AM"
    assert parse_updated("Mar 8, 2023 12:05:00 AM") == datetime(2023, 3, 8, 0, 5, 0)
    assert parse_updated("Mar 08, 2023 7:12:31 PM") is None  # no leading zero on the day
    assert parse_updated("Feb 30, 2023 7:12:31 PM") is None


def test_good_notification_succeeds_and_is_recorded_with_its_headers(sim, client):
    sim.store.put_orders(
        "FLIPKART", [order("FK-1", "2026-11-02T16:13:44+05:30", ("FK-1-1", "A", 2))]
    )
    body = {"orderItems": [entry("FK-1-1"), entry("FK-1-1")]}  # one entry per unit
    reply = client.post("/order/FK-1", body, **{"Idempotency-Key": "evt-1"})
    assert reply.json() == {"orderItems": [], "status": "SUCCESS", "error": ""}
    (record,) = client.control("GET", "/channels/FLIPKART/received?kind=notifications").json()[
        "notifications"
    ]
    assert record["orderId"] == "FK-1" and record["body"] == body
    assert record["headers"]["Idempotency-Key"] == "evt-1" == record["idempotencyKey"]
    assert record["response"]["status"] == "SUCCESS"


def test_reverse_courier_allocated_entry_carries_the_courier_fields(sim, client):
    sim.store.put_orders("FLIPKART", [order("FK-1")])
    reverse = entry(
        "FK-1-1",
        "COURIER_ALLOCATED",
        IsReverse=True,
        reversePickupCourierName="Delhivery",
        reversePickupCourierCode="DELHIVERY",
        returnAwb="RAWB1",
    )
    assert client.post("/order/FK-1", {"orderItems": [reverse]}).json()["status"] == "SUCCESS"


BAD_ENTRIES = {
    "unknown item": (entry("FK-9-1"), "not in order FK-1"),
    "bad status": (entry("FK-1-2", "TELEPORTED"), "not a forward shipment status"),
    "reverse-only status forward": (entry("FK-1-2", "COURIER_ALLOCATED"), "forward shipment"),
    "forward-only status reverse": (entry("FK-1-2", "PACKED", IsReverse=True), "reverse pickup"),
    "IsReverse not boolean": (entry("FK-1-2", IsReverse="false"), "IsReverse"),
    "updated with leading zeros": (entry("FK-1-2", updated="Mar 08, 2023 07:12:31 PM"), "updated"),
    "updated in ISO": (entry("FK-1-2", updated="2023-03-08T19:12:31+05:30"), "updated"),
    "courier fields on forward": (entry("FK-1-2", returnAwb="R1"), "returnAwb is only sent"),
    "courier fields on reverse CREATED": (
        entry("FK-1-2", "CREATED", IsReverse=True, reversePickupCourierName="X"),
        "reversePickupCourierName",
    ),
}


@pytest.mark.parametrize("case", BAD_ENTRIES)
def test_a_bad_entry_fails_alone_with_its_item_id(sim, client, case):
    sim.store.put_orders(
        "FLIPKART",
        [order("FK-1", "2026-11-02T16:13:44+05:30", ("FK-1-1", "A", 1), ("FK-1-2", "B", 1))],
    )
    bad, message = BAD_ENTRIES[case]
    reply = client.post("/order/FK-1", {"orderItems": [entry("FK-1-1"), bad]}).json()
    assert reply["status"] == "PARTIAL_SUCCESS"
    assert [i["orderItemId"] for i in reply["orderItems"]] == [bad["orderItemId"]]
    assert message in reply["orderItems"][0]["errorMessage"]
    alone = client.post("/order/FK-1", {"orderItems": [bad]}).json()
    assert alone["status"] == "FAILED" and alone["error"]


def test_more_entries_than_units_and_unknown_orders_fail(sim, client):
    sim.store.put_orders("FLIPKART", [order("FK-1")])  # quantity 1
    reply = client.post("/order/FK-1", {"orderItems": [entry("FK-1-1"), entry("FK-1-1")]}).json()
    assert reply["status"] == "PARTIAL_SUCCESS" and "quantity 1" in reply["error"]
    unknown = client.post("/order/FK-404", {"orderItems": [entry("FK-404-1")]}).json()
    assert unknown["status"] == "FAILED" and "FK-404 is unknown" in unknown["error"]
    malformed = client.post("/order/FK-1", {"items": []})
    assert malformed.status_code == 400 and "orderItems" in malformed.json()["error"]
    not_json = client.http.post(
        f"{client.base}/order/FK-1", data="{oops", headers={"apiKey": client.token}
    )
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]
    received = client.control("GET", "/channels/FLIPKART/received").json()["notifications"]
    assert len(received) == 4  # rejected ones are recorded too, with the HTTP status
    assert received[-1]["body"] == "{oops" and received[-1]["response"]["httpStatus"] == 400
    assert "orderItems" in received[-2]["response"]["error"]


def test_a_repeated_idempotency_key_is_recorded_once_and_answered_success(sim, client):
    sim.store.put_orders("FLIPKART", [order("FK-1")])
    body = {"orderItems": [entry("FK-1-1")]}
    replies = [client.post("/order/FK-1", body, **{"Idempotency-Key": "evt-7"}) for _ in range(3)]
    assert [r.json()["status"] for r in replies] == ["SUCCESS"] * 3
    received = client.control("GET", "/channels/FLIPKART/received").json()
    assert len(received["notifications"]) == 1
    assert [d["idempotencyKey"] for d in received["duplicates"]] == ["evt-7", "evt-7"]
    # a key whose delivery failed is not used up: the retry is checked again
    bad = {"orderItems": [entry("FK-1-1", "NOPE")]}
    assert (
        client.post("/order/FK-1", bad, **{"Idempotency-Key": "evt-8"}).json()["status"] == "FAILED"
    )
    assert (
        client.post("/order/FK-1", body, **{"Idempotency-Key": "evt-8"}).json()["status"]
        == "SUCCESS"
    )
    assert len(client.control("GET", "/channels/FLIPKART/received").json()["notifications"]) == 3


def test_concurrent_notifications_are_all_recorded(sim):
    sim.store.generate_orders("FLIPKART", 40, seed=1, items_per_order=(1, 1), quantity=(1, 1))
    ids = [o["id"] for o in sim.store.all_orders("FLIPKART")]
    errors = []

    def send(worker: int) -> None:
        client = Client(sim)
        client.auth()
        for n in range(25):
            order_id = ids[(worker * 25 + n) % len(ids)]
            reply = client.post(
                f"/order/{order_id}",
                {"orderItems": [entry(f"{order_id}-1")]},
                **{"Idempotency-Key": f"w{worker}-{n}"},
            )
            if reply.json()["status"] != "SUCCESS":
                errors.append(reply.text)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    records = sim.store.received("FLIPKART", "notifications")["notifications"]
    assert len(records) == 200 and len({r["seq"] for r in records}) == 200


# -- cancel, dispatch, inventory -----------------------------------------------------------


def test_cancel_dispatch_and_inventory_pushes_are_checked_and_recorded(sim, client):
    sim.store.put_orders(
        "FLIPKART", [order("FK-1", "2026-11-02T16:13:44+05:30", ("FK-1-1", "A", 2))]
    )
    cancel = {
        "orderId": "FK-1",
        "orderItems": [
            {"orderItemId": "FK-1-1", "productId": "P-A", "variantId": "V-A", "quantity": 1}
        ],
    }
    assert client.post("/orders/cancel", cancel).json()["status"] == "SUCCESS"
    cancel["orderItems"][0]["quantity"] = 3
    over = client.post("/orders/cancel", cancel).json()
    assert (
        over["status"] == "FAILED"
        and "exceeds the 2 ordered" in over["orderItems"][0]["errorMessage"]
    )

    shipping = {
        "deliveryPartner": "BLUEDART",
        "dispatchDate": "2026-11-03T10:00:00+05:30",
        "invoiceNumber": "INV/1",
        "invoiceDate": "2026-11-03T09:00:00+05:30",
        "trackingId": "BD1",
    }
    dispatch = {"orderItems": [{"orderItemId": "FK-1-1", "quantity": 2}], "selfShipping": shipping}
    assert client.post("/orders/dispatch", dispatch).json()["status"] == "SUCCESS"
    unknown = client.post(
        "/orders/dispatch", {"orderItems": [{"orderItemId": "ZZ", "quantity": 1}]}
    )
    assert unknown.json()["orderItems"] == [
        {"orderItemId": "ZZ", "errorMessage": "order item 'ZZ' is unknown"}
    ]

    inventory = {
        "inventoryList": [
            {"productId": "P-A", "variantId": "V-A", "inventory": "10", "facilityCode": "WH1"},
            {"productId": "P-B", "variantId": "V-B", "inventory": 4, "facilityCode": "WH1"},
        ]
    }
    reply = client.post("/updateInventory", inventory).json()
    assert reply["status"] == "PARTIAL_SUCCESS"
    assert [p["productId"] for p in reply["failedProductList"]] == ["P-B"]
    received = client.control("GET", "/channels/FLIPKART/received").json()
    assert [len(received[k]) for k in ("cancels", "dispatches", "inventory")] == [2, 2, 1]
    assert received["inventoryLevels"] == [
        {"productId": "P-A", "variantId": "V-A", "facilityCode": "WH1", "inventory": 10}
    ]
    assert received["dispatches"][0]["body"]["selfShipping"]["trackingId"] == "BD1"


# -- fault injection -----------------------------------------------------------------------


def add_fault(client: Client, **rule) -> dict:
    reply = client.control("POST", "/faults", rule)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_fault_http_500_for_the_next_n_requests(sim, client):
    add_fault(client, kind="error", channel="FLIPKART", path="/orders", count=2)
    assert [client.get("/orders").status_code for _ in range(3)] == [500, 500, 200]
    logged = client.control("GET", "/channels/FLIPKART/requests").json()["requests"]
    assert [r["fault"] for r in logged[-3:]] == ["error", "error", None]
    (rule,) = client.control("GET", "/faults").json()["faults"]
    assert (rule["applied"], rule["exhausted"]) == (2, True)


def test_fault_429_carries_retry_after(sim, client):
    add_fault(client, kind="rate_limit", retryAfter=7, count=1)
    reply = client.get("/orders")
    assert (reply.status_code, reply.headers["Retry-After"]) == (429, "7")
    assert client.get("/orders").status_code == 200


def test_fault_slow_reply_delays_and_trips_client_timeouts(sim, client):
    add_fault(client, kind="slow", delay=0.4, count=2, path="/orders")
    started = time.perf_counter()
    assert client.get("/orders").status_code == 200
    assert time.perf_counter() - started >= 0.4
    with pytest.raises(requests.Timeout):
        client.http.get(f"{client.base}/orders", headers={"apiKey": client.token}, timeout=0.1)


@pytest.mark.parametrize(
    "mode, check",
    [
        ("text", lambda r: r.text.startswith("<html>")),
        ("wrong_shape", lambda r: isinstance(r.json(), list)),
        ("truncated", lambda r: r.text.startswith('{"orders"')),
        ("empty", lambda r: r.content == b""),
    ],
)
def test_fault_garbage_replies(sim, client, mode, check):
    add_fault(client, kind="garbage", garbage=mode, count=1)
    reply = client.get("/orders")
    assert reply.status_code == 200 and check(reply)
    if mode != "wrong_shape":
        with pytest.raises(ValueError):  # not JSON at all
            reply.json()
    assert client.get("/orders").json() == {"orders": []}


def test_fault_401_makes_the_client_authenticate_again(sim, client):
    add_fault(client, kind="unauthorized", count=1, path="/orders")
    assert client.get("/orders").status_code == 401
    client.auth()
    assert client.get("/orders").status_code == 200


def test_fault_disconnect_drops_the_connection(sim, client):
    add_fault(client, kind="disconnect", count=1)
    with pytest.raises(requests.ConnectionError):
        client.get("/orders")
    assert client.get("/orders").status_code == 200


def test_fault_fail_items_in_notifications(sim, client):
    sim.store.put_orders(
        "FLIPKART",
        [order("FK-1", "2026-11-02T16:13:44+05:30", ("FK-1-1", "A", 1), ("FK-1-2", "B", 1))],
    )
    body = {"orderItems": [entry("FK-1-1"), entry("FK-1-2")]}
    add_fault(client, kind="fail_items", itemIds=["FK-1-2"], count=1)
    partial = client.post("/order/FK-1", body).json()
    assert partial["status"] == "PARTIAL_SUCCESS"
    assert partial["orderItems"] == [
        {"orderItemId": "FK-1-2", "errorMessage": "item was not able to update (injected)"}
    ]
    add_fault(client, kind="fail_items", path="/order/*", count=1)  # every item
    assert client.post("/order/FK-1", body).json()["status"] == "FAILED"
    assert client.post("/order/FK-1", body).json()["status"] == "SUCCESS"


def test_fault_with_probability_and_seed_repeats_exactly():
    patterns = []
    for _ in range(2):
        with SimulatorServer(port=0) as server:
            server.store.add_channel("FLIPKART")
            server.store.add_fault(
                {"kind": "error", "path": "/orders", "probability": 0.5, "seed": 11}
            )
            client = Client(server)
            client.auth()
            patterns.append([client.get("/orders").status_code for _ in range(20)])
    assert patterns[0] == patterns[1]
    assert {500, 200} == set(patterns[0])


def test_fault_scope_channel_path_and_after(sim, client):
    amazon = Client(sim, "AMAZON", ("amz", "secret"))
    amazon.auth()
    add_fault(client, kind="error", channel="AMAZON")
    assert client.get("/orders").status_code == 200
    assert amazon.get("/orders").status_code == 500
    client.control("DELETE", "/faults?channel=AMAZON")
    assert amazon.get("/orders").status_code == 200

    add_fault(client, kind="error", path="/order/*", count=5)  # global, notifications only
    assert client.get("/orders").status_code == 200
    assert client.post("/order/FK-1", {"orderItems": [entry("X")]}).status_code == 500
    assert amazon.post("/order/A-1", {"orderItems": [entry("X")]}).status_code == 500
    client.control("DELETE", "/faults")

    add_fault(client, kind="error", method="GET", path="/orders", after=2, count=1)
    assert [client.get("/orders").status_code for _ in range(4)] == [200, 200, 500, 200]


def test_fault_after_processing_records_the_call_but_loses_the_reply(sim, client):
    sim.store.put_orders("FLIPKART", [order("FK-1")])
    add_fault(client, kind="error", status=503, path="/order/*", count=1, apply="after")
    body = {"orderItems": [entry("FK-1-1")]}
    assert client.post("/order/FK-1", body, **{"Idempotency-Key": "k1"}).status_code == 503
    retry = client.post("/order/FK-1", body, **{"Idempotency-Key": "k1"})
    assert retry.json()["status"] == "SUCCESS"
    received = sim.store.received("FLIPKART")
    assert (len(received["notifications"]), len(received["duplicates"])) == (1, 1)


def test_bad_fault_rules_are_refused_with_the_field(client):
    assert "fault.kind" in client.control("POST", "/faults", {"kind": "meteor"}).json()["error"]
    reply = client.control("POST", "/faults", {"kind": "error", "probability": 2})
    assert "fault.probability" in reply.json()["error"]
    assert (
        "colour"
        in client.control("POST", "/faults", {"kind": "error", "colour": 1}).json()["error"]
    )
    assert (
        client.control("POST", "/faults", {"kind": "error", "channel": "NOPE"}).status_code == 404
    )


# -- persistence, page, command ----------------------------------------------------------


def test_state_is_saved_to_json_and_loaded_back(tmp_path):
    state = tmp_path / "sim.json"
    with SimulatorServer(port=0, state_path=str(state)) as server:
        server.store.add_channel("FLIPKART", "user", "pass")
        server.store.generate_orders("FLIPKART", 3, seed=5)
        first = server.store.all_orders("FLIPKART")[0]["id"]
        server.store.set_item_status("FLIPKART", first, None, "DISPATCHED", trackingNumber="T1")
        client = Client(server)
        client.auth()
        item = server.store.all_orders("FLIPKART")[0]["orderItems"][0]["orderItemId"]
        body = {"orderItems": [entry(item)]}
        assert (
            client.post(f"/order/{first}", body, **{"Idempotency-Key": "p1"}).json()["status"]
            == "SUCCESS"
        )
        before = server.store.all_orders("FLIPKART")
    saved = json.loads(state.read_text())
    assert saved["version"] == 1 and saved["channels"][0]["code"] == "FLIPKART"

    with SimulatorServer(port=0, state_path=str(state)) as server:
        assert server.store.all_orders("FLIPKART") == before
        assert len(server.store.received("FLIPKART")["notifications"]) == 1
        client = Client(server)
        client.auth()  # credentials came back too; tokens did not need to
        assert client.status_query(first)[0]["orderItems"][0]["trackingNumber"] == "T1"
        # the idempotency key is still known after the restart
        client.post(f"/order/{first}", body, **{"Idempotency-Key": "p1"})
        assert len(server.store.received("FLIPKART")["duplicates"]) == 1
        new_ids = server.store.generate_orders("FLIPKART", 1, seed=5)
        assert new_ids == ["FLIPKART-1004"]  # numbering continues


def test_a_broken_state_file_is_reported_with_its_name(tmp_path):
    state = tmp_path / "broken.json"
    state.write_text("{not json")
    with pytest.raises(StateFileError, match="broken.json"):
        Store(state_path=state)
    state.write_text(json.dumps({"version": 1, "channels": [{"code": "X"}]}))
    with pytest.raises(StateFileError, match="bad content"):
        Store(state_path=state)


def test_page_lists_channels_and_orders_and_its_form_changes_a_status(sim, client):
    sim.store.put_orders("FLIPKART", [order("FK-1")])
    page = requests.get(f"{sim.url}/?channel=FLIPKART")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "FLIPKART" in page.text and "AMAZON" in page.text and "FK-1-1" in page.text
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[0]
    form = requests.post(
        f"{sim.url}/_control/channels/FLIPKART/orders/FK-1/items/FK-1-1/status",
        data={
            "status": "DISPATCHED",
            "courierName": "",
            "trackingNumber": "AWB9",
            "next": "/?channel=FLIPKART",
        },
        allow_redirects=False,
    )
    assert (form.status_code, form.headers["Location"]) == (303, "/?channel=FLIPKART")
    item = client.status_query("FK-1")[0]["orderItems"][0]
    assert (item["status"], item["trackingNumber"], item["courierName"]) == (
        "DISPATCHED",
        "AWB9",
        "",
    )
    generated = requests.post(
        f"{sim.url}/_control/channels/AMAZON/orders/generate",
        data={"count": "3", "skus": "A,B", "status": "CREATED"},
        allow_redirects=False,
    )
    assert generated.status_code == 303 and sim.store.order_count("AMAZON") == 3


def test_binds_to_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        SimulatorServer(host="0.0.0.0")


def test_one_command_starts_it_with_the_demo_channels(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--port",
            "0",
            "--seed-demo",
            "--state",
            str(tmp_path / "s.json"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        assert first_line.startswith("Channel simulator on http://127.0.0.1:"), first_line
        url = first_line.split()[3]
        channels = requests.get(f"{url}/_control/channels", timeout=5).json()
        assert [c["code"] for c in channels] == ["FLIPKART", "AMAZON", "PAYTM", "MYSHOP"]
        assert all(c["orders"] >= 6 for c in channels)
        token = requests.get(
            f"{url}/ch/AMAZON/authToken", params={"username": "user", "password": "pass"}
        ).json()["accessToken"]
        orders = requests.get(
            f"{url}/ch/AMAZON/orders", params={"pageSize": 50}, headers={"apiKey": token}
        ).json()["orders"]
        assert {o["thirdPartyShipping"] for o in orders} == {True, False}
        assert {"DISPATCHED", "CANCELLED"} <= {o["orderItems"][0]["status"] for o in orders}
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0, process.stderr.read()
    assert len(json.loads((tmp_path / "s.json").read_text())["channels"]) == 4
