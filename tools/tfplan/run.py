"""Run real `terraform init / validate / plan` on terraform/ against the offline provider.

Why: the google provider cannot be downloaded on our machines or in CI, so without this the
configuration would meet `plan` for the first time in a user's empty project. Terraform reattaches
to providers served in this process (TF_REATTACH_PROVIDERS over unix sockets) and checks the
configuration exactly as it would online, short of what only the Google APIs can refuse.

The configuration is planned in a scratch copy of the repository (terraform/ reads
../shared/topology.json and packs functions/, shared/, sql/), so nothing is written into the
tree and tests can break a copy on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from tools.tfplan.provider import load_protocol, serve

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCHEMA_DIR = HERE / "schemas"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", ".local", "__pycache__", ".mypy_cache", ".pytest_cache",
                                     ".ruff_cache", ".terraform", ".build", "*.tfstate*", "*.tfplan", ".hypothesis")
TIMEOUT_SECONDS = 600
GCLOUD_STAND_IN = """#!/bin/sh
# tools/tfplan: the offline apply records the gcloud commands local-exec provisioners would run.
echo "$@" >> "$(dirname "$0")/../gcloud-calls.log"
"""


@dataclass
class Step:
    """One terraform command: what ran, whether it passed, and what Terraform said."""

    name: str
    returncode: int
    output: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def errors(self) -> list[str]:
        """Terraform's `Error:` diagnostics, each with its location and explanation."""
        text = re.sub(r"^[│╷╵] ?", "", self.output, flags=re.M)
        return [m.group(0).strip() for m in re.finditer(r"^Error: .*?(?=^Error: |^Warning: |^[╵]|\Z)", text,
                                                         re.M | re.S)]

    def first_error(self) -> str:
        errors = self.errors()
        return errors[0] if errors else self.output[-2000:].strip()


def plan_counts(output: str) -> dict[str, int]:
    if re.search(r"^No changes\.", output, re.M):
        return {"add": 0, "change": 0, "destroy": 0}
    m = re.search(r"^Plan: (.*)\.$", output, re.M)
    return {k: int(v) for v, k in re.findall(r"(\d+) to (\w+)", m.group(1))} if m else {}


def planned_resources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Each managed resource of a `terraform show -json` plan with its planned values; what is known only
    after apply reads "(known after apply)"."""
    def unknowns_marked(after: Any, unknown: Any) -> Any:
        if unknown is True:
            return "(known after apply)"
        if isinstance(after, dict):
            keyed = unknown if isinstance(unknown, dict) else {}
            return {k: unknowns_marked(after.get(k), keyed.get(k)) for k in set(after) | set(keyed)}
        if isinstance(after, list):
            listed = unknown if isinstance(unknown, list) else []
            return [unknowns_marked(v, listed[i] if i < len(listed) else None) for i, v in enumerate(after)]
        return after

    return [{"type": rc["type"], "address": rc["address"],
             "values": unknowns_marked(rc["change"]["after"] or {}, rc["change"]["after_unknown"])}
            for rc in plan["resource_changes"] if rc["mode"] == "managed"]


class OfflineTerraform:
    """A scratch copy of the repository, the providers served, and terraform run against them."""

    def __init__(self, root: Path = REPO, terraform_subdir: str = "terraform", terraform: str | None = None,
                 revision: str | None = None) -> None:
        """`revision`: plan the repository as it was at that git revision (`git archive`), not the work tree."""
        self.terraform = terraform or shutil.which("terraform") or ""
        if not self.terraform:
            raise FileNotFoundError("terraform is not on PATH (Terraform >= 1.11 is needed for the offline plan)")
        self._tmp = Path(tempfile.mkdtemp(prefix="tfplan-", dir="/tmp"))  # short: unix socket paths are limited
        self.root = self._tmp / "src"
        if revision:
            self.root.mkdir()
            archive = subprocess.run(["git", "-C", str(root), "archive", revision], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(self.root)], input=archive.stdout, check=True)
        else:
            shutil.copytree(root, self.root, ignore=COPY_IGNORE, symlinks=True)
        self.source = root
        self.dir = self.root / terraform_subdir
        self._servers: list[grpc.Server] = []
        self._env: dict[str, str] = {}

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> OfflineTerraform:
        pb = load_protocol()
        reattach: dict[str, Any] = {}
        for schema_path in sorted(SCHEMA_DIR.glob("*.json")):
            socket_path = str(self._tmp / f"{schema_path.stem}.sock")
            self._servers.append(serve(schema_path, socket_path, pb))
            reattach[f"registry.terraform.io/hashicorp/{schema_path.stem}"] = {
                "Protocol": "grpc", "ProtocolVersion": 6, "Pid": os.getpid(), "Test": True,
                "Addr": {"Network": "unix", "String": socket_path},
            }
        cli_config = self._tmp / "terraformrc"
        cli_config.write_text("")
        self._env = {k: v for k, v in os.environ.items()
                     if not k.startswith("TF_CLI_ARGS") and k not in ("TF_WORKSPACE", "TF_DATA_DIR")}
        self._env.update(TF_REATTACH_PROVIDERS=json.dumps(reattach), TF_DATA_DIR=str(self._tmp / "data"),
                         TF_CLI_CONFIG_FILE=str(cli_config), TF_IN_AUTOMATION="1", TF_INPUT="0",
                         CHECKPOINT_DISABLE="1")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for server in self._servers:
            server.stop(grace=None)
        shutil.rmtree(self._tmp, ignore_errors=True)

    # --- terraform commands --------------------------------------------------------------
    def _run(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Step:
        done = subprocess.run([self.terraform, f"-chdir={self.dir}", *args, "-no-color"],
                              env=env or self._env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=TIMEOUT_SECONDS, check=False)
        return Step(name, done.returncode, done.stdout + done.stderr)

    def init(self) -> Step:
        return self._run("init", ["init", "-backend=false", "-input=false"])

    def validate(self) -> Step:
        return self._run("validate", ["validate"])

    def _state(self, var_file: Path | None) -> str:
        """Each variable set plans and applies against its own state, as its own deployment would."""
        return f"-state={self._tmp / ((var_file.stem if var_file else 'no-var-file') + '.tfstate')}"

    def plan(self, var_file: Path | None, out: str | None = None, refresh: bool = False) -> Step:
        """`terraform plan` with one var file; exit code 2 (`-detailed-exitcode`) means changes."""
        args = ["plan", "-input=false", "-lock=false", "-detailed-exitcode", f"-refresh={str(refresh).lower()}",
                self._state(var_file)]
        if var_file is not None:
            args.append(f"-var-file={Path(var_file).resolve()}")
        if out:
            args.append(f"-out={self._tmp / out}")
        step = self._run(f"plan {var_file.name if var_file else '(no var file)'}", args)
        step.counts = plan_counts(step.output)
        if step.returncode == 2:  # a plan with changes is a successful plan
            step.returncode = 0
        return step

    def show_json(self, plan_file: str) -> dict[str, Any]:
        step = self._run("show", ["show", "-json", str(self._tmp / plan_file)])
        if not step.ok:
            raise RuntimeError(step.first_error())
        return dict(json.loads(step.output))

    def show_state(self, var_file: Path | None) -> dict[str, Any]:
        """`terraform show -json` of a variable set's state (after an offline apply)."""
        step = self._run("show", ["show", "-json", self._state(var_file).removeprefix("-state=")])
        if not step.ok:
            raise RuntimeError(step.first_error())
        return dict(json.loads(step.output))

    def apply(self, plan_file: str, var_file: Path | None) -> Step:
        """Apply a saved plan against the offline provider: computed values become typed stand-ins,
        and gcloud (local-exec) only records its arguments in gcloud-calls.log."""
        bin_dir = self._tmp / "bin"
        bin_dir.mkdir(exist_ok=True)
        gcloud = bin_dir / "gcloud"
        gcloud.write_text(GCLOUD_STAND_IN)
        gcloud.chmod(0o755)
        env = dict(self._env, PATH=f"{bin_dir}{os.pathsep}{self._env.get('PATH', '')}")
        return self._run("apply", ["apply", "-input=false", "-lock=false", "-auto-approve", self._state(var_file),
                                   str(self._tmp / plan_file)], env=env)

    def take_work_tree(self) -> Step:
        """Replace the planned tree with the work tree of the repository (after planning an older revision),
        then init again: the next plan shows what a change does to a deployment of the older one."""
        shutil.rmtree(self.root)
        shutil.copytree(self.source, self.root, ignore=COPY_IGNORE, symlinks=True)
        return self.init()

    def gcloud_calls(self) -> list[str]:
        log = self._tmp / "gcloud-calls.log"
        return log.read_text().splitlines() if log.exists() else []
