"""`python -m tools.tfplan [--second-plan] [--json-dir DIR] VARFILE ...`: the offline plan, one line per step.

Exit 0 only when init, validate and every plan pass (and, with --second-plan, every second plan
after an offline apply shows no changes).
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--json-dir", type=Path, help="write `terraform show -json` of each plan here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print Terraform's whole output")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
