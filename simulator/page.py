"""The one HTML page at `/`: channels, their orders, forms to change statuses and faults.

Plain HTML forms that post to the control API (which answers a form post with a redirect
back here); no JavaScript, nothing fetched from elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from urllib.parse import quote, urlencode

from .contract import ITEM_STATUSES, ContractError, as_int
from .faults import GARBAGE_MODES, KINDS
from .store import Store

PER_PAGE = 25
LEVELS_SHOWN = 100  # inventory levels listed on the page (all in the control API)
STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2} input{width:8em} input.n{width:4em} form{margin:0}
.muted{color:#777} h2{margin-top:1.5em}
"""


def _h(value: object) -> str:
    return escape(str(value), quote=True)


def _select(name: str, options: tuple[str, ...], selected: str = "") -> str:
    choices = "".join(
        f"<option{' selected' if o == selected else ''}>{_h(o)}</option>" for o in options
    )
    return f"<select name='{name}'>{choices}</select>"


def _form(action: str, fields: str, button: str, back: str) -> str:
    return (
        f"<form method='post' action='{_h(action)}'>{fields}"
        f"<input type='hidden' name='next' value='{_h(back)}'>"
        f"<button>{_h(button)}</button></form>"
    )


def render_page(store: Store, q: Callable[..., str | None], host: str) -> str:
    """The whole page; `?channel=CODE&page=N` selects a channel and a page of its orders."""
    channels = store.channel_list()
    code = q("channel") or (channels[0]["code"] if channels else None)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Channel simulator</title>",
        f"<style>{STYLE}</style></head><body><h1>Channel simulator</h1>",
        "<p class='muted'>Channel API (channel-api.md) under <code>/ch/&lt;CODE&gt;/</code>; "
        "JSON control API under <a href='/_control'><code>/_control/</code></a>.</p>",
        "<h2>Channels</h2><table><tr><th>code</th><th>base URL</th><th>login</th>"
        "<th>orders</th><th>notifications</th><th>cancels</th><th>dispatches</th>"
        "<th>inventory</th><th>duplicates</th><th>requests</th></tr>",
    ]
    for c in channels:
        received = c["received"]
        parts.append(
            f"<tr><td><a href='/?channel={quote(c['code'])}'>{_h(c['code'])}</a></td>"
            f"<td><code>http://{_h(host)}{_h(c['path'])}</code></td>"
            f"<td>{_h(c['username'])} / {_h(c['password'])}</td><td>{c['orders']}</td>"
            f"<td>{received['notifications']}</td><td>{received['cancels']}</td>"
            f"<td>{received['dispatches']}</td><td>{received['inventory']}</td>"
            f"<td>{c['duplicates']}</td><td>{c['requests']}</td></tr>"
        )
    parts.append("</table>")
    parts.append(
        _form(
            "/_control/channels",
            "code <input name='code' required> user <input name='username' value='user'> "
            "password <input name='password' value='pass'> ",
            "Add channel",
            "/",
        )
    )
    if code and store.has_channel(code):
        parts.append(_channel_section(store, code, q))
        parts.append(_inventory_section(code, store.received(code, "inventory")))
    parts.append(_faults_section(store, code or ""))
    parts.append("</body></html>")
    return "".join(parts)


def _channel_section(store: Store, code: str, q: Callable[..., str | None]) -> str:
    try:
        page = as_int(q("page", "1"), "page", 1)
    except ContractError:
        page = 1
    orders = store.all_orders(code)[::-1]  # newest first
    pages = max(1, -(-len(orders) // PER_PAGE))
    back = "/?" + urlencode({"channel": code, "page": page})
    parts = [
        f"<h2>Orders of {_h(code)} ({len(orders)})</h2>",
        _form(
            f"/_control/channels/{quote(code)}/orders/generate",
            "count <input class='n' name='count' value='5'> SKUs "
            "<input name='skus' placeholder='TSHIRT-RED,JEANS-BLUE'> item status "
            + _select("status", ITEM_STATUSES)
            + " ",
            "Generate orders",
            "/?" + urlencode({"channel": code}),
        ),
        "<table><tr><th>order</th><th>date</th><th>order status</th><th>item</th><th>sku</th>"
        "<th>qty</th><th>status</th><th>courier / tracking / return</th><th>change</th></tr>",
    ]
    for order in orders[(page - 1) * PER_PAGE : page * PER_PAGE]:
        parts += [_item_row(code, order, n, back) for n in range(len(order["orderItems"]))]
    parts.append("</table><p>")
    for n in range(1, pages + 1):
        link = "/?" + urlencode({"channel": code, "page": n})
        parts.append(f"<b>{n}</b> " if n == page else f"<a href='{_h(link)}'>{n}</a> ")
    parts.append("</p>")
    parts.append(_notifications_section(code, store.received(code)))
    return "".join(parts)


def _item_row(code: str, order: dict, n: int, back: str) -> str:
    """The table row of the order's n-th item, with a form to change its status."""
    items = order["orderItems"]
    item = items[n]
    head = ""
    if n == 0:
        ship = " (channel ships)" if order["thirdPartyShipping"] else ""
        head = (
            f"<td rowspan='{len(items)}'>{_h(order['id'])}<br><span class='muted'>"
            f"{_h(order['paymentType'])}{ship}</span></td>"
            f"<td rowspan='{len(items)}'>{_h(order['orderDate'])}</td>"
            f"<td rowspan='{len(items)}'>{_h(order['orderStatus'])}</td>"
        )
    detail = " ".join(
        _h(item[k])
        for k in ("courierName", "trackingNumber", "returnReason", "returnAWB")
        if item.get(k)
    )
    if "cancelledQuantity" in item:
        detail += f" cancelled {item['cancelledQuantity']}"
    action = (
        f"/_control/channels/{quote(code)}/orders/{quote(order['id'], safe='')}"
        f"/items/{quote(item['orderItemId'], safe='')}/status"
    )
    change = _form(
        action,
        _select("status", ITEM_STATUSES, item["status"])
        + " <input name='courierName' placeholder='courier'>"
        " <input name='trackingNumber' placeholder='tracking'>"
        " <input class='n' name='cancelledQuantity' placeholder='cxl qty'>"
        " <input name='returnReason' placeholder='return reason'> ",
        "Set",
        back,
    )
    return (
        f"<tr>{head}<td>{_h(item['orderItemId'])}</td><td>{_h(item['sku'])}</td>"
        f"<td>{item['quantity']}</td><td>{_h(item['status'])}</td><td>{detail}</td>"
        f"<td>{change}</td></tr>"
    )


def _notifications_section(code: str, received: dict) -> str:
    """The last status notifications the channel received, with its replies."""
    parts = [f"<h2>Last notifications received by {_h(code)}</h2><table>"]
    parts.append("<tr><th>#</th><th>at</th><th>order</th><th>entries</th><th>reply</th></tr>")
    for record in received["notifications"][-10:][::-1]:
        body = record.get("body")
        entries = body.get("orderItems") if isinstance(body, dict) else None
        summary = ", ".join(
            f"{e.get('orderItemId')} {e.get('status')}"
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, dict)
        )
        reply = record["response"].get("status", record["response"].get("httpStatus"))
        parts.append(
            f"<tr><td>{record['seq']}</td><td>{_h(record['receivedAt'])}</td>"
            f"<td>{_h(record.get('orderId'))}</td><td>{_h(summary)}</td><td>{_h(reply)}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def _inventory_section(code: str, received: dict) -> str:
    """The levels the channel holds per listing (what `/updateInventory` accepted last), and
    the last inventory updates with their replies."""
    levels = sorted(
        received["inventoryLevels"],
        key=lambda r: (r["productId"], r["variantId"] or "", r["facilityCode"]),
    )
    parts = [
        f"<h2>Inventory levels held by {_h(code)} ({len(levels)} listings)</h2><table>",
        "<tr><th>product</th><th>variant</th><th>facility</th><th>inventory</th></tr>",
    ]
    for level in levels[:LEVELS_SHOWN]:
        parts.append(
            f"<tr><td>{_h(level['productId'])}</td><td>{_h(level['variantId'] or '')}</td>"
            f"<td>{_h(level['facilityCode'])}</td><td>{level['inventory']}</td></tr>"
        )
    parts.append("</table>")
    if len(levels) > LEVELS_SHOWN:
        parts.append(
            f"<p class='muted'>… and {len(levels) - LEVELS_SHOWN} more: every level is in "
            f"<code>/_control/channels/{_h(code)}/received?kind=inventory</code>.</p>"
        )
    parts.append(f"<h2>Last inventory updates received by {_h(code)}</h2><table>")
    parts.append("<tr><th>#</th><th>at</th><th>listings</th><th>reply</th><th>failed</th></tr>")
    for record in received["inventory"][-10:][::-1]:
        body = record.get("body")
        entries = body.get("inventoryList") if isinstance(body, dict) else None
        response = record["response"]
        failed = ", ".join(
            f"{f.get('productId')}: {f.get('errorMessage')}"
            for f in response.get("failedProductList") or []
        )
        parts.append(
            f"<tr><td>{record['seq']}</td><td>{_h(record['receivedAt'])}</td>"
            f"<td>{len(entries) if isinstance(entries, list) else '-'}</td>"
            f"<td>{_h(response.get('status', response.get('httpStatus')))}</td>"
            f"<td>{_h(failed)}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def _faults_section(store: Store, code: str) -> str:
    back = "/?" + urlencode({"channel": code}) if code else "/"
    rows = "".join(
        f"<tr><td>{f['id']}</td><td>{_h(f['kind'])}</td><td>{_h(f['channel'] or 'all')}</td>"
        f"<td>{_h(f['method'] or '*')} {_h(f['path'])}</td><td>{_h(f['count'] or '-')}</td>"
        f"<td>{f['matched']}</td><td>{f['applied']}</td></tr>"
        for f in store.fault_list()
    )
    return (
        "<h2>Fault injection</h2><table><tr><th>id</th><th>kind</th><th>channel</th>"
        f"<th>where</th><th>count</th><th>matched</th><th>applied</th></tr>{rows}</table>"
        + _form(
            "/_control/faults",
            "kind "
            + _select("kind", KINDS)
            + f" channel <input name='channel' value='{_h(code)}' placeholder='all'>"
            " path <input name='path' value='*'> next N <input class='n' name='count' value='1'>"
            " status <input class='n' name='status'> delay s <input class='n' name='delay'>"
            " Retry-After <input class='n' name='retryAfter'> garbage "
            + _select("garbage", GARBAGE_MODES)
            + " item ids <input name='itemIds'> ",
            "Add fault",
            back,
        )
        + _form("/_control/faults/clear", "", "Clear all faults", back)
    )
