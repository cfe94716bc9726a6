"""Where the HDF5 worker process comes from when vecfmt runs inside Python.

The HDF5 C library runs in a child process (a crash in it must not take Python down). The
Rust binary serves that child itself; inside Python the child is this interpreter running
``python -m vecfmt``, which serves the same hidden subcommands.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig


def command() -> list[str]:
    """The worker command, before its subcommand: this Python with ``-m vecfmt``."""
    return [sys.executable, "-m", "vecfmt"]


def program() -> str:
    """One executable that serves the worker subcommands (for the CLI, whose worker is named
    by a single path): the ``vecfmt`` script beside this Python, else the one on PATH."""
    script = os.path.join(sysconfig.get_path("scripts"), "vecfmt")
    if os.access(script, os.X_OK):
        return script
    found = shutil.which("vecfmt")
    return found if found else script
