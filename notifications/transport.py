"""Sending one push to a channel, one attempt per call: the outbox decides about retries.

The channel adapter (`channels.adapters`) retries inside a call, sleeping between tries, and
reports failures as exceptions without the HTTP status or the reply. The outbox needs the
opposite: exactly one try, every detail of it (status, reply, error) to record, the retry
scheduled in the database, and enough speed for thousands of notifications a second. So:

- `ContractClient` speaks the plain channel contract (channel-api.md) over `http.client`
  keep-alive connections, one per thread and channel, kept across batches (pooled). It is
  used for every channel whose adapter speaks that contract unchanged (`HttpChannelAdapter`
  and the marketplace types that inherit its pushes): auth token in `apiKey`, one
  re-authentication on a 401, the `Idempotency-Key` header.
- `AdapterClient` is the fallback for an adapter that translates the pushes to a
  marketplace's own API: it calls the adapter's `post_*` methods with `max_attempts=1` and
  turns its exceptions into the same `Reply`.
"""

from __future__ import annotations

import dataclasses
import http.client
import inspect
import json
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from channels.adapters import (
    ChannelAuthError,
    ChannelConfig,
    ChannelError,
    ChannelReplyError,
    ChannelRequestError,
    ChannelUnavailable,
    HttpChannelAdapter,
    adapter_class,
)
from channels.adapters.http import retry_after_seconds
from uniware.core.secrets import scrub

from .models import NotificationKind

REPLY_LIMIT = 2000  # characters of a reply kept per attempt


@dataclass
class Reply:
    """What one attempt got: an HTTP reply (`status`, `text`), or a failure before one
    (`error`, with `transient` saying whether retrying can help)."""

    status: int | None = None
    text: str = ""
    error: str = ""
    transient: bool = False
    retry_after: float | None = None
    parsed: tuple[str, list[tuple[str, str]], str] | None = None  # AdapterClient only


class TransportError(Exception):
    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


def push_path(kind: str, channel_order_id: str) -> str:
    if kind == NotificationKind.STATUS:
        return f"/order/{quote(channel_order_id, safe='')}"
    if kind == NotificationKind.CANCEL:
        return "/orders/cancel"
    return "/orders/dispatch"


class Connection:
    """A lean HTTP/1.1 keep-alive connection: the request in one write, the reply read through
    a buffer (http.client parses headers with the email package and writes head and body
    separately: half the rate on small requests)."""

    def __init__(
        self, host: str, port: int, *, https: bool, connect_timeout: float, timeout: float
    ) -> None:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if https:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.reader = sock.makefile("rb")
        default_port = 443 if https else 80
        self.host_header = host if port == default_port else f"{host}:{port}"
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.reader.close()
            self.sock.close()

    def exchange(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} has a line break")
            lines.append(f"{name}: {value}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(head + body if body else head)
        while True:  # skip interim 1xx replies
            status, version, reply_headers = self._read_head()
            if not 100 <= status < 200:
                break
        if method == "HEAD" or status in (204, 304):
            data = b""
        elif "chunked" in reply_headers.get("transfer-encoding", "").lower():
            data = self._read_chunked()
        elif "content-length" in reply_headers:
            length = int(reply_headers["content-length"])
            data = self.reader.read(length)
            if len(data) < length:
                raise http.client.IncompleteRead(data, length - len(data))
        else:  # the body ends with the connection
            data = self.reader.read()
            self.close()
        connection = reply_headers.get("connection", "").lower()
        if connection == "close" or (version == b"HTTP/1.0" and connection != "keep-alive"):
            self.close()
        return status, reply_headers, data

    def _read_head(self) -> tuple[int, bytes, dict[str, str]]:
        line = self.reader.readline(65537)
        if not line:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise http.client.BadStatusLine(line.decode("latin-1", "replace")[:100])
        headers: dict[str, str] = {}
        while True:
            line = self.reader.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
            if len(headers) > 100:
                raise http.client.HTTPException("more than 100 headers")
        return int(parts[1]), parts[0], headers

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size_line = self.reader.readline(65537)
            if not size_line:
                raise http.client.IncompleteRead(b"".join(chunks))
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.reader.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunk = self.reader.read(size)
            if len(chunk) < size:
                raise http.client.IncompleteRead(b"".join(chunks) + chunk)
            chunks.append(chunk)
            self.reader.readline(65537)  # the CRLF after the chunk


class ContractClient:
    """The contract's pushes over pooled keep-alive connections (thread-safe: a connection
    per thread, one token shared)."""

    def __init__(self, config: ChannelConfig) -> None:
        parts = urlsplit(config.base_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChannelError(
                f"Channel {config.code}: base URL {config.base_url!r} is not an http(s) URL"
            )
        self.config = config
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self._local = threading.local()
        self._open: set[Connection] = set()  # every thread's, for close()
        self._open_lock = threading.Lock()
        self._token: str | None = None
        self._token_lock = threading.Lock()

    # --- connections ---------------------------------------------------------------------

    def _connection(self) -> tuple[Connection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn, True
        try:
            conn = Connection(
                self.host,
                self.port,
                https=self.https,
                connect_timeout=self.config.connect_timeout,
                timeout=self.config.timeout,
            )
        except TimeoutError as exc:
            raise TransportError(
                f"connection timeout after {self.config.connect_timeout:g} s", transient=True
            ) from exc
        except OSError as exc:
            raise TransportError(
                f"connection error ({type(exc).__name__}: {exc})", transient=True
            ) from exc
        self._local.conn = conn
        with self._open_lock:
            self._open.add(conn)
        return conn, False

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            with self._open_lock:
                self._open.discard(conn)
        self._local.conn = None

    def close(self) -> None:
        """Close the connections of every thread (each reconnects on its next request)."""
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            conn.close()

    def request(self, method: str, path: str, body: bytes | None, headers: dict) -> Reply:
        """One HTTP exchange. A kept-alive connection the channel closed meanwhile is
        reopened once (safe: pushes carry an idempotency key)."""
        for attempt in (1, 2):
            conn, reused = self._connection()
            try:
                status, reply_headers, data = conn.exchange(
                    method, self.prefix + path, body, headers
                )
            except TimeoutError as exc:
                self._drop()
                raise TransportError(
                    f"timeout after {self.config.timeout:g} s", transient=True
                ) from exc
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
                ConnectionAbortedError,
            ) as exc:
                self._drop()
                if reused and attempt == 1:
                    continue
                raise TransportError(
                    f"connection error ({type(exc).__name__}: the channel closed the "
                    "connection without a reply)",
                    transient=True,
                ) from exc
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._drop()
                raise TransportError(
                    f"connection error ({type(exc).__name__}: {exc})", transient=True
                ) from exc
            if conn.closed:
                self._drop()
            return Reply(
                status=status,
                text=data.decode("utf-8", errors="replace"),
                retry_after=retry_after_seconds(reply_headers.get("retry-after")),
            )
        raise AssertionError("unreachable")

    # --- the contract --------------------------------------------------------------------

    def authenticate(self) -> str:
        """A new token. The query carries the password and a reply may echo it: its errors
        (which become attempt records) are scrubbed of it."""
        try:
            return self._authenticate()
        except TransportError as exc:
            message = scrub(str(exc), [self.config.password])
            raise TransportError(message, transient=exc.transient, status=exc.status) from None

    def _authenticate(self) -> str:
        query = urlencode({"username": self.config.username, "password": self.config.password})
        reply = self.request("GET", f"/authToken?{query}", None, {"Accept": "application/json"})
        what = f"Channel {self.config.code}: authentication"
        if reply.status == 401:
            raise TransportError(
                f"{what} failed: the channel refused the username or password",
                transient=False,
                status=401,
            )
        if reply.status == 429 or (reply.status or 0) >= 500:
            raise TransportError(
                f"{what}: HTTP {reply.status}", transient=True, status=reply.status
            )
        try:
            data = json.loads(reply.text)
        except ValueError:
            data = None
        if reply.status != 200 or not isinstance(data, dict):
            raise TransportError(
                f"{what}: unexpected reply HTTP {reply.status}: {reply.text[:200]}",
                transient=False,
                status=reply.status,
            )
        if data.get("status") != "SUCCESS":
            raise TransportError(
                f"{what} failed: the channel refused the username or password",
                transient=False,
                status=reply.status,
            )
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            raise TransportError(f"{what}: no accessToken in the reply", transient=False)
        self._token = token
        return token

    def _token_now(self, stale: str | None = None) -> str:
        with self._token_lock:
            if self._token is None or self._token == stale:
                return self.authenticate()
            return self._token

    def push(self, kind: str, channel_order_id: str, body: dict, key: str) -> Reply:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        path = push_path(kind, channel_order_id)
        token = self._token_now()
        for _ in range(2):
            headers = {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "apiKey": token,
                "Idempotency-Key": key,
            }
            reply = self.request("POST", path, data, headers)
            if reply.status != 401:
                return reply
            token = self._token_now(stale=token)  # expired: authenticate again once
        reply.error = "HTTP 401 again right after re-authenticating"
        return reply


class AdapterClient:
    """An adapter that translates pushes to a marketplace's own API: one try through it."""

    def __init__(self, config: ChannelConfig) -> None:
        single = dataclasses.replace(config, max_attempts=1)
        self.adapter = adapter_class(config.channel_type)(single)

    def close(self) -> None:
        self.adapter.close()

    def push(self, kind: str, channel_order_id: str, body: dict, key: str) -> Reply:
        if kind == NotificationKind.STATUS:
            method, args = (
                self.adapter.post_status_notification,
                (
                    channel_order_id,
                    body["orderItems"],
                ),
            )
        elif kind == NotificationKind.CANCEL:
            method, args = self.adapter.post_cancel, (body,)
        else:
            method, args = self.adapter.post_dispatch, (body,)
        kwargs = {"key": key} if "key" in inspect.signature(method).parameters else {}
        try:
            result = method(*args, **kwargs)
        except ChannelUnavailable as exc:
            return Reply(error=str(exc), transient=True)
        except ChannelReplyError as exc:
            return Reply(status=200, error=str(exc))
        except (ChannelAuthError, ChannelRequestError, ChannelError, NotImplementedError) as exc:
            return Reply(error=str(exc))
        failed = [(str(i), str(m)) for i, m in result.failed]
        return Reply(status=200, parsed=(result.status, failed, result.error))


def speaks_contract(channel_type: str) -> bool:
    """True when the type's adapter sends the pushes exactly as HttpChannelAdapter does."""
    cls = adapter_class(channel_type)
    if not issubclass(cls, HttpChannelAdapter):
        return False
    names = ("post_status_notification", "post_cancel", "post_dispatch", "_push", "_call")
    return all(getattr(cls, n) is getattr(HttpChannelAdapter, n) for n in names)


_clients: dict[int, tuple[ChannelConfig, Any]] = {}
_clients_lock = threading.Lock()
_clients_pid = os.getpid()


def client_for(channel: Any) -> ContractClient | AdapterClient:
    """The process's client of a channel, kept while the channel's settings are unchanged so
    its connections and token serve every batch."""
    global _clients_pid
    config = ChannelConfig.of(channel)
    with _clients_lock:
        if _clients_pid != os.getpid():  # a forked process: the parent's sockets are not ours
            _clients.clear()
            _clients_pid = os.getpid()
        cached = _clients.get(channel.pk)
        if cached is not None and cached[0] == config:
            return cached[1]
        if cached is not None:
            cached[1].close()
        cls = ContractClient if speaks_contract(config.channel_type) else AdapterClient
        client = cls(config)
        _clients[channel.pk] = (config, client)
        return client


def forget_clients() -> None:
    """Close every pooled connection (tests; a worker that forks)."""
    with _clients_lock:
        for _, client in _clients.values():
            client.close()
        _clients.clear()
