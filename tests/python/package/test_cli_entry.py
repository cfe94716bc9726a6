"""The `vecfmt` command that `pip install ./python` puts on PATH: the CLI run in-process."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

SCRIPTS = pathlib.Path(sys.executable).parent


def script() -> str:
    path = SCRIPTS / "vecfmt"
    assert path.exists(), f"the console script is missing beside {sys.executable}"
    return str(path)


def test_version_and_usage_codes():
    p = subprocess.run([script(), "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("vecfmt ")
    p = subprocess.run([script(), "no-such-command"], capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    p = subprocess.run([script(), "inspect", "/nonexistent/x.vfm"], capture_output=True, text=True)
    assert p.returncode == 1 and "/nonexistent/x.vfm" in p.stderr


def test_python_m_vecfmt_is_the_same_cli(tmp_path, testdata):
    p = subprocess.run(
        [sys.executable, "-m", "vecfmt", "inspect", "--json", str(testdata / "v1" / "f32_raw_labels.vfm")],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    assert '"nnz"' in p.stdout


def test_hdf5_round_trip_through_the_script(tmp_path, testdata):
    """HDF5 runs in a worker process; inside Python that worker is this interpreter."""
    src = testdata / "v1" / "f64_zstd.vfm"
    h5 = tmp_path / "m.h5"
    back = tmp_path / "back.npz"
    direct = tmp_path / "direct.npz"
    env = dict(os.environ)
    env.pop("VECFMT_HDF5_WORKER", None)
    for a, b in [(src, h5), (h5, back), (src, direct)]:
        p = subprocess.run([script(), "convert", str(a), str(b)], capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr
    x, y = sp.load_npz(back), sp.load_npz(direct)
    assert x.shape == y.shape
    assert np.array_equal(x.toarray(), y.toarray())


@pytest.mark.parametrize("code", [0, 3])
def test_verify_exit_codes(tmp_path, testdata, cli, code):
    path = tmp_path / "m.vfm"
    src = testdata / "v1" / "f64_zstd.vfm"
    data = src.read_bytes()
    if code == 3:
        # Damage a byte inside the third chunk, leaving the header and catalog intact.
        import json

        chunk = json.loads(cli.run("inspect", src, "--json", "--chunks").stdout)["chunk_table"][2]
        b = bytearray(data)
        b[chunk["offset"] + 10] ^= 0xFF
        data = bytes(b)
    path.write_bytes(data)
    p = subprocess.run([script(), "verify", str(path)], capture_output=True, text=True)
    assert p.returncode == code, p.stdout + p.stderr
