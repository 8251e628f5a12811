"""Local push delivery: what Cloud Pub/Sub push does, done by the local stack itself.

The emulator's own push (0.8.x, PushLoop) sleeps 100 ms whenever a subscription's backlog
is empty, so a webhook waited ~50 ms before its writer saw it, and it stopped redelivering
after several failed pushes at once. Cloud push does neither. So locally the writer
subscriptions are pull subscriptions (ops/provision.py) and this module pushes them:

- K long-poll pulls per subscription, each (re)issued at its own of K evenly spaced points
  of a 50 ms cycle: the emulator serves a pull from a task that looks at the backlog every
  50 ms from the pull's arrival, so a new message is seen within 50/K ms, whenever it comes;
- each message POSTed to its function's push endpoint in Pub/Sub's push JSON, at most the
  function's thread count at once, with the ack deadline as the timeout (as Cloud push);
- acknowledged on Cloud push's success codes; after anything else its ack deadline is set
  to the backoff Cloud push would wait after that attempt (the DeliveryPolicy's minimum,
  doubling per attempt, capped at its maximum), so the emulator redelivers it then, counts
  the attempt, and dead-letters it after the last one (whose deadline is 0: no wait).

The subscriptions carry no retry_policy: the emulator would add its own delay after each
expired deadline (measured: +2.8 to +5 s for a 2..8 s policy), and the wait is this one.
What is waiting for a retry is written to `.local/deliveries.json` for `ctower status`.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.provision import DeliveryPolicy, Route

log = logging.getLogger(__name__)

SUCCESS_CODES = frozenset({102, 200, 201, 202, 204})  # what Cloud push takes as acknowledged
PULLS_PER_SUBSCRIPTION = 8
EMULATOR_LOOK_SECONDS = 0.05  # the emulator's long-poll task looks at the backlog this often
SETTLE_BATCH = 1000  # ack ids per acknowledge call at most (a request's size is bounded)
PULL_SECONDS = 30.0  # a long poll's deadline; the emulator answers (empty) just before it

Post = Callable[[str, bytes, float], int | None]  # (url, body, timeout) -> HTTP status, None when no answer


def backoff_seconds(policy: DeliveryPolicy, attempt: int) -> int:
    """Cloud push's wait after failed delivery `attempt` (1-based): the minimum, doubling, capped."""
    return int(min(policy.max_backoff_seconds, max(1, policy.min_backoff_seconds) * 2 ** min(attempt - 1, 20)))


def retry_after(status: int | None, attempt: int, policy: DeliveryPolicy) -> int | None:
    """None to acknowledge; else the ack deadline that makes the emulator redeliver (0: dead-letter now)."""
    if status in SUCCESS_CODES:
        return None
    if attempt >= policy.max_delivery_attempts:
        return 0
    return backoff_seconds(policy, attempt)


def push_body(message: Any, subscription_path: str, attempt: int) -> bytes:
    """Pub/Sub's push JSON for one raw `PubsubMessage` (what functions-framework turns into a CloudEvent).

    The fields the emulator posted (both spellings of the id and time) plus deliveryAttempt,
    which Cloud push adds when the subscription has a dead-letter policy.
    """
    published = message.publish_time.ToJsonString()
    body = {"message": {"data": base64.b64encode(message.data).decode("ascii"),
                        "attributes": dict(message.attributes), "messageId": message.message_id,
                        "message_id": message.message_id, "publishTime": published, "publish_time": published},
            "subscription": subscription_path, "deliveryAttempt": attempt}
    return json.dumps(body, separators=(",", ":")).encode()


class HttpPoster:
    """POSTs JSON over one kept-alive connection per endpoint host; one per delivering thread."""

    def __init__(self) -> None:
        self._connections: dict[str, http.client.HTTPConnection] = {}

    def __call__(self, url: str, body: bytes, timeout: float) -> int | None:
        parts = urllib.parse.urlsplit(url)
        connection = self._connections.get(parts.netloc)
        reused = connection is not None
        if connection is None:
            connection = self._connections[parts.netloc] = http.client.HTTPConnection(parts.netloc)
        try:
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            connection.request("POST", parts.path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.will_close:
                self._drop(parts.netloc)
            return response.status
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self._drop(parts.netloc)
            # A kept-alive connection the server closed while idle: once more, on a new one.
            return self(url, body, timeout) if reused else None
        except (OSError, http.client.HTTPException):
            self._drop(parts.netloc)
            return None

    def _drop(self, netloc: str) -> None:
        connection = self._connections.pop(netloc, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


@dataclass
class _Retrying:
    subscription: str
    first_failed: float
    due: float  # when the emulator should deliver it again (epoch seconds)
    attempt: int
    answer: str


@dataclass
class _Function:
    """One function's deliveries: a queue its threads POST from, and how many messages it holds."""

    threads: int
    queue: queue.Queue[tuple[Route, Any, float] | None] = field(default_factory=queue.Queue)
    held: int = 0
    room: threading.Condition = field(default_factory=threading.Condition)


class Pusher:
    """Pulls every route's subscription and pushes what it gets; `start()`, then `stop()`."""

    def __init__(self, project: str, routes: list[Route], threads: int, subscriber: Any = None,
                 post: Callable[[], Post] = HttpPoster) -> None:
        self.project = project
        self.routes = routes
        self._subscriber = subscriber
        self._own_subscriber = subscriber is None
        self._post = post
        self._functions = {r.function: _Function(threads) for r in routes}
        self._stopping = threading.Event()
        self._epoch = time.monotonic()  # the pulls' places in the emulator's cycle count from here
        self._threads: list[threading.Thread] = []
        self._settlements: queue.Queue[tuple[str, int | None, str] | None] = queue.Queue()
        self._retrying: dict[str, _Retrying] = {}  # message id -> its failed delivery, until acked or dead-lettered
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._subscriber is None:
            from google.cloud import pubsub_v1

            self._subscriber = pubsub_v1.SubscriberClient()
        self._thread("settle", self._settle)
        for name, fn in self._functions.items():
            for i in range(fn.threads):
                self._thread(f"push-{name}-{i}", self._deliver, fn)
        for route in self.routes:
            for i in range(PULLS_PER_SUBSCRIPTION):
                self._thread(f"pull-{route.subscription}-{i}", self._pull, route, i)

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _path(self, route: Route) -> str:
        return f"projects/{self.project}/subscriptions/{route.subscription}"

    def _until_slot(self, slot: float) -> float:
        """Seconds until the `slot`th of K evenly spaced points of the emulator's 50 ms cycle.

        Each pull is (re)issued only at its own point, so the emulator's looks stay K to a
        cycle, evenly spaced, whenever messages come. Re-issued at once instead, a pull that
        took a message looks again just after the moment it came, and under traffic as regular
        as that cycle (20 webhooks/s) the pulls bunch up there: 17 ms at p50 instead of 3.
        """
        return (self._epoch + slot * EMULATOR_LOOK_SECONDS / PULLS_PER_SUBSCRIPTION - time.monotonic()) \
            % EMULATOR_LOOK_SECONDS

    def _pull(self, route: Route, slot: int) -> None:
        from google.api_core.exceptions import DeadlineExceeded
        from google.pubsub_v1.types import PullResponse

        fn = self._functions[route.function]
        if self._stopping.wait(self._until_slot(slot)):
            return
        while not self._stopping.is_set():
            with fn.room:  # pull no more than the function's threads can take on (their leases are running)
                while fn.held >= 2 * fn.threads and not self._stopping.is_set():
                    fn.room.wait(0.5)
            try:
                response = self._subscriber.pull(
                    request={"subscription": self._path(route), "max_messages": fn.threads},
                    timeout=PULL_SECONDS, retry=None)
            except DeadlineExceeded:
                continue
            except Exception as exc:
                if not self._stopping.is_set():
                    log.warning("pull of %s failed: %s: %s", route.subscription, type(exc).__name__, exc)
                    self._stopping.wait(1.0)
                continue
            received = PullResponse.pb(response).received_messages
            now = time.monotonic()
            with fn.room:
                fn.held += len(received)
            for message in received:
                fn.queue.put((route, message, now))
            if len(received) < fn.threads:  # drained: back to its own place in the cycle (a full batch: pull on)
                self._stopping.wait(self._until_slot(slot))

    def _deliver(self, fn: _Function) -> None:
        post = self._post()
        try:
            while (item := fn.queue.get()) is not None:
                route, received, pulled_at = item
                try:
                    self._push(post, route, received, pulled_at)
                finally:
                    with fn.room:
                        fn.held -= 1
                        fn.room.notify()
        finally:
            close = getattr(post, "close", None)
            if close is not None:
                close()

    def _push(self, post: Post, route: Route, received: Any, pulled_at: float) -> None:
        attempt = received.delivery_attempt or 1
        lease_left = route.policy.ack_deadline_seconds - (time.monotonic() - pulled_at)
        if lease_left <= 0.5 or self._stopping.is_set():
            return  # its lease ran out waiting (or the stack stops): the emulator delivers it again
        message = received.message
        status = post(route.endpoint, push_body(message, self._path(route), attempt), lease_left)
        wait = retry_after(status, attempt, route.policy)
        self._record(route, message.message_id, attempt, status, wait)
        self._settlements.put((self._path(route), wait, received.ack_id))

    def _settle(self) -> None:
        """Acknowledge (or set deadlines) for what the pushes decided, many ack ids per call."""
        while (first := self._settlements.get()) is not None:
            batch, done = [first], False
            while len(batch) < SETTLE_BATCH:
                try:
                    item = self._settlements.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                batch.append(item)
            groups: dict[tuple[str, int | None], list[str]] = {}
            for path, wait, ack_id in batch:
                groups.setdefault((path, wait), []).append(ack_id)
            for (path, wait), ack_ids in groups.items():
                try:
                    if wait is None:
                        self._subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
                    else:
                        self._subscriber.modify_ack_deadline(request={"subscription": path, "ack_ids": ack_ids,
                                                                      "ack_deadline_seconds": wait})
                except Exception as exc:  # the leases run out instead: delivered again, later or sooner
                    log.warning("settling %d delivery(ies) on %s failed: %s: %s", len(ack_ids), path,
                                type(exc).__name__, exc)
            if done:
                return

    def _record(self, route: Route, message_id: str, attempt: int, status: int | None, wait: int | None) -> None:
        with self._lock:
            if wait is None or wait == 0:  # delivered, or dead-lettered now
                self._retrying.pop(message_id, None)
                return
            now = time.time()
            known = self._retrying.get(message_id)
            self._retrying[message_id] = _Retrying(
                route.subscription, known.first_failed if known else now, now + wait, attempt,
                "no answer" if status is None else f"HTTP {status}")

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """What `ctower status` reads: per subscription, deliveries waiting for a retry, and the oldest's age."""
        now = time.time() if now is None else now
        subscriptions: dict[str, dict[str, Any]] = {}
        with self._lock:
            for message_id, r in list(self._retrying.items()):
                if now > r.due + 120:  # not delivered again long after it was due: settled elsewhere (a purge)
                    del self._retrying[message_id]
                    continue
                row = subscriptions.setdefault(r.subscription, {"retrying": 0, "oldest_failed_seconds": 0.0,
                                                                "last_answer": r.answer, "max_attempt": 0})
                row["retrying"] += 1
                row["oldest_failed_seconds"] = max(row["oldest_failed_seconds"], round(now - r.first_failed, 1))
                row["max_attempt"] = max(row["max_attempt"], r.attempt)
        return {"written_at": now, "subscriptions": subscriptions}

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    def stop(self) -> None:
        """Stop: pushes under way finish and are settled, then the outstanding pulls are cancelled."""
        self._stopping.set()
        for fn in self._functions.values():
            with fn.room:
                fn.room.notify_all()
            for _ in range(fn.threads):
                fn.queue.put(None)
        deadline = time.monotonic() + 10
        self._join("push-", deadline)
        self._settlements.put(None)
        self._join("settle", deadline)
        if self._own_subscriber and self._subscriber is not None:
            with contextlib.suppress(Exception):
                self._subscriber.close()  # cancels the long polls
        self._join("pull-", deadline)

    def _join(self, prefix: str, deadline: float) -> None:
        for thread in [t for t in self._threads if t.name.startswith(prefix)]:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
            self._threads.remove(thread)


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """The local stack's last snapshot, or None (no stack, or the cloud)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
