"""What an interrupted build leaves: a SIGKILL, an exception or a Ctrl-C inside `with` leave
the file at its last commit (checked with `vecfmt verify` and against the sum of the
batches committed so far), and an exception leaves no temporaries.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scipy.sparse

import vecfmt

N_ROWS, N_COLS, BATCH = 5000, 20_000, 50_000

# The batches of every build here, the same in the child processes (seeded by their index).
BATCHES = f"""
import numpy as np

def batch(k):
    rng = np.random.default_rng(1000 + k)
    return (
        rng.integers(0, {N_ROWS}, {BATCH}),
        rng.integers(0, {N_COLS}, {BATCH}),
        rng.integers(1, 10, {BATCH}),
    )
"""
exec(BATCHES)  # defines batch(k) here too


@pytest.fixture(scope="module")
def cli(request):
    return request.getfixturevalue("vecfmt")


def read_csr(cli, path, tmp_path) -> scipy.sparse.csr_matrix:
    out = tmp_path / "readback.npz"
    out.unlink(missing_ok=True)
    cli.run("convert", path, out)
    return scipy.sparse.load_npz(out).tocsr()


def sum_of_batches(k: int) -> scipy.sparse.csr_matrix:
    """The sum of batches 0..k-1, shaped as a file holding exactly them."""
    bs = [batch(i) for i in range(k)]  # noqa: F821 - defined by exec above
    r, c, v = (np.concatenate(x) for x in zip(*bs))
    return scipy.sparse.coo_matrix((v.astype(np.int64), (r, c)), shape=(r.max() + 1, c.max() + 1)).tocsr()


def same(a, b) -> bool:
    return a.shape == b.shape and (a != b).nnz == 0


def child(script: str, *args) -> subprocess.Popen:
    env = dict(os.environ)
    # The child imports the same vecfmt as this test.
    env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(vecfmt.__file__).parents[1]), env.get("PYTHONPATH", "")])
    # Ctrl-C raises KeyboardInterrupt in the child even when this test runs with SIGINT
    # ignored (a background job of a non-interactive shell): Python keeps an ignored SIGINT
    # ignored, and the test is about what vecfmt does with the interrupt, not about that.
    code = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + BATCHES + textwrap.dedent(script)
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sigkill_mid_build_leaves_the_file_at_a_commit(cli, tmp_path):
    path = tmp_path / "k.vfm"
    p = child(
        """
        import sys, vecfmt
        acc = vecfmt.Accumulator(sys.argv[1], dtype="i64", memory="4M", checkpoint=None)
        k = 0
        while True:
            acc.add(*batch(k))
            acc.commit()
            k += 1
            print(k, flush=True)
        """,
        path,
    )
    try:
        printed = 0
        while printed < 3:
            line = p.stdout.readline()
            assert line, f"the child stopped: {p.stderr.read()}"
            printed = int(line)
        time.sleep(0.05)  # somewhere in the middle of the next batches
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        for line in p.stdout:  # commits reported before the kill
            printed = int(line)
    finally:
        if p.poll() is None:
            p.kill()
        p.stdout.close()
        p.stderr.close()
    cli.run("verify", path)
    got = read_csr(cli, path, tmp_path)
    # A commit may have landed after the last line was printed.
    committed = [k for k in (printed, printed + 1) if same(got, sum_of_batches(k))]
    assert committed, f"the file holds none of the sums of the first {printed} or {printed + 1} batches"
    # The build can go on where it stopped.
    k = committed[0]
    with vecfmt.Accumulator(path, mode="a", memory="4M") as acc:
        acc.add(*batch(k))  # noqa: F821
    assert same(read_csr(cli, path, tmp_path), sum_of_batches(k + 1))


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_an_exception_inside_with_leaves_the_last_commit_and_no_temporaries(cli, tmp_path, exc):
    path = tmp_path / "e.vfm"
    with pytest.raises(exc):
        with vecfmt.Accumulator(path, dtype="i64", memory="4M", checkpoint=None) as acc:
            acc.add(*batch(0))  # noqa: F821
            acc.add(*batch(1))  # noqa: F821
            acc.commit()
            for k in range(2, 6):  # enough to evict: uncommitted data goes into the file
                acc.add(*batch(k))  # noqa: F821
            assert acc.stats["evictions"] > 0
            raise exc()
    assert acc.closed
    assert sorted(os.listdir(tmp_path)) == ["e.vfm"]
    cli.run("verify", path)
    assert same(read_csr(cli, path, tmp_path), sum_of_batches(2))
    # The lock is gone with the accumulator: the file opens for more.
    with vecfmt.Accumulator(path, mode="a", memory="4M") as acc:
        acc.add(*batch(2))  # noqa: F821
    assert same(read_csr(cli, path, tmp_path), sum_of_batches(3))


def test_ctrl_c_during_a_long_add_leaves_the_last_commit(cli, tmp_path):
    path = tmp_path / "c.vfm"
    p = child(
        """
        import sys, numpy as np, vecfmt
        try:
            with vecfmt.Accumulator(sys.argv[1], dtype="i64", memory="4M", checkpoint=None) as acc:
                acc.add(*batch(0))
                acc.commit()
                r, c = np.arange(4_000_000) % 5000, np.arange(4_000_000) % 7
                print("ready", flush=True)
                while True:
                    acc.add(r, c, 1)
        except KeyboardInterrupt:
            print("interrupted", acc.closed, flush=True)
        """,
        path,
    )
    try:
        assert p.stdout.readline() == "ready\n", p.stderr.read()
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert out == "interrupted True\n"
    assert sorted(os.listdir(tmp_path)) == ["c.vfm"]
    cli.run("verify", path)
    assert same(read_csr(cli, path, tmp_path), sum_of_batches(1))
