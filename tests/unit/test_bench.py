"""The bench's own arithmetic and webhook mix (pure: no stack)."""

from __future__ import annotations

from collections import Counter

from bench.sources import SOURCES, plan
from bench.stats import percentile, ratio


def test_percentile_is_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([], 50) == 0.0
    assert ratio(3.0, 0.0) == 0.0 and ratio(3.0, 2.0) == 1.5


def test_the_soak_plan_has_exact_resends_placed_after_their_original() -> None:
    planned = plan(1000, 0.10, seed=3)
    assert len(planned) == 1000
    resends = [p for p in planned if p.duplicate]
    assert len(resends) == 100
    first_seen: dict[tuple[str, str, int], int] = {}
    for i, p in enumerate(planned):
        key = (p.source.name, p.tenant, p.serial)
        if not p.duplicate:
            assert key not in first_seen  # every distinct webhook once
            first_seen[key] = i
        else:
            assert first_seen[key] < i  # a resend comes after what it repeats
    assert {p.source.name for p in planned} == {s.name for s in SOURCES}
    by_tenant = Counter(p.tenant for p in planned if p.source.per_tenant)
    assert len(by_tenant) > 1  # several tenants


def test_the_same_serial_builds_the_same_webhook_and_distinct_serials_differ() -> None:
    for source in SOURCES:
        assert source.build(7, "pisos-sp") == source.build(7, "pisos-sp")
        assert source.build(7, "pisos-sp").body != source.build(8, "pisos-sp").body
