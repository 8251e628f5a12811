"""What every bench entry point starts with: SIGTERM that unwinds, and its sizes as options."""

from __future__ import annotations

import argparse
import signal
import sys


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM (a CI timeout, `kill`) exits through Python, so every `with` stops the stacks and servers it started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def parser(doc: str | None, **sizes: float) -> argparse.ArgumentParser:
    """The module's parser, its docstring kept as written; `sizes` are `--name-with-dashes` options of their
    default's type (write `600.0` for a float)."""
    made = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in sizes.items():
        made.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return made
