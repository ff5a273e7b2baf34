"""Producing the next items of an iterator in a thread while the caller works on this one.

The order import alternates between parsing the file (Python) and writing a batch of orders
(where the process mostly waits for PostgreSQL, which runs on another core). Parsing the next
batches while the database writes the current one keeps both cores busy: `read_ahead` runs
the iterator in a thread, a few items ahead, and hands them over in order.

The iterator must not use the database: the thread would have a connection of its own,
which cannot see the caller's transaction (nor a test's). Exceptions it raises reach the
caller at the item where they happened; when the caller stops early, the thread stops too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()
_POLL_SECONDS = 0.1


def read_ahead(items: Iterable[T], *, depth: int = 2) -> Iterator[T]:
    """Yield the items of `items`, produced by a thread at most `depth` items ahead."""
    handover: queue.Queue = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(entry) -> bool:
        while not stopped.is_set():
            try:
                handover.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the caller, raised there
            put((_END, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = handover.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stopped.set()
        thread.join()
