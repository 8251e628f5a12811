"""One object per function instance, made on first use: the pool, the publisher, the stores."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerInstance(Generic[T]):
    """Made once, on the first `get`, even when the first requests arrive together on several threads.

    A Cloud Functions instance serves concurrent requests on threads; two of them building a
    pool or a Pub/Sub client at once would leak one. `reset` replaces it (tests, settings changes).
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    value = self._value = self._make()
        return value

    def current(self) -> T | None:
        """The value if it was made, without making it (to close it, say)."""
        return self._value

    def reset(self, value: T | None = None) -> None:
        with self._lock:
            self._value = value
