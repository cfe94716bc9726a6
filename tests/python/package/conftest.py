"""Fixtures of the Python package's tests (`import vecfmt`).

`make test` installs the package from python/ into the test venv first. The parent
conftest's `vecfmt` fixture is the CLI binary; here it is also available as `cli`, so that a
test can use the module name `vecfmt` for the package.
"""

import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def cli(vecfmt):  # noqa: D103 - the CLI runner of the parent conftest, by another name
    return vecfmt


@pytest.fixture(scope="session")
def corpus() -> pathlib.Path:
    """The 4 MB sample corpus of `make demo`."""
    return REPO / "testdata" / "sample" / "corpus.txt"


def run_python(code: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (for crashes, signals and kills)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, **kw)
