"""The HTTP side: channel endpoints under /ch/<CODE>/, control endpoints under /_control/, a page.

Standard library only (ThreadingHTTPServer), HTTP/1.1 keep-alive, bound to loopback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .contract import (
    IST,
    ORDER_STATUSES,
    ContractError,
    as_int,
    as_list,
    choice,
    iso,
    parse_iso,
)
from .faults import FaultRule, fault_reply
from .generate import seed_demo as load_demo_orders
from .native import DIALECTS, NativeRequest
from .page import render_page
from .store import Store

log = logging.getLogger("simulator")

LOOPBACK = ("127.0.0.1", "localhost")
MAX_BODY = 64 * 1024 * 1024
MAX_PAGE_SIZE = 10_000
RECEIVED_BY_PATH = {
    "/orders/cancel": "cancels",
    "/orders/dispatch": "dispatches",
    "/updateInventory": "inventory",
}
CHANNEL_PATHS = {
    "/authToken": "GET",
    "/orders": "GET",
    "/orders/cancel": "POST",
    "/orders/dispatch": "POST",
    "/updateInventory": "POST",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    store: Store
    verbose: bool


Reply = tuple[int, Any, dict[str, str]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ChannelSimulator/1.0"
    disable_nagle_algorithm = True  # no 40 ms stalls between replies on a kept-alive socket
    timeout = 120  # an idle kept-alive connection frees its thread after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base signature)
        if self.server.verbose:
            log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    # -- plumbing ------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.is_form = False
        try:
            raw = self._read_body()
            path = url.path
            if path.startswith("/ch/"):
                self._channel_request(method, path, url.query, raw)
            elif path.split("/", 2)[1] in DIALECTS:
                self._native_request(method, path, url.query, raw)
            elif path == "/_control" or path.startswith("/_control/"):
                self._control(method, path[len("/_control") :].rstrip("/"), raw)
            elif path in ("/", "/index.html") and method == "GET":
                page = render_page(self.server.store, self._q, self.headers.get("Host", ""))
                self._send(200, page, {}, "text/html")
            else:
                raise ContractError(f"no such path: {method} {path}", status=404)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; nothing to answer
        except ContractError as error:
            if self.is_form:
                page = f"<p>{_escape(str(error))}</p><p><a href='/'>back</a></p>"
                self._send(error.status, page, {}, "text/html")
            else:
                self._send(error.status, {"status": "FAILED", "error": str(error)})
        except Exception as error:  # a bug here must not kill the connection silently
            log.exception("simulator error on %s %s", method, self.path)
            self._send(500, {"status": "FAILED", "error": f"simulator bug: {error!r}"})

    def _q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                raise ContractError("send a Content-Length, chunked bodies are not read", 411)
            return b""
        decided = self.close_connection
        self.close_connection = True  # until the body is read: a refusal leaves it unread
        size = as_int(length, "Content-Length", 0)
        if size > MAX_BODY:
            raise ContractError(f"body of {size} bytes is over {MAX_BODY}", 413)
        body = self.rfile.read(size)
        self.close_connection = decided
        return body

    def _body(self, raw: bytes, form_ok: bool = False) -> Any:
        """The JSON body (None when empty); a control form post gives its non-empty fields."""
        is_form = form_ok and self.headers.get("Content-Type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        if is_form and raw.lstrip()[:1] not in (b"{", b"["):  # `curl -d '{...}'` sends JSON so
            self.is_form = True
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            return {key: values[-1] for key, values in form.items() if values[-1] != ""}
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ContractError(f"the body is not valid JSON ({error})") from None

    def _send(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        if status == 204:
            body = b""  # No Content: no body, whatever the payload
        elif isinstance(payload, bytes):
            body = payload
        elif isinstance(payload, str):
            body = payload.encode("utf-8")
        else:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # end_headers() plus the body in one write: half the syscalls of header, then body
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()

    # -- the channel API -----------------------------------------------------------------

    def _channel_request(self, method: str, path: str, query: str, raw: bytes) -> None:
        store = self.server.store
        code, _, rest = path[len("/ch/") :].partition("/")
        code, sub = unquote(code), "/" + rest
        if not store.has_channel(code):
            raise ContractError(f"channel {code!r} is unknown", status=404)
        started = time.perf_counter()
        delay, rule = store.pick_faults(code, method, sub)
        if delay:
            time.sleep(delay)
        reply: Reply | None = None
        if rule is None or rule.apply == "after":
            try:
                reply = self._channel_call(method, code, sub, raw)
            except ContractError as error:
                reply = (error.status, {"status": "FAILED", "error": str(error)}, {})
        if rule is not None:
            reply = None if rule.kind == "disconnect" else _fault(rule)
        entry = {
            "at": iso(store.now()),
            "method": method,
            "path": sub,
            "query": query,
            "status": reply[0] if reply else 0,
            "fault": rule.kind if rule else ("slow" if delay else None),
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        store.log_request(code, entry)  # before replying: a test may look right after the reply
        if reply is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload, headers = reply
        content_type = headers.pop("Content-Type", "application/json")
        self._send(status, payload, headers, content_type)

    def _native_request(self, method: str, path: str, query: str, raw: bytes) -> None:
        """A request to a marketplace's own API (`simulator.native`): faults by the contract
        operation it stands for, logged like the contract's (with the dialect's notes)."""
        store = self.server.store
        _, name, code, rest = (path.split("/", 3) + [""])[:4]
        dialect, code = DIALECTS[name], unquote(code)
        if not store.has_channel(code):
            raise ContractError(f"channel {code!r} is unknown", status=404)
        request = NativeRequest(store, code, method, "/" + rest, self.query, self.headers, raw)
        started = time.perf_counter()
        op_method, op_path = dialect.operation(request)
        delay, rule = store.pick_faults(code, op_method, op_path)
        if delay:
            time.sleep(delay)
        reply: Reply | None = None
        if rule is None or rule.apply == "after":
            reply = dialect.call(request)
        if rule is not None:
            reply = None if rule.kind == "disconnect" else dialect.fault(rule, _fault(rule))
        entry = {
            "at": iso(store.now()),
            "method": method,
            "path": request.path,
            "query": query,
            "dialect": name,
            "operation": op_path,
            **request.notes,
            "status": reply[0] if reply else 0,
            "fault": rule.kind if rule else ("slow" if delay else None),
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        store.log_request(code, entry)
        if reply is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload, headers = reply
        content_type = headers.pop("Content-Type", "application/json")
        self._send(status, payload, dict(headers), content_type)

    def _channel_call(self, method: str, code: str, sub: str, raw: bytes) -> Reply:
        store = self.server.store
        expected = "POST" if sub.startswith("/order/") else CHANNEL_PATHS.get(sub)
        if expected is None:
            raise ContractError(f"no such channel path: {sub}", status=404)
        if method != expected:
            raise ContractError(f"{sub} takes {expected}, not {method}", status=405)
        if sub == "/authToken":
            token = store.authenticate(code, self._q("username"), self._q("password"))
            if token:
                return 200, {"status": "SUCCESS", "accessToken": token}, {}
            status = 401 if store.channels[code].auth_failure == "http" else 200
            return status, {"status": "FAILED", "error": "invalid username or password"}, {}
        problem = store.token_problem(code, self.headers.get("apiKey"))
        if problem:
            return 401, {"status": "FAILED", "error": problem}, {}
        if sub == "/orders":
            return 200, {"orders": self._orders(code)}, {}
        headers = dict(self.headers.items())
        key = self.headers.get("Idempotency-Key")
        order_id = unquote(sub[len("/order/") :]) if sub.startswith("/order/") else None
        if order_id is not None and (not order_id or "/" in order_id):
            raise ContractError(f"no such channel path: {sub}", status=404)
        try:
            body = self._body(raw)
        except ContractError as error:  # recorded too: what a client sent is what tests check
            kind = RECEIVED_BY_PATH.get(sub, "notifications")
            text = raw.decode("utf-8", "replace")
            store.record_rejected(code, kind, {"orderId": order_id}, headers, key, text, error)
            raise
        if order_id is not None:
            return 200, store.notify(code, order_id, body, headers, key), {}
        if sub == "/orders/cancel":
            return 200, store.cancel(code, body, headers, key), {}
        if sub == "/orders/dispatch":
            return 200, store.dispatch(code, body, headers, key), {}
        return 200, store.update_inventory(code, body, headers, key), {}

    def _orders(self, code: str) -> list[dict]:
        page_size = as_int(self._q("pageSize", "50"), "pageSize", 1, MAX_PAGE_SIZE)
        page_number = as_int(self._q("pageNumber", "1"), "pageNumber", 1)
        ids = self._q("orderIds")
        if ids is not None:
            order_ids = as_list(ids, "orderIds")
            if not order_ids:
                raise ContractError("orderIds is empty")
            if len(order_ids) > page_size:
                raise ContractError(
                    f"orderIds: {len(order_ids)} ids, more than pageSize {page_size}"
                )
            return self.server.store.orders_by_ids(code, order_ids) if page_number == 1 else []
        date_from, date_to = self._q("orderDateFrom"), self._q("orderDateTo")
        statuses = {
            choice(s, ORDER_STATUSES, "orderStatus")
            for s in as_list(self._q("orderStatus", ""), "orderStatus")
        }
        return self.server.store.orders_page(
            code,
            page_size,
            page_number,
            parse_iso(date_from, "orderDateFrom") if date_from else None,
            parse_iso(date_to, "orderDateTo") if date_to else None,
            statuses or None,
        )

    # -- control API ---------------------------------------------------------------------

    def _control(self, method: str, path: str, raw: bytes) -> None:
        for route_method, pattern, handler in CONTROL_ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                args = {k: unquote(v) for k, v in match.groupdict().items()}
                body = self._body(raw, form_ok=True) if method in ("POST", "PUT") else None
                nxt = body.pop("next", None) if self.is_form and isinstance(body, dict) else None
                result = handler(self, body, **args)
                if self.is_form:
                    location = nxt if isinstance(nxt, str) and nxt.startswith("/") else "/"
                    self._send(303, f"see {location}", {"Location": location}, "text/plain")
                else:
                    self._send(200, result)
                return
        known = [m for m, p, _ in CONTROL_ROUTES if p.fullmatch(path)]
        if known:
            raise ContractError(f"/_control{path} takes {', '.join(known)}", status=405)
        raise ContractError(f"no such control path: /_control{path}", status=404)

    def c_help(self, body: Any) -> dict:
        routes = [f"{m} /_control{p.pattern}" for m, p, _ in CONTROL_ROUTES]
        return {"routes": [re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", r) for r in routes]}

    def c_state(self, body: Any) -> dict:
        return self.server.store.snapshot()

    def c_reset(self, body: Any) -> dict:
        self.server.store.reset()
        return {"status": "SUCCESS"}

    def c_save(self, body: Any) -> dict:
        return {"status": "SUCCESS", "file": str(self.server.store.save())}

    def c_channels(self, body: Any) -> list:
        return self.server.store.channel_list()

    def c_channel_add(self, body: Any) -> Any:
        store = self.server.store
        if isinstance(body, list):
            return [store.add_channel_from_dict(_object(raw, "channel")) for raw in body]
        return store.add_channel_from_dict(_object(body, "channel"))

    def c_channel_get(self, body: Any, code: str) -> dict:
        return self.server.store.channel_info(code)

    def c_orders_list(self, body: Any, code: str) -> dict:
        return {"orders": self.server.store.all_orders(code)}

    def c_orders_put(self, body: Any, code: str) -> dict:
        if isinstance(body, dict) and "orders" in body:
            body = body["orders"]
        orders = body if isinstance(body, list) else [_object(body, "order")]
        return {"ids": self.server.store.put_orders(code, orders)}

    def c_orders_generate(self, body: Any, code: str) -> dict:
        return {"ids": self.server.store.generate_from_dict(code, _object(body or {}, "generate"))}

    def c_order_get(self, body: Any, code: str, order_id: str) -> dict:
        return self.server.store.get_order(code, order_id)

    def c_order_status(self, body: Any, code: str, order_id: str) -> dict:
        change = {**_object(body, "status change"), "orderId": order_id}
        self.server.store.apply_changes(code, [change])
        return self.server.store.get_order(code, order_id)

    def c_item_status(self, body: Any, code: str, order_id: str, item_id: str) -> dict:
        change = {**_object(body, "status change"), "orderId": order_id, "orderItemId": item_id}
        self.server.store.apply_changes(code, [change])
        return self.server.store.get_order(code, order_id)

    def c_changes(self, body: Any, code: str) -> dict:
        body = _object(body, "status changes")
        changes = body.get("changes")
        if changes is None and "orderIds" in body:  # one change applied to many orders
            common = {k: v for k, v in body.items() if k != "orderIds"}
            changes = [{**common, "orderId": oid} for oid in as_list(body["orderIds"], "orderIds")]
        return self.server.store.apply_changes(code, changes)

    def c_received(self, body: Any, code: str) -> dict:
        since = as_int(self._q("since", "0"), "since", 0)
        return self.server.store.received(code, self._q("kind") or None, since)

    def c_requests(self, body: Any, code: str) -> dict:
        since = as_int(self._q("since", "0"), "since", 0)
        return {"requests": self.server.store.requests(code, since)}

    def c_expire_tokens(self, body: Any, code: str) -> dict:
        return {"expired": self.server.store.expire_tokens(code)}

    def c_faults(self, body: Any) -> dict:
        return {"faults": self.server.store.fault_list()}

    def c_fault_add(self, body: Any) -> Any:
        store = self.server.store
        if isinstance(body, list):
            return [store.add_fault(_object(raw, "fault")) for raw in body]
        return store.add_fault(_object(body, "fault"))

    def c_faults_clear(self, body: Any) -> dict:
        channel = self._q("channel") or (body or {}).get("channel") or None
        return {"removed": self.server.store.clear_faults(channel)}

    def c_fault_remove(self, body: Any, fault_id: str) -> dict:
        self.server.store.remove_fault(int(fault_id))
        return {"removed": 1}


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ContractError(f"{what}: the body must be a JSON object, got {value!r}")
    return value


def _fault(rule: FaultRule) -> Reply:
    status, headers, body = fault_reply(rule)
    return status, body, headers


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_C = r"/channels/(?P<code>[^/]+)"
_O = _C + r"/orders/(?P<order_id>[^/]+)"
CONTROL_ROUTES: list[tuple[str, re.Pattern, Callable[..., Any]]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("GET", r"", _Handler.c_help),
        ("GET", r"/state", _Handler.c_state),
        ("POST", r"/reset", _Handler.c_reset),
        ("POST", r"/save", _Handler.c_save),
        ("GET", r"/channels", _Handler.c_channels),
        ("POST", r"/channels", _Handler.c_channel_add),
        ("GET", _C, _Handler.c_channel_get),
        ("GET", _C + r"/orders", _Handler.c_orders_list),
        ("POST", _C + r"/orders", _Handler.c_orders_put),
        ("POST", _C + r"/orders/generate", _Handler.c_orders_generate),
        ("GET", _O, _Handler.c_order_get),
        ("POST", _O + r"/status", _Handler.c_order_status),
        ("POST", _O + r"/items/(?P<item_id>[^/]+)/status", _Handler.c_item_status),
        ("POST", _C + r"/status-changes", _Handler.c_changes),
        ("GET", _C + r"/received", _Handler.c_received),
        ("GET", _C + r"/requests", _Handler.c_requests),
        ("POST", _C + r"/expire-tokens", _Handler.c_expire_tokens),
        ("GET", r"/faults", _Handler.c_faults),
        ("POST", r"/faults", _Handler.c_fault_add),
        ("DELETE", r"/faults", _Handler.c_faults_clear),
        ("POST", r"/faults/clear", _Handler.c_faults_clear),
        ("DELETE", r"/faults/(?P<fault_id>\d+)", _Handler.c_fault_remove),
    ]
]


class SimulatorServer:
    """The simulator on 127.0.0.1, in a background thread (`start`) or the caller's (`serve`).

    `with SimulatorServer(port=0) as sim:` picks a free port; `sim.url`, `sim.channel_url(code)`
    and `sim.store` (the state, for direct set-up and inspection) are then ready.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        state_path: str | None = None,
        seed_demo: bool = False,
        store: Store | None = None,
        verbose: bool = False,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the simulator binds to loopback only, not {host!r}")
        self.host = "127.0.0.1"
        self.port = port
        self.store = store or Store(state_path=state_path, tz=IST)
        if seed_demo:
            load_demo_orders(self.store)
        self.verbose = verbose
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def _bind(self) -> _Server:
        httpd = _Server((self.host, self.port), _Handler)
        httpd.store = self.store
        httpd.verbose = self.verbose
        self.port = httpd.server_address[1]
        self._httpd = httpd
        return httpd

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def channel_url(self, code: str) -> str:
        """The base URL to configure on the back-office's channel."""
        return f"{self.url}/ch/{code}"

    def native_url(self, dialect: str, code: str) -> str:
        """The base URL of a channel's orders in a marketplace's own API (`simulator.native`)."""
        return f"{self.url}/{dialect}/{code}"

    def start(self) -> SimulatorServer:
        httpd = self._bind()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="sim-http"
        )
        self._thread.start()
        return self

    def serve(self) -> None:
        """Serve in the calling thread until `stop()` (from another thread) or Ctrl-C."""
        httpd = self._httpd or self._bind()
        try:
            httpd.serve_forever(poll_interval=0.2)
        finally:
            httpd.server_close()
            self.store.close()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.store.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
