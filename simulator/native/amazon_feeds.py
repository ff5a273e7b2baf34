"""Amazon's Feeds API (2021-06-30) for the Amazon dialect: documents, feeds, processing reports.

- `createFeedDocument` answers a document id and a pre-signed URL (`/s3/<id>?X-Amz-Signature=`
  on this server: no access token, the signature is the credential); the client PUTs the
  content there.
- `createFeed` queues the uploaded document as a feed (IN_QUEUE). `getFeed` answers
  IN_PROGRESS for the channel's first `feedPolls` calls (default 0), then processes the feed
  once and answers DONE (or the channel's `feedEnd`: FATAL, CANCELLED) with the report's
  document id; `getFeedDocument` gives the report's URL (and `compressionAlgorithm` GZIP when
  the channel's `gzipReports` is set).
- JSON_LISTINGS_FEED: each message's `fulfillment_availability` quantity goes through the
  store's inventory record (`update_inventory`, one call per feed: fault rules on
  /updateInventory fail items as they fail the contract's); the report is JSON (issues by
  messageId, a summary).
- POST_ORDER_ACKNOWLEDGEMENT_DATA (XML): a message with StatusCode Failure cancels the named
  items (every item when none is named) through the store's cancel record (`cancel`: fault
  rules on /orders/cancel fail items) and, accepted, on the store's order (its items turn
  CANCELLED, so Amazon lists them with QuantityOrdered 0); the report is an XML
  ProcessingReport.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from ..contract import cancelled_units
from . import NativeRequest, Reply
from . import amazon_shapes as shapes
from .shapes import problems

FEEDS = "/feeds/2021-06-30"
DOCUMENTS = re.compile(r"/feeds/2021-06-30/documents(?:/([^/]+))?")
FEED_PATH = re.compile(r"/feeds/2021-06-30/feeds(?:/([^/]+))?")
BUCKET = re.compile(r"/s3/([^/]+)")


def error(status: int, code: str, message: str) -> Reply:
    return status, {"errors": [{"code": code, "message": message}]}, {}


def operation_name(method: str, path: str) -> str:
    """The Feeds API operation a request is ("" when none)."""
    if match := DOCUMENTS.fullmatch(path):
        return "getFeedDocument" if match[1] else "createFeedDocument"
    if match := FEED_PATH.fullmatch(path):
        return "getFeed" if match[1] else "createFeed"
    if BUCKET.fullmatch(path):
        return "uploadDocument" if method == "PUT" else "downloadDocument"
    return ""


class FeedsApi:
    """Documents and feeds of every channel (their ids are random: no channel sees another's)."""

    unsigned = ("uploadDocument", "downloadDocument")  # pre-signed: no access token

    def __init__(self, settings: Callable[[Any, str], dict]) -> None:
        self.settings = settings  # a channel's Amazon settings (`amazon.settings`)
        self.lock = threading.RLock()  # held while a feed is processed (its report is made)
        self.documents: dict[str, dict] = {}
        self.feeds: dict[str, dict] = {}

    def _document(
        self, request: NativeRequest, content_type: str, content: bytes | None, report=False
    ) -> dict:
        doc_id = "amzn1.tortuga.4." + secrets.token_hex(10)
        host = request.headers.get("Host", "127.0.0.1")
        signature = secrets.token_hex(16)
        url = f"http://{host}/amazon/{request.code}/s3/{doc_id}?X-Amz-Signature={signature}"
        document = {
            "store": id(request.store),
            "code": request.code,
            "report": report,
            "contentType": content_type,
            "content": content,
            "signature": signature,
            "url": url,
        }
        with self.lock:
            self.documents[doc_id] = document
        return {"feedDocumentId": doc_id, "url": url}

    def document(self, request: NativeRequest, content_type: str, content: bytes) -> dict:
        """A document Amazon made (a report, a ZIP of labels), to download by its URL."""
        return self._document(request, content_type, content, report=True)

    def op_createFeedDocument(self, request: NativeRequest) -> Reply:
        found = problems(request.body, shapes.CREATE_FEED_DOCUMENT)
        if found:
            return error(400, "InvalidInput", "; ".join(found))
        return 201, self._document(request, request.body["contentType"], None), {}

    def _signed(self, request: NativeRequest) -> dict | None:
        doc = self.documents.get(BUCKET.fullmatch(request.path)[1])
        if doc is None or (doc["store"], doc["code"]) != (id(request.store), request.code):
            return None
        return doc if request.q("X-Amz-Signature") == doc["signature"] else None

    def op_uploadDocument(self, request: NativeRequest) -> Reply:
        doc = self._signed(request)
        if doc is None:
            return 403, "<Error><Code>SignatureDoesNotMatch</Code></Error>", {}
        if (request.headers.get("Content-Type") or "").lower() != doc["contentType"].lower():
            return 403, "<Error><Code>SignatureDoesNotMatch</Code></Error>", {}
        doc["content"] = request.raw
        return 200, "", {"Content-Type": "text/plain"}

    def op_downloadDocument(self, request: NativeRequest) -> Reply:
        doc = self._signed(request)
        if doc is None or doc["content"] is None:
            return 403, "<Error><Code>AccessDenied</Code></Error>", {}
        kind = doc["contentType"].split(";")[0]
        return 200, doc["content"], {"Content-Type": kind}

    def op_createFeed(self, request: NativeRequest) -> Reply:
        conf = self.settings(request.store, request.code)
        body = request.body
        found = problems(body, shapes.CREATE_FEED)
        doc = self.documents.get(body.get("inputFeedDocumentId", "")) if not found else None
        if not found and (doc is None or doc["code"] != request.code or doc["content"] is None):
            found.append("inputFeedDocumentId: no uploaded document of this seller")
        if not found and body["marketplaceIds"] != [conf["marketplaceId"]]:
            found.append("marketplaceIds: not this seller's marketplace")
        if found:
            return error(400, "InvalidInput", "; ".join(found))
        feed_id = str(50000 + secrets.randbelow(10**9))
        with self.lock:
            self.feeds[feed_id] = {
                "code": request.code,
                "feedType": body["feedType"],
                "document": doc,
                "polls": int(conf["feedPolls"]),
                "status": "IN_QUEUE",
                "result": None,
            }
        return 202, {"feedId": feed_id}, {}

    def op_getFeed(self, request: NativeRequest) -> Reply:
        conf = self.settings(request.store, request.code)
        feed_id = FEED_PATH.fullmatch(request.path)[1]
        feed = self.feeds.get(feed_id)
        if feed is None or feed["code"] != request.code:
            return error(404, "NotFound", f"feed {feed_id} not found")
        with self.lock:
            if feed["status"] in ("IN_QUEUE", "IN_PROGRESS") and feed["polls"] > 0:
                feed["polls"] -= 1
                feed["status"] = "IN_PROGRESS"
            elif feed["status"] in ("IN_QUEUE", "IN_PROGRESS"):
                feed["status"] = conf["feedEnd"]
                if feed["status"] == "DONE":
                    feed["result"] = self._process(request, feed_id, feed, conf)
        reply = {"feedId": feed_id, "feedType": feed["feedType"]}
        reply["processingStatus"] = feed["status"]
        if feed["result"]:
            reply["resultFeedDocumentId"] = feed["result"]
        return 200, reply, {}

    def op_getFeedDocument(self, request: NativeRequest) -> Reply:
        doc_id = DOCUMENTS.fullmatch(request.path)[1]
        doc = self.documents.get(doc_id)
        if doc is None or doc["code"] != request.code:
            return error(404, "NotFound", f"feed document {doc_id} not found")
        reply = {"feedDocumentId": doc_id, "url": doc["url"]}
        if doc.get("compression"):
            reply["compressionAlgorithm"] = doc["compression"]
        return 200, reply, {}

    def _process(self, request: NativeRequest, feed_id: str, feed: dict, conf: dict) -> str:
        """Apply the feed to the store; the id of its processing report."""
        content = feed["document"]["content"]
        if feed["feedType"] == "JSON_LISTINGS_FEED":
            report = listings_report(request.store, request.code, feed_id, content)
            data, kind = json.dumps(report).encode(), "application/json; charset=UTF-8"
        else:
            data = acknowledgement_report(request.store, request.code, feed_id, content, conf)
            kind = "text/xml; charset=UTF-8"
        document = self.document(request, kind, data)
        if conf["gzipReports"]:  # Amazon may compress a report: getFeedDocument says so
            self.documents[document["feedDocumentId"]]["content"] = gzip.compress(data)
            self.documents[document["feedDocumentId"]]["compression"] = "GZIP"
        return document["feedDocumentId"]


# --- processing ----------------------------------------------------------------------------


def availability(body: dict, found: list[str]) -> int | None:
    """The quantity a listing's patches set (`fulfillment_availability`), or None with the
    problems added to `found`."""
    for patch in body.get("patches") or []:
        if patch["path"] == "/attributes/fulfillment_availability":
            values = patch.get("value") or []
            for n, value in enumerate(values):
                found += problems(value, shapes.FULFILLMENT_AVAILABILITY, f"patches.value[{n}]")
            if values and not found:
                return values[0]["quantity"]
    found.append("patches: no /attributes/fulfillment_availability with a quantity")
    return None


def listings_report(store: Any, code: str, feed_id: str, content: bytes) -> dict:
    """Process a JSON_LISTINGS_FEED: its JSON processing report."""
    try:
        feed = json.loads(content)
    except ValueError:
        feed = None
    issues: list[dict] = []
    found = problems(feed, shapes.LISTINGS_FEED, "feed")
    if found:  # the document as a whole is refused
        issues = [{"messageId": 0, "code": "100", "severity": "ERROR", "message": f} for f in found]
        return _report(feed_id, code, issues, 0)
    entries = []
    for message in feed["messages"]:
        wrong: list[str] = []
        quantity = availability(message, wrong) if message["operationType"] == "PATCH" else None
        if quantity is None:
            wrong = wrong or [f"operationType {message['operationType']} is not a quantity patch"]
            issue = {"messageId": message["messageId"], "code": "4000001", "severity": "ERROR"}
            issues.append({**issue, "message": "; ".join(wrong)})
            continue
        entry = {"productId": message["sku"], "variantId": "", "facilityCode": "DEFAULT"}
        entries.append((message["messageId"], {**entry, "inventory": str(quantity)}))
    if entries:
        body = {"inventoryList": [entry for _, entry in entries]}
        reply = store.update_inventory(code, body, {"x-amzn-feed": feed_id}, f"feed-{feed_id}")
        failed = {f["productId"]: f["errorMessage"] for f in reply.get("failedProductList", [])}
        for number, entry in entries:
            if entry["productId"] in failed:
                issue = {"messageId": number, "code": "90000900", "severity": "ERROR"}
                issues.append({**issue, "message": failed[entry["productId"]]})
    return _report(feed_id, code, issues, len(feed["messages"]))


def _report(feed_id: str, seller: str, issues: list[dict], processed: int) -> dict:
    errors = len({i["messageId"] for i in issues})
    return {
        "header": {"sellerId": seller, "version": "2.0", "feedId": feed_id},
        "issues": issues,
        "summary": {
            "errors": len(issues),
            "warnings": 0,
            "messagesProcessed": processed,
            "messagesAccepted": max(0, processed - errors),
            "messagesInvalid": errors,
        },
    }


def acknowledgement_report(store: Any, code: str, feed_id: str, content: bytes, conf: dict):
    """Process an order acknowledgement feed: its XML processing report."""
    results: list[tuple[str, str]] = []  # (message id, error)
    messages = []
    try:
        if b"<!DOCTYPE" in content:
            raise ValueError("a DOCTYPE is not allowed")
        root = ElementTree.fromstring(content)
        if root.tag != "AmazonEnvelope" or root.findtext("MessageType") != "OrderAcknowledgement":
            raise ValueError("expected an AmazonEnvelope of MessageType OrderAcknowledgement")
        if root.findtext("Header/MerchantIdentifier") != conf["sellerId"]:
            raise ValueError("Header/MerchantIdentifier is not this seller")
        messages = root.findall("Message")
    except (ValueError, ElementTree.ParseError) as exc:
        results.append(("0", f"the feed is not a valid envelope: {exc}"))
    for message in messages:
        number = message.findtext("MessageID") or "0"
        problem = _acknowledge(store, code, feed_id, number, message)
        if problem:
            results.append((number, problem))
    return _xml_report(feed_id, conf["sellerId"], len(messages), results)


def _acknowledge(store: Any, code: str, feed_id: str, number: str, message) -> str:
    """One message: cancel the items it names (StatusCode Failure); why it failed, or ""."""
    ack = message.find("OrderAcknowledgement")
    if ack is None:
        return "no OrderAcknowledgement"
    order_id, status = ack.findtext("AmazonOrderID") or "", ack.findtext("StatusCode") or ""
    if status not in ("Success", "Failure"):
        return f"StatusCode {status!r} is not Success or Failure"
    items = [
        (i.findtext("AmazonOrderItemCode") or "", i.findtext("CancelReason"))
        for i in ack.findall("Item")
    ]
    bad = [r for _, r in items if r is not None and r not in shapes.CANCEL_REASONS]
    if bad:
        return f"CancelReason {bad[0]!r} is not valid"
    try:
        order = store.get_order(code, order_id)
    except Exception:  # noqa: BLE001 (the store's unknown order)
        return f"order {order_id} not found"
    if status == "Success":
        return ""
    by_id = {i["orderItemId"]: i for i in order["orderItems"]}
    named = [item for item, _ in items] or list(by_id)
    unknown = [item for item in named if item not in by_id]
    if unknown:
        return f"order item {unknown[0]} is not in order {order_id}"
    open_items = [i for i in named if by_id[i]["quantity"] - cancelled_units(by_id[i]) > 0]
    if not open_items:
        return f"every named item of order {order_id} is cancelled already"
    entries = [
        {"orderItemId": i, "quantity": by_id[i]["quantity"] - cancelled_units(by_id[i])}
        for i in open_items
    ]
    body = {"orderId": order_id, "orderItems": entries}
    reply = store.cancel(code, body, {"x-amzn-feed": feed_id}, f"feed-{feed_id}-{number}")
    if reply.get("status") != "SUCCESS":
        said = [f.get("errorMessage", "") for f in reply.get("orderItems", [])]
        return "; ".join(m for m in said if m) or reply.get("error") or "refused"
    changes = [{"orderId": order_id, "orderItemId": i, "status": "CANCELLED"} for i in open_items]
    store.apply_changes(code, changes)
    return ""


def _xml_report(feed_id: str, seller: str, processed: int, results: list[tuple[str, str]]):
    envelope = ElementTree.Element("AmazonEnvelope")
    header = ElementTree.SubElement(envelope, "Header")
    ElementTree.SubElement(header, "DocumentVersion").text = "1.02"
    ElementTree.SubElement(header, "MerchantIdentifier").text = seller
    ElementTree.SubElement(envelope, "MessageType").text = "ProcessingReport"
    message = ElementTree.SubElement(envelope, "Message")
    ElementTree.SubElement(message, "MessageID").text = "1"
    report = ElementTree.SubElement(message, "ProcessingReport")
    ElementTree.SubElement(report, "DocumentTransactionID").text = feed_id
    ElementTree.SubElement(report, "StatusCode").text = "Complete"
    summary = ElementTree.SubElement(report, "ProcessingSummary")
    failed = len({number for number, _ in results})
    for name, value in (
        ("MessagesProcessed", processed),
        ("MessagesSuccessful", max(0, processed - failed)),
        ("MessagesWithError", failed),
        ("MessagesWithWarning", 0),
    ):
        ElementTree.SubElement(summary, name).text = str(value)
    for number, text in results:
        result = ElementTree.SubElement(report, "Result")
        ElementTree.SubElement(result, "MessageID").text = number
        ElementTree.SubElement(result, "ResultCode").text = "Error"
        ElementTree.SubElement(result, "ResultMessageCode").text = "18028"
        ElementTree.SubElement(result, "ResultDescription").text = text
    return ElementTree.tostring(envelope, encoding="utf-8", xml_declaration=True)
