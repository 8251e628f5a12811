"""`python -m bench.run` (`make bench`): every measurement against its floor, one table.

Starts what each measurement needs on free loopback ports in a temporary directory (its
own Postgres, its own emulator, its own stack), stops all of it, prints the table and
writes docs/benchmarks.md. Bounded: every load has a request count and a time limit.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import cli, cold_start, edge, end_to_end, link, machine, memory, redrive, report, stacks, writers
from bench.report import Row
from ops.localdb import migrated_embedded
from tests.traffic import tenants
from tests.traffic.stats import ratio


def _cold(rows: list[Row], runs: int) -> None:
    for figure in cold_start.measure(runs):
        rows.append(Row("cold start", figure.target, f"{figure.median_s * 1000:.0f} ms",
                        f"{figure.floor_s * 1000:.0f} ms", ratio(figure.median_s, figure.floor_s),
                        f"median of {figure.runs}; lower is better"))


LINK_ROUND_TRIP_MS = 0.5  # Cloud SQL over private IP in the function's region: 0.3-1 ms (docs/scaling.md)


def _writers(rows: list[Row], workdir: Path, count: int) -> None:
    """Each writer on the local socket, then again over a link with Cloud SQL's round trip (a database of its own)."""
    with migrated_embedded(workdir / "pg-writers", "bench_writers") as (_, url):
        _writer_rows(rows, writers.measure(url, count=count), "")
    with migrated_embedded(workdir / "pg-writers-link", "bench_writers") as (_, url), \
            link.delayed_link(url, LINK_ROUND_TRIP_MS) as linked:
        _writer_rows(rows, writers.measure(linked, count=count), f" (over a {LINK_ROUND_TRIP_MS} ms link)")


def _writer_rows(rows: list[Row], figures: list[writers.WriterFigure], where: str) -> None:
    floor = figures[0]
    for figure in figures:  # each against the floor measured in slices between its own
        rows.append(Row("writers", figure.name + where, f"{figure.per_second:.0f} env/s, "
                        f"{figure.statements:.1f} stmts, {figure.round_trips:.1f} rtt",
                        f"{figure.floor_per_second:.0f}/s, {floor.round_trips:.1f} rtt",
                        ratio(figure.per_second, figure.floor_per_second), f"n={figure.count}{_costs(figure.costs)}"))


def _costs(costs: writers.Costs | None) -> str:
    """Per envelope: this process's CPU, the Postgres backends' CPU and WAL bytes, then the floor's."""
    if costs is None:
        return ""

    def us(value: float | None) -> str:
        return "?" if value is None else f"{value:.0f}"

    return (f"; per envelope: client {us(costs.client_us)} us, server {us(costs.server_us)} us CPU, "
            f"WAL {costs.wal_bytes:.0f} B (floor {us(costs.floor_client_us)} / {us(costs.floor_server_us)} us, "
            f"{costs.floor_wal_bytes:.0f} B)")


def _edge_and_redrive(rows: list[Row], workdir: Path, log: object, requests: int) -> None:
    with stacks.emulator(workdir / "emulator", log) as stack:  # type: ignore[arg-type]
        figures = edge.measure(stack, workdir / "emulator", requests=requests)
        floor = figures[-1]
        for figure in figures:
            rows.append(Row("edge", figure.name, f"{figure.rps:.0f} req/s, p50 {figure.p50_ms:.1f} ms, "
                            f"p99 {figure.p99_ms:.1f} ms", f"{floor.rps:.0f} req/s", ratio(figure.rps, floor.rps),
                            f"{figure.ok}/{figure.sent} accepted, 8 connections"))
        moves = redrive.measure(stack, workdir)
        raw = moves[0]
        for move in moves:
            rows.append(Row("redrive", move.name, f"{move.per_second:.0f} msg/s", f"{raw.per_second:.0f} msg/s",
                            ratio(move.per_second, raw.per_second),
                            f"n={move.moved}; CPU per message: ours {move.own_cpu_us:.0f} us, "
                            f"the emulator's {move.emulator_cpu_us:.0f} us"))


def _end_to_end(rows: list[Row], workdir: Path, log: object, count: int) -> None:
    with stacks.environment(tenants.secret_env()), \
            stacks.full_stack(workdir / "stack", log) as stack:  # type: ignore[arg-type]
        assert stack.database_url and stack.tenants_file
        tenants.register(stack.database_url, stack.tenants_file)
        figure = end_to_end.measure(stack, tenants.TENANTS[0], count=count)
        footprints = memory.measure(stack)
    rows.append(Row("end to end", "webhook -> committed row", f"p50 {figure.p50_ms:.0f} ms, p99 {figure.p99_ms:.0f} ms",
                    f"202 p50 {figure.accept_p50_ms:.0f} ms, p99 {figure.accept_p99_ms:.0f} ms",
                    ratio(figure.p50_ms, figure.accept_p50_ms),
                    f"{figure.committed}/{figure.accepted} committed of {figure.sent}; ratio of p50s; stage p50s: "
                    f"to envelope {figure.to_envelope_p50_ms:.1f} ms, to the writer (publish, delivery) "
                    f"{figure.to_writer_p50_ms:.1f} ms, transaction to commit {figure.write_p50_ms:.1f} ms"))
    rows.append(Row("end to end", "of which: delivery alone (the stack's pusher)",
                    f"p50 {figure.push_p50_ms:.0f} ms, p99 {figure.push_p99_ms:.0f} ms", "", None,
                    "publish confirmed -> pushed to a bare endpoint by ops/pusher.py (8 long-poll pulls per "
                    "subscription at evenly spaced points of the emulator's 50 ms look cycle)"))
    for footprint in footprints:
        fits = "fits" if footprint.peak_mib <= memory.LIMIT_MIB else "OVER"
        rows.append(Row("memory", footprint.name, f"{footprint.peak_mib:.0f} MiB peak RSS",
                        f"{footprint.floor_mib:.0f} MiB", ratio(footprint.peak_mib, footprint.floor_mib),
                        f"{footprint.requests} requests; {fits} {memory.LIMIT_MIB} MiB; lower is better"))


def main(argv: list[str] | None = None) -> int:
    cli.stop_cleanly_on_sigterm()
    parser = cli.parser(__doc__, cold_runs=5, edge_requests=1500, writer_envelopes=300, e2e_requests=200)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--only", action="append", choices=["cold", "writers", "edge", "e2e"],
                        help="run only this step (repeatable; edge includes redrive); implies --no-write")
    args = parser.parse_args(argv)

    about = machine.describe()
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ct-bench-") as tmp:
        workdir = Path(tmp)
        with (workdir / "services.log").open("w", encoding="utf-8") as log:
            steps: dict[str, Callable[[], None]] = {
                "cold": lambda: _cold(rows, args.cold_runs),
                "writers": lambda: _writers(rows, workdir, args.writer_envelopes),
                "edge": lambda: _edge_and_redrive(rows, workdir, log, args.edge_requests),
                "e2e": lambda: _end_to_end(rows, workdir, log, args.e2e_requests)}
            for name, step in steps.items():
                if args.only and name not in args.only:
                    continue
                print(f"[bench] {name}...", file=sys.stderr, flush=True)
                step()
    about["bench duration"] = f"{time.monotonic() - started:.0f} s"
    table = report.render(rows)
    print("\n" + "\n".join(f"{k}: {v}" for k, v in about.items()) + "\n\n" + table)
    if not args.no_write and not args.only:
        report.write(rows, about, report.NOTES)
        print(f"written to {report.DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
