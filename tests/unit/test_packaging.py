"""Packaging: requirements.txt (what Cloud Functions installs) is the package's declared runtime set,
and `pip install '.[ops]'` in an empty virtualenv gives a `ctower` that runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def requirement_lines(path: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {re.sub(r"\s+", "", line) for line in lines if line and not line.startswith("-")}


def test_requirements_txt_is_exactly_the_declared_runtime_dependencies() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert requirement_lines(ROOT / "requirements.txt") == {re.sub(r"\s+", "", d) for d in declared}


@pytest.mark.timeout(600)
def test_ctower_installs_and_runs_from_an_empty_virtualenv(tmp_path: Path) -> None:
    # From a copy of what the package is made of: setuptools builds in the source tree (build/, *.egg-info).
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("shared", "functions", "ops"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", f"{source}[ops]"],
                             capture_output=True, text=True, timeout=540, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    for args in (["--help"], ["dlq", "list", "--help"], ["tenants", "--help"]):
        run = subprocess.run([str(env_dir / "bin" / "ctower"), *args], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path, check=False)
        assert run.returncode == 0, (args, run.stderr[-2000:])
        assert "Usage:" in run.stdout
