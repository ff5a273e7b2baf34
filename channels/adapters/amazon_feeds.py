"""Amazon's Feeds API (2021-06-30): what Amazon takes only as a document it processes later.

- Seller cancellations: an order acknowledgement feed (POST_ORDER_ACKNOWLEDGEMENT_DATA, XML)
  with `StatusCode` Failure and the order items to cancel, each with a `CancelReason`
  (API setting `cancel_reason`, default GeneralAdjustment). Amazon cancels whole order items:
  a cancel of some of an item's units is refused with the reason, before anything is sent.
  Items whose `QuantityOrdered` is already 0 were cancelled (by an earlier feed whose answer
  was lost): they count as done, so a repeated push cancels nothing twice.
- Inventory in bulk: a JSON_LISTINGS_FEED of `fulfillment_availability` patches, one message
  per listing, for a request of `inventory_feed_from` listings or more (default 20); smaller
  ones go to `patchListingsItem` at once (what Amazon recommends for urgent updates).

A feed is four calls (createFeedDocument, the upload to the document's pre-signed URL,
createFeed, later getFeed until DONE, getFeedDocument and the report's download). The outbox
and the inventory push keep the feed id and ask again later (`Reply.awaiting`,
`PushReply.awaiting`); nothing waits for Amazon in between.
"""

from __future__ import annotations

import gzip
import http.client
import json
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

from .base import ChannelReplyError, ChannelUnavailable, PushReply, Reply, failed_push
from .http import new_connection, reply_json
from .parse import describe

FEEDS = "/feeds/2021-06-30"
FEED_PLANS = {  # operation: (requests per second, burst), Amazon's documented defaults
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
}
POLL_SECONDS = 60.0  # how long the outbox waits before asking about a cancellation feed again
FEED_FROM = 20  # listings from which an inventory request goes as a feed
JSON_CONTENT = "application/json; charset=UTF-8"
XML_CONTENT = "text/xml; charset=UTF-8"
CANCEL_REASON = "GeneralAdjustment"


class NotNow(Exception):
    """A step of a one-try push (the outbox's) did not succeed: its reply is the push's."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.error)
        self.reply = reply


class FeedEnded(Exception):
    """Amazon ended a feed without processing it (CANCELLED, FATAL)."""


class AmazonFeeds:
    """The Feeds API half of `AmazonSpApiAdapter` (a mixin: it uses the adapter's calls)."""

    config: Any
    marketplace: str

    def _step(self, method: str, path: str, operation: str, what: str, once: bool, **kw) -> Any:
        """One call's JSON: tried again while transient (`_api`), or once (`request_once`,
        raising NotNow with a reply the outbox classifies)."""
        if once:
            reply = self.request_once(method, path, what=what, operation=operation, **kw)
            if not reply.ok:
                raise NotNow(reply)
        else:
            reply = self._api(method, path, operation, what=what, **kw)
        data = reply_json(reply.text, what)
        if not isinstance(data, dict):
            raise ChannelReplyError(f"{what}: expected an object, got {describe(data)}")
        return data

    def _transfer(self, method: str, url: str, data: bytes | None, what: str) -> bytes:
        """A document to or from its pre-signed URL (another host, no access token; the URL
        is a credential: never logged)."""
        parts = urlsplit(url)
        connection = new_connection(replace(self.config, base_url=url))
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {}
        if data is not None:  # our connections write head and body at once: give the length
            kind = XML_CONTENT if data.startswith(b"<") else JSON_CONTENT
            headers = {"Content-Type": kind, "Content-Length": str(len(data))}
        try:
            connection.request(method, target, data, headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ChannelUnavailable(
                f"{what}: document transfer failed ({type(exc).__name__})"
            ) from None
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise ChannelUnavailable(f"{what}: document transfer answered HTTP {response.status}")
        return body

    def _submit_feed(self, feed_type: str, content: bytes, what: str, once: bool) -> str:
        """Create the document, upload it, create the feed: the feed id."""
        kind = XML_CONTENT if content.startswith(b"<") else JSON_CONTENT
        doc = self._step(
            "POST",
            f"{FEEDS}/documents",
            "createFeedDocument",
            what,
            once,
            body={"contentType": kind},
        )
        doc_id, url = doc.get("feedDocumentId"), doc.get("url")
        if not doc_id or not url:
            raise ChannelReplyError(f"{what}: no feedDocumentId and url in {describe(doc)}")
        self._transfer("PUT", str(url), content, what)
        request = {
            "feedType": feed_type,
            "marketplaceIds": [self.marketplace],
            "inputFeedDocumentId": doc_id,
        }
        feed = self._step("POST", f"{FEEDS}/feeds", "createFeed", what, once, body=request)
        if not feed.get("feedId"):
            raise ChannelReplyError(f"{what}: no feedId in {describe(feed)}")
        return str(feed["feedId"])

    def _feed_report(self, feed_id: str, what: str, once: bool) -> bytes | None:
        """The processing report of a feed, or None while Amazon is still at it."""
        feed = self._step("GET", f"{FEEDS}/feeds/{quote(feed_id, safe='')}", "getFeed", what, once)
        status = feed.get("processingStatus")
        if status in ("IN_QUEUE", "IN_PROGRESS"):
            return None
        if status != "DONE":
            raise FeedEnded(f"{what}: Amazon ended feed {feed_id} as {status}, unprocessed")
        result = feed.get("resultFeedDocumentId")
        if not result:
            raise ChannelReplyError(f"{what}: feed {feed_id} is DONE without a report")
        path = f"{FEEDS}/documents/{quote(str(result), safe='')}"
        doc = self._step("GET", path, "getFeedDocument", what, once)
        data = self._transfer("GET", str(doc.get("url") or ""), None, what)
        if doc.get("compressionAlgorithm") == "GZIP":
            data = gzip.decompress(data)
        return data

    # --- seller cancellations ------------------------------------------------------------

    def cancel_once(self, order_id: str, body: dict, ref: str, what: str) -> Reply:
        """One try of a cancel push: submit the acknowledgement feed, or (with `ref`) read
        its report."""
        try:
            if ref:
                return self._cancel_outcome(body, ref, what)
            return self._cancel_submit(order_id, body, what)
        except NotNow as exc:
            return exc.reply

    def _cancel_submit(self, order_id: str, body: dict, what: str) -> Reply:
        entries = body.get("orderItems") or []
        left = self._quantities_ordered(order_id, what)
        to_cancel, refused = [], []
        for entry in entries:
            item, asked = str(entry.get("orderItemId")), int(entry.get("quantity") or 1)
            if item not in left:
                refused.append((item, f"order {order_id} has no order item {item} on Amazon"))
            elif left[item] > 0 and asked < left[item]:
                refused.append(
                    (
                        item,
                        f"Amazon cancels whole order items: {asked} of the {left[item]} "
                        f"units of item {item} asked; cancel all of them, or none",
                    )
                )
            elif left[item]:
                to_cancel.append(item)
        if refused:
            return failed_reply(entries, dict(refused), "not sent: another item was refused")
        if not to_cancel:  # every item is cancelled on Amazon already
            return Reply(200, json.dumps({"status": "SUCCESS"}))
        reason = str(self.config.settings.get("cancel_reason") or CANCEL_REASON)
        seller = str(self.config.settings.get("seller_id") or "")
        content = acknowledgement_feed(seller, order_id, to_cancel, reason)
        feed_id = self._submit_feed("POST_ORDER_ACKNOWLEDGEMENT_DATA", content, what, True)
        text = json.dumps({"status": "SUBMITTED", "feedId": feed_id})
        return Reply(202, text, awaiting=feed_id, retry_after=POLL_SECONDS)

    def _quantities_ordered(self, order_id: str, what: str) -> dict[str, int]:
        """QuantityOrdered of each order item as Amazon has it now (0: cancelled), every page."""
        path = f"/orders/v0/orders/{quote(order_id, safe='')}/orderItems"
        left, params = {}, None
        while True:
            data = self._step("GET", path, "getOrderItems", what, True, params=params)
            payload = data.get("payload") or {}
            for item in payload.get("OrderItems") or []:
                left[str(item.get("OrderItemId"))] = int(item.get("QuantityOrdered") or 0)
            if not payload.get("NextToken"):
                return left
            params = {"NextToken": payload["NextToken"]}

    def _cancel_outcome(self, body: dict, feed_id: str, what: str) -> Reply:
        entries = body.get("orderItems") or []
        try:
            report = self._feed_report(feed_id, what, True)
        except FeedEnded as exc:
            return failed_reply(entries, {}, str(exc))
        if report is None:
            text = json.dumps({"status": "SUBMITTED", "feedId": feed_id})
            return Reply(202, text, awaiting=feed_id, retry_after=POLL_SECONDS)
        errors = acknowledgement_errors(report, what)
        if not errors:
            return Reply(200, json.dumps({"status": "SUCCESS", "feedId": feed_id}))
        return failed_reply(entries, {}, f"Amazon (feed {feed_id}): " + "; ".join(errors))

    # --- inventory -----------------------------------------------------------------------

    def inventory_feed(self, listings: list[dict], product_type: str) -> PushReply:
        what = f"Channel {self.config.code}: inventory feed of {len(listings)} listing(s)"
        seller = str(self.config.settings.get("seller_id") or "")
        content = listings_feed(seller, product_type, listings)
        feed_id = self._submit_feed("JSON_LISTINGS_FEED", content, what, False)
        return PushReply("SUBMITTED", awaiting=feed_id)

    def inventory_report(self, reference: str, product_ids: list[str]) -> PushReply | None:
        self._start_budget()
        what = f"Channel {self.config.code}: report of inventory feed {reference}"
        try:
            report = self._feed_report(reference, what, False)
        except FeedEnded as exc:
            return PushReply("FAILED", error=str(exc))
        if report is None:
            return None
        return listings_report(reply_json(report.decode("utf-8", "replace"), what), product_ids)


# --- documents ----------------------------------------------------------------------------


def acknowledgement_feed(seller: str, order_id: str, item_ids: list[str], reason: str) -> bytes:
    """An order acknowledgement feed cancelling these items of one order."""
    envelope = ElementTree.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = ElementTree.SubElement(envelope, "Header")
    ElementTree.SubElement(header, "DocumentVersion").text = "1.01"
    ElementTree.SubElement(header, "MerchantIdentifier").text = seller
    ElementTree.SubElement(envelope, "MessageType").text = "OrderAcknowledgement"
    message = ElementTree.SubElement(envelope, "Message")
    ElementTree.SubElement(message, "MessageID").text = "1"
    ack = ElementTree.SubElement(message, "OrderAcknowledgement")
    ElementTree.SubElement(ack, "AmazonOrderID").text = order_id
    ElementTree.SubElement(ack, "StatusCode").text = "Failure"
    for item_id in item_ids:
        item = ElementTree.SubElement(ack, "Item")
        ElementTree.SubElement(item, "AmazonOrderItemCode").text = item_id
        ElementTree.SubElement(item, "CancelReason").text = reason
    return ElementTree.tostring(envelope, encoding="utf-8", xml_declaration=True)


def acknowledgement_errors(report: bytes, what: str) -> list[str]:
    """The errors of an XML processing report (empty: every message processed)."""
    if b"<!DOCTYPE" in report or b"<!ENTITY" in report:
        raise ChannelReplyError(f"{what}: the processing report declares entities; not read")
    try:
        root = ElementTree.fromstring(report)
    except ElementTree.ParseError as exc:
        raise ChannelReplyError(f"{what}: the processing report is not XML ({exc})") from exc
    errors = []
    for result in root.iter("Result"):
        if (result.findtext("ResultCode") or "").strip() == "Error":
            code = (result.findtext("ResultMessageCode") or "").strip()
            text = (result.findtext("ResultDescription") or "").strip()
            errors.append(f"{code}: {text}" if code else text)
    if not errors and root.find(".//ProcessingSummary") is None:
        raise ChannelReplyError(f"{what}: the processing report has no ProcessingSummary")
    return errors


def listings_feed(seller: str, product_type: str, listings: list[dict]) -> bytes:
    """A JSON_LISTINGS_FEED setting each listing's quantity (message n: the n-th listing)."""
    messages = [
        {
            "messageId": n,
            "sku": str(entry.get("productId") or ""),
            "operationType": "PATCH",
            "productType": product_type,
            "patches": [
                {
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [
                        {"fulfillment_channel_code": "DEFAULT", "quantity": int(entry["inventory"])}
                    ],
                }
            ],
        }
        for n, entry in enumerate(listings, start=1)
    ]
    feed = {"header": {"sellerId": seller, "version": "2.0"}, "messages": messages}
    return json.dumps(feed, separators=(",", ":")).encode()


def listings_report(report: Any, product_ids: list[str]) -> PushReply:
    """A JSON_LISTINGS_FEED processing report by productId: a message with an ERROR issue
    failed (warnings do not fail it)."""
    issues = report.get("issues") if isinstance(report, dict) else None
    if not isinstance(issues, list) or not isinstance(report.get("summary"), dict):
        raise ChannelReplyError(f"malformed processing report {describe(report)}")
    reasons: dict[str, list[str]] = {}
    for issue in issues:
        if not isinstance(issue, dict) or issue.get("severity") != "ERROR":
            continue
        number = issue.get("messageId")
        if isinstance(number, int) and 1 <= number <= len(product_ids):
            text = f"{issue.get('code', '')}: {issue.get('message', '')}".strip(": ")
            reasons.setdefault(product_ids[number - 1], []).append(text)
    failed = tuple((pid, "; ".join(texts)) for pid, texts in reasons.items())
    if not failed:
        return PushReply("SUCCESS")
    status = "FAILED" if len(failed) == len(set(product_ids)) else "PARTIAL_SUCCESS"
    return PushReply(status, failed, "; ".join(m for _, m in failed))


def failed_reply(entries: list[dict], reasons: dict[str, str], otherwise: str) -> Reply:
    """The contract's FAILED push reply as the outbox reads it (`base.failed_push`)."""
    return Reply(200, json.dumps(failed_push(entries, otherwise, reasons)))
