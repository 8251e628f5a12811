"""`python -m tools.tfplan [--second-plan] [--json-dir DIR] VARFILE ...`: the offline plan, one line per step.

Exit 0 only when init, validate and every plan pass (and, with --second-plan, every second plan
after an offline apply shows no changes).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from tools.tfplan.run import REPO, OfflineTerraform, Step


def report(step: Step, verbose: bool, detail: str = "") -> bool:
    print(f"{step.name}: {'OK' if step.ok else 'FAILED'}{detail}")
    if not step.ok or verbose:
        print("    " + (step.output if verbose else step.first_error()).replace("\n", "\n    "))
    return step.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tfplan", description=__doc__.split("\n\n")[0])
    parser.add_argument("var_files", nargs="*", type=Path, metavar="VARFILE")
    parser.add_argument("--root", type=Path, default=REPO, help="repository holding terraform/ (default: this one)")
    parser.add_argument("--second-plan", action="store_true",
                        help="apply each plan offline, then plan again: it must show no changes")
    parser.add_argument("--refactor-from", metavar="REV",
                        help="apply git revision REV's configuration offline, then plan the work tree against that "
                             "state: it must only move resources (0 to add, change or destroy)")
    parser.add_argument("--json-dir", type=Path, help="write `terraform show -json` of each plan here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print Terraform's whole output")
    args = parser.parse_args(argv)
    if args.refactor_from:
        return refactor_check(args.root, args.refactor_from, args.var_files, args.verbose)
    with OfflineTerraform(args.root) as tf:
        if not report(tf.init(), args.verbose) or not report(tf.validate(), args.verbose):
            return 1
        ok = True
        for i, var_file in enumerate(args.var_files or [None]):
            plan_file = f"{i:02d}.tfplan"
            step = tf.plan(var_file, out=plan_file)
            counts = ", ".join(f"{n} to {k}" for k, n in step.counts.items())
            ok = report(step, args.verbose, f" ({counts})" if step.ok else "") and ok
            if not step.ok:
                continue
            if args.json_dir:
                args.json_dir.mkdir(parents=True, exist_ok=True)
                name = (var_file.stem if var_file else "no-var-file") + ".plan.json"
                (args.json_dir / name).write_text(json.dumps(tf.show_json(plan_file), indent=1))
            if args.second_plan:
                ok = report(tf.apply(plan_file, var_file), args.verbose) and ok
                again = tf.plan(var_file, refresh=True)
                again.name = "second " + again.name
                if again.ok and again.counts.get("add", 0) + again.counts.get("change", 0) + again.counts.get(
                        "destroy", 0):
                    again.returncode = 1
                ok = report(again, args.verbose, " (no changes)" if again.ok else "") and ok
    return 0 if ok else 1


def refactor_check(root: Path, revision: str, var_files: list[Path], verbose: bool) -> int:
    """Deploy `revision` offline per var file, then plan the work tree on it: moves only, or it fails."""
    ok = True
    for var_file in var_files or [None]:  # type: ignore[list-item]
        with OfflineTerraform(root, revision=revision) as tf:
            if not report(tf.init(), verbose) or not report(tf.plan(var_file, out="old.tfplan"), verbose):
                return 1
            if not report(tf.apply("old.tfplan", var_file), verbose) or not report(tf.take_work_tree(), verbose):
                return 1
            step = tf.plan(var_file, refresh=True)
            moved = len(re.findall(r" has moved to ", step.output))
            step.name = f"work tree on {revision} ({var_file.name if var_file else 'no var file'})"
            if step.ok and any(step.counts.get(k, 0) for k in ("add", "change", "destroy")):
                step.returncode = 1
            ok = report(step, verbose or not step.ok, f" ({moved} moved, nothing else)" if step.ok else "") and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
