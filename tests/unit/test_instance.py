"""PerInstance: one object per function instance, even when the first requests race."""

from __future__ import annotations

import threading
import time

from shared.instance import PerInstance


def test_concurrent_first_requests_make_one_object() -> None:
    made: list[object] = []

    def make() -> object:
        time.sleep(0.05)  # long enough for every thread to arrive before the first one finishes
        made.append(object())
        return made[-1]

    one = PerInstance(make)
    start = threading.Barrier(8)
    got: list[object] = []

    def first_request() -> None:
        start.wait()
        got.append(one.get())

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(made) == 1 and got == made * 8


def test_reset_replaces_and_an_empty_reset_makes_afresh() -> None:
    counter = iter(range(100))
    one = PerInstance(lambda: next(counter))
    assert one.get() == 0 and one.get() == 0
    one.reset(42)
    assert one.get() == 42
    one.reset()
    assert one.get() == 1
