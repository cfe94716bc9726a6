"""The ``vecfmt`` command installed by ``pip install``: the same CLI as the Rust binary, run
in-process by the extension module.

The HDF5 converters run the HDF5 C library in a child process; here that child is this
Python with ``-m vecfmt``, which serves the worker subcommands.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    """Runs ``vecfmt`` with ``argv`` (default: ``sys.argv``) and exits with its code."""
    from vecfmt import _native, _worker

    args = list(sys.argv if argv is None else argv)
    args[0] = "vecfmt"
    # Ctrl-C ends the command as it ends the Rust binary (the CLI's files are crash-safe);
    # Python's handler would only run after the command returned.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.environ.setdefault("VECFMT_HDF5_WORKER", _worker.program())
    sys.stdout.flush()
    code = _native.cli_main(args)
    sys.exit(code)


if __name__ == "__main__":
    main()
