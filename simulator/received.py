"""What clients send the simulated channel (status notifications, cancels, dispatches,
inventory), checked against the contract, with the `fail_items` fault rules applied, kept as
records a test or the page reads, and repeats of an accepted Idempotency-Key dropped."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .contract import (
    ContractError,
    check_cancel,
    check_dispatch,
    check_inventory,
    check_notification,
    choice,
    iso,
    outcome,
)

if TYPE_CHECKING:
    from .store import ChannelState

RECEIVED_KINDS = ("notifications", "cancels", "dispatches", "inventory")
SUCCESS = {"orderItems": [], "status": "SUCCESS", "error": ""}
INVENTORY_SUCCESS = {"status": "SUCCESS", "failedProductList": []}
INJECTED = "item was not able to update (injected)"


class ReceivingMixin:
    """`Store`'s records of what clients sent (it uses the store's lock and channels)."""

    # -- what clients send ---------------------------------------------------------------

    def _record(self, channel: ChannelState, kind: str, record: dict) -> None:
        record = {"seq": self._next_seq(), "receivedAt": iso(self.now()), **record}
        channel.received[kind].append(record)
        self._changed()

    def _duplicate(self, channel: ChannelState, kind: str, key: str, order_id: str | None) -> None:
        channel.duplicates.append(
            {
                "seq": self._next_seq(),
                "receivedAt": iso(self.now()),
                "kind": kind,
                "idempotencyKey": key,
                "orderId": order_id,
            }
        )
        self._changed()

    def record_rejected(
        self,
        code: str,
        kind: str,
        extra: dict,
        headers: dict,
        key: str | None,
        body: Any,
        error: ContractError,
    ) -> None:
        """Keep a call refused before its checks (say, not JSON) with the HTTP status it got."""
        with self.lock:
            record = {**extra, "idempotencyKey": key, "headers": headers, "body": body}
            response = {"httpStatus": error.status, "error": str(error)}
            self._record(self._channel(code), kind, {**record, "response": response})

    def _inject(
        self, channel: ChannelState, method: str, path: str, results: list[tuple[str, str | None]]
    ) -> list[tuple[str, str | None]]:
        """Apply the `fail_items` fault rules that hit this request."""
        ids = {item_id for item_id, _ in results}
        failing: set[str] = set()
        for rule in self.faults:
            if rule.kind != "fail_items" or rule.channel not in (None, channel.code):
                continue
            if rule.fires(method, path, ids):
                failing |= set(rule.item_ids) if rule.item_ids else ids
        if not failing:
            return results
        return [(i, m or (INJECTED if i in failing else None)) for i, m in results]

    def _receive(
        self,
        code: str,
        kind: str,
        path: str,
        headers: dict,
        body: Any,
        key: str | None,
        check,
        success: dict,
        extra: dict,
    ) -> dict:
        """Check, inject item faults, record and answer one client call; drop duplicates by key."""
        with self.lock:
            channel = self._channel(code)
            if key and key in channel.accepted_keys[kind]:
                self._duplicate(channel, kind, key, extra.get("orderId"))
                return copy.deepcopy(success)
            record = {**extra, "idempotencyKey": key, "headers": headers, "body": body}
            try:
                results = check(channel)
            except ContractError as error:
                response = {"httpStatus": error.status, "error": str(error)}
                self._record(channel, kind, {**record, "response": response})
                raise
            results = self._inject(channel, "POST", path, results)
            if kind == "inventory":
                response = _inventory_outcome(body["inventoryList"], results)
                for entry, (_, error) in zip(body["inventoryList"], results, strict=True):
                    if error is None:
                        listing = (entry["productId"], entry.get("variantId", ""))
                        channel.inventory_levels[(*listing, entry["facilityCode"])] = int(
                            entry["inventory"]
                        )
            else:
                response = outcome(results)
            self._record(channel, kind, {**record, "response": response})
            if key and response["status"] == "SUCCESS":
                channel.accepted_keys[kind].add(key)
            return response

    def notify(
        self,
        code: str,
        order_id: str,
        body: Any,
        headers: dict | None = None,
        key: str | None = None,
    ) -> dict:
        """A status notification (POST /order/{id}); a repeat of an accepted key is dropped."""
        return self._receive(
            code,
            "notifications",
            f"/order/{order_id}",
            headers or {},
            body,
            key,
            lambda ch: check_notification(ch.orders.get(order_id), order_id, body),
            SUCCESS,
            {"orderId": order_id},
        )

    def cancel(
        self, code: str, body: Any, headers: dict | None = None, key: str | None = None
    ) -> dict:
        order_id = body.get("orderId") if isinstance(body, dict) else None
        return self._receive(
            code,
            "cancels",
            "/orders/cancel",
            headers or {},
            body,
            key,
            lambda ch: check_cancel(ch.orders.get(order_id) if order_id else None, body)[1],
            SUCCESS,
            {"orderId": order_id},
        )

    def dispatch(
        self, code: str, body: Any, headers: dict | None = None, key: str | None = None
    ) -> dict:
        def check(channel: ChannelState) -> list:
            items = {}
            entries = body.get("orderItems") if isinstance(body, dict) else None
            for entry in entries if isinstance(entries, list) else []:
                item_id = entry.get("orderItemId") if isinstance(entry, dict) else None
                order_id = channel.item_index.get(item_id) if isinstance(item_id, str) else None
                if order_id:
                    order = channel.orders[order_id]
                    items[item_id] = next(
                        i for i in order["orderItems"] if i["orderItemId"] == item_id
                    )
            return check_dispatch(items, body)

        return self._receive(
            code, "dispatches", "/orders/dispatch", headers or {}, body, key, check, SUCCESS, {}
        )

    def update_inventory(
        self, code: str, body: Any, headers: dict | None = None, key: str | None = None
    ) -> dict:
        def check(channel: ChannelState) -> list:
            return [(entry.get("productId", ""), error) for entry, error in check_inventory(body)]

        return self._receive(
            code,
            "inventory",
            "/updateInventory",
            headers or {},
            body,
            key,
            check,
            INVENTORY_SUCCESS,
            {},
        )

    def received(self, code: str, kind: str | None = None, since: int = 0) -> dict:
        """What clients sent this channel (records with seq > since), and dropped duplicates."""
        with self.lock:
            channel = self._channel(code)
            kinds = RECEIVED_KINDS if kind is None else (choice(kind, RECEIVED_KINDS, "kind"),)
            result: dict[str, Any] = {
                k: [r for r in channel.received[k] if r["seq"] > since] for k in kinds
            }
            result["duplicates"] = [r for r in channel.duplicates if r["seq"] > since]
            result["inventoryLevels"] = [
                {"productId": p, "variantId": v, "facilityCode": f, "inventory": q}
                for (p, v, f), q in channel.inventory_levels.items()
            ]
            return result

    def log_request(self, code: str, entry: dict) -> None:
        with self.lock:
            channel = self.channels.get(code)
            if channel is not None:
                channel.request_count += 1
                channel.requests.append({"seq": self._next_seq(), **entry})

    def requests(self, code: str, since: int = 0) -> list[dict]:
        with self.lock:
            return [r for r in self._channel(code).requests if r["seq"] > since]


def _inventory_outcome(entries: list[dict], results: list[tuple[str, str | None]]) -> dict:
    """Section 7's reply: the listings that were not taken, each with the reason."""
    failed = [
        {
            "productId": entry.get("productId"),
            "variantId": entry.get("variantId"),
            "facilityCode": entry.get("facilityCode"),
            "errorMessage": error,
        }
        for entry, (_, error) in zip(entries, results, strict=True)
        if error
    ]
    if not failed:
        return {"status": "SUCCESS", "failedProductList": []}
    status = "FAILED" if len(failed) == len(results) else "PARTIAL_SUCCESS"
    return {"status": status, "failedProductList": failed}
