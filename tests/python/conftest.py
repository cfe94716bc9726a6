"""Shared pytest fixtures of the interop suite.

`make test` builds the CLI and runs this suite with VECFMT_BIN set to the binary. Each test
writes a file with the real Python library, converts it with `vecfmt convert`, and reads the
result back with the real library.
"""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata"


def _binary() -> pathlib.Path:
    env = os.environ.get("VECFMT_BIN")
    path = pathlib.Path(env) if env else REPO / "target" / "debug" / "vecfmt"
    if not path.exists():
        pytest.exit(f"vecfmt binary not found at {path}; run `make test` (it builds it first)", returncode=2)
    return path


class Vecfmt:
    """Runs the vecfmt CLI. `run` asserts success; `fail` asserts failure and returns stderr."""

    def __init__(self, binary: pathlib.Path):
        self.binary = binary

    def _call(self, args):
        return subprocess.run(
            [str(self.binary), *map(str, args)], capture_output=True, text=True, timeout=600
        )

    def run(self, *args) -> subprocess.CompletedProcess:
        p = self._call(args)
        assert p.returncode == 0, f"vecfmt {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}"
        return p

    def fail(self, *args, code: int = 1) -> str:
        p = self._call(args)
        assert p.returncode == code, (
            f"vecfmt {' '.join(map(str, args))} exited {p.returncode}, expected {code}:\n{p.stderr}"
        )
        assert "panicked" not in p.stderr, p.stderr
        return p.stderr

    def inspect(self, path) -> dict:
        import json

        return json.loads(self.run("inspect", path, "--json").stdout)

    def row(self, path, row: int) -> dict:
        import json

        return json.loads(self.run("get", path, row, "--json").stdout)


@pytest.fixture(scope="session")
def vecfmt() -> Vecfmt:
    return Vecfmt(_binary())


@pytest.fixture(scope="session")
def testdata() -> pathlib.Path:
    return TESTDATA
