"""One function served by functions-framework with EXACTLY the given environment (the cloud's, not the stack's)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ops.stack import ROOT, free_port, port_open, wait_until
from shared.topology import load_topology

# What the runtime itself provides on Cloud Run / Cloud Functions gen2 and a local process needs to start.
_PROCESS_ENV = ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")


@dataclass
class ServedFunction:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def serve_function(name: str, env: dict[str, str], log_dir: Path) -> ServedFunction:
    """Start function `name` (its entry point from the topology) on a free port with `env` and nothing else
    from this process's environment but PATH/HOME-like basics and K_SERVICE, as Cloud Run sets it."""
    fn = load_topology().functions[name]
    port = free_port()
    full_env = {k: os.environ[k] for k in _PROCESS_ENV if k in os.environ}
    full_env.update({"K_SERVICE": fn.name, "PYTHONUNBUFFERED": "1", **env})
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "functions_framework", "--target", fn.entry_point,
                                 "--source", str(ROOT / "main.py"), "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    served = ServedFunction(name, f"http://127.0.0.1:{port}", proc, log_path)
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, 60, f"function {name}")
        if proc.poll() is not None:
            raise RuntimeError(f"function {name} exited:\n{served.log()[-3000:]}")
    except BaseException:
        served.stop()
        raise
    return served
