"""Console passwords: Argon2id's 64 MiB per hash is paid only when a login needs it, one at a time."""

from __future__ import annotations

import subprocess
import sys

from ops.stack import ROOT

_PEAK = """
import threading
from pathlib import Path
from shared.console import users

def peak_mib():  # VmHWM, not ru_maxrss: that one keeps the forking parent's peak across exec
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024

imported = peak_mib()
stored = users.hash_password("senha-certa-123")
threads = [threading.Thread(target=users._verify, args=(stored, "senha-certa-123")) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(imported, peak_mib(), users._dummy_hash.cache_info().currsize)
"""


def test_importing_hashes_nothing_and_eight_logins_at_once_fill_one_hash_s_memory_not_eight() -> None:
    # A burst of logins on the server's 8 threads, each verify filling 64 MiB outside the GIL, needed
    # 8 x 64 MiB (526 MiB measured) in an instance of 256 MiB; at import the dummy hash cost 64 MiB more.
    out = subprocess.run([sys.executable, "-c", _PEAK], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    imported, after, dummies = (int(x) for x in out.stdout.split())
    assert imported < 64 and dummies == 0
    assert after - imported < 2 * 64
