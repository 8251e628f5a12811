"""A network link on loopback: a TCP proxy to a local Postgres that delays every byte by a fixed time.

A writer here talks to Postgres over a unix socket, where a round trip costs ~50 us; a Cloud
Function talks to Cloud SQL over a network, where it costs 0.3-1 ms (docs/scaling.md). The
writers bench runs once more through this link, floor and writers alike, so the table shows
what the round trips cost where they are deployed. Latency only: nothing is throttled or lost,
and the order of the bytes is kept.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from shared.db import connect_kwargs


@contextmanager
def delayed_link(database_url: str, round_trip_ms: float) -> Iterator[str]:
    """A URL for the same database through a link that adds `round_trip_ms` to every round trip."""
    target = connect_kwargs(database_url)
    one_way = round_trip_ms / 2000.0
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def dial() -> socket.socket:
        if "unix_sock" in target:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(target["unix_sock"])
            return upstream
        return socket.create_connection((target["host"], target["port"]))

    def accept() -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = dial()
            for source, sink in ((client, upstream), (upstream, client)):
                _Direction(source, sink, one_way).start()

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    parsed = urlparse(database_url)
    user = parsed.username or "postgres"
    password = f":{parsed.password}" if parsed.password else ""
    try:
        yield f"postgresql://{user}{password}@127.0.0.1:{port}{parsed.path}"
    finally:
        stopping.set()
        listener.close()


class _Direction:
    """One direction of one connection: bytes read now are written `delay` seconds later, in order."""

    def __init__(self, source: socket.socket, sink: socket.socket, delay: float) -> None:
        self.source, self.sink, self.delay = source, sink, delay
        self.pending: queue.Queue[tuple[float, bytes]] = queue.Queue()

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := self.source.recv(65536):
                self.pending.put((time.monotonic() + self.delay, chunk))
        self.pending.put((0.0, b""))

    def _write(self) -> None:
        try:
            while True:
                due, chunk = self.pending.get()
                if not chunk:
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self.sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                self.sink.shutdown(socket.SHUT_WR)
