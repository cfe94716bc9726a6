"""Row views never outlive their memory, and never crash the interpreter.

A view of a raw chunk points into the file's map; its numpy base holds the reader, so the
map lives as long as any view. Each risky case runs in a child Python, and the test asserts
that the child was not killed by a signal (a negative return code) and printed what it saw.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import vecfmt
from vecfmt._matrix import _write_csr


def make(path, codec="raw", rows=400, cols=2000, seed=5):
    """A matrix of a few hundred KiB over many chunks, so that truncating the file removes
    pages that views point into."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((rows, cols)) < 0.05) * rng.integers(1, 1000, (rows, cols))
    ref = sp.csr_array(dense.astype(np.float64))
    _write_csr(path, ref, codec=codec, chunk_bytes=16384)
    return ref


def run_child(code: str, *python_flags: str) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [sys.executable, *python_flags, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert p.returncode >= 0, f"the child was killed by signal {-p.returncode}:\n{p.stdout}\n{p.stderr}"
    assert p.returncode == 0, f"the child failed:\n{p.stdout}\n{p.stderr}"
    return p


# ---- in process: the safe cases ----------------------------------------------------------


@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_views_survive_close(tmp_path, codec):
    ref = make(tmp_path / "m.vfm", codec)
    m = vecfmt.open(tmp_path / "m.vfm")
    views = [m.row(i) for i in range(0, 400, 7)]
    block = m[10:20]
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.row(0)
    for k, (idx, val) in enumerate(views):
        i = 7 * k
        lo, hi = ref.indptr[i], ref.indptr[i + 1]
        assert np.array_equal(idx, ref.indices[lo:hi]) and np.array_equal(val, ref.data[lo:hi])
    assert np.array_equal(block.toarray(), ref[10:20].toarray())


@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_views_survive_the_matrix(tmp_path, codec):
    ref = make(tmp_path / "m.vfm", codec)
    m = vecfmt.open(tmp_path / "m.vfm", cache=0)
    idx, val = m.row(123)
    del m
    gc.collect()
    lo, hi = ref.indptr[123], ref.indptr[124]
    assert np.array_equal(idx, ref.indices[lo:hi]) and np.array_equal(val, ref.data[lo:hi])
    # The last view gone, the file is free: a writer replaces it.
    del idx, val
    gc.collect()
    make(tmp_path / "m.vfm", codec, seed=6)


def test_closing_releases_the_lock_once_views_are_gone(tmp_path):
    """While a view lives it holds the reader's shared lock; `vecfmt build --append`-style
    writers wait for it. Without views, close() lets go at once."""
    import fcntl

    make(tmp_path / "m.vfm")
    m = vecfmt.open(tmp_path / "m.vfm")
    idx, _ = m.row(3)
    m.close()
    with open(tmp_path / "m.vfm", "rb") as f:
        with pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        del idx, _
        gc.collect()
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_labels_and_views_after_close(tmp_path):
    path = _write_csr(tmp_path / "l.vfm", sp.csr_array(np.eye(3, dtype=np.float32)), row_labels=["a", "b", "c"])
    m = vecfmt.open(path)
    labels = m.row_labels
    _, val = m.row_by_label("b")
    m.close()
    assert val.tolist() == [1.0]
    with pytest.raises(ValueError, match="closed"):
        labels[0]
    with pytest.raises(ValueError, match="closed"):
        "a" in labels


def test_threads_read_while_another_closes(tmp_path):
    """Readers on several threads (blocks release the GIL) while the matrix is closed under
    them: each call returns whole, correct rows or raises ValueError; views stay valid."""
    import threading

    ref = make(tmp_path / "m.vfm", "zstd")
    m = vecfmt.open(tmp_path / "m.vfm")
    kept, errors, bad = [], [], []
    start = threading.Barrier(5)

    def reader(seed):
        rng = np.random.default_rng(seed)
        start.wait()
        for _ in range(300):
            rows = rng.integers(0, 400, 50)
            try:
                block = m[rows]
                idx, val = m.row(int(rows[0]))
            except ValueError as e:
                errors.append(str(e))
                return
            if not np.array_equal(block.toarray(), ref[rows].toarray()):
                bad.append(seed)
            kept.append((int(rows[0]), idx, val))

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    start.wait()
    m.close()
    for t in threads:
        t.join()
    assert not bad
    assert all("closed" in e for e in errors)
    for r, idx, val in kept:
        lo, hi = ref.indptr[r], ref.indptr[r + 1]
        assert np.array_equal(idx, ref.indices[lo:hi]) and np.array_equal(val, ref.data[lo:hi])


# ---- in a child: files replaced or truncated under live views --------------------------------


CHILD_SETUP = """
import os, gc, sys
import numpy as np
import vecfmt
path = sys.argv[1] if len(sys.argv) > 1 else {path!r}
m = vecfmt.open(path, cache=0)
rows = list(range(0, m.shape[0], 5))
views = [m.row(i) for i in rows]
copies = [(i.copy(), v.copy()) for i, v in views]
"""


@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_file_replaced_by_rename(tmp_path, codec):
    path = tmp_path / "m.vfm"
    make(path, codec)
    other = tmp_path / "other.vfm"
    make(other, codec, seed=9)
    p = run_child(
        CHILD_SETUP.format(path=str(path))
        + f"""
os.replace({str(other)!r}, path)
# The reader and its views keep the file they opened (its inode), whole.
same = all(np.array_equal(i, ci) and np.array_equal(v, cv) for (i, v), (ci, cv) in zip(views, copies))
again = all(np.array_equal(m.row(r)[1], cv) for r, (_, cv) in zip(rows, copies))
m.close()
gc.collect()
same_after_close = all(np.array_equal(v, cv) for (_, v), (_, cv) in zip(views, copies))
with vecfmt.open(path) as fresh:
    changed = any(not np.array_equal(fresh.row(r)[1], cv) for r, (_, cv) in zip(rows, copies))
print("OK", same, again, same_after_close, changed)
"""
    )
    assert p.stdout.split() == ["OK", "True", "True", "True", "True"]


@pytest.mark.parametrize("cut", ["zero", "half"])
@pytest.mark.parametrize("flags", [(), ("-X", "faulthandler")])
def test_raw_file_truncated_under_live_views(tmp_path, cut, flags):
    """Truncating a mapped file makes its pages vanish (a read would be SIGBUS). The guard
    maps zeros there instead: views read their values or zeros, and the matrix raises."""
    path = tmp_path / "m.vfm"
    make(path, "raw")
    size = path.stat().st_size
    new_len = 0 if cut == "zero" else size // 2
    p = run_child(
        CHILD_SETUP.format(path=str(path))
        + f"""
os.truncate(path, {new_len})
ok = 0
for (i, v), (ci, cv) in zip(views, copies):
    # Each element is either what it was or zero: never garbage, never a crash.
    assert np.all((v == cv) | (v == 0)), "bad values"
    assert np.all((i == ci) | (i == 0)), "bad indices"
    ok += 1
total = float(sum(v.sum() for _, v in views))
try:
    m.row(0)
    raised = "no"
except vecfmt.Error as e:
    raised = "yes" if "truncated" in str(e) and {str(path)!r} in str(e) else "wrong: " + str(e)
try:
    m[0:50]
    raised_block = "no"
except vecfmt.Error:
    raised_block = "yes"
report = m.verify()
m.close()
del m
gc.collect()
total_after_close = float(sum(v.sum() for _, v in views))
print("OK", ok == len(views), raised, raised_block, report.is_clean)
""",
        *flags,
    )
    assert p.stdout.split() == ["OK", "True", "yes", "yes", "False"], p.stdout + p.stderr


def test_truncated_after_close_while_views_live(tmp_path):
    path = tmp_path / "m.vfm"
    make(path, "raw")
    p = run_child(
        CHILD_SETUP.format(path=str(path))
        + """
m.close()
os.truncate(path, 0)
zeros_or_same = all(np.all((v == cv) | (v == 0)) for (_, v), (_, cv) in zip(views, copies))
print("OK", zeros_or_same)
"""
    )
    assert p.stdout.split() == ["OK", "True"]


def test_compressed_views_survive_truncation(tmp_path):
    """Views of compressed chunks are views of decoded memory: a truncation cannot touch them."""
    path = tmp_path / "m.vfm"
    make(path, "zstd")
    p = run_child(
        CHILD_SETUP.format(path=str(path))
        + """
os.truncate(path, 0)
same = all(np.array_equal(i, ci) and np.array_equal(v, cv) for (i, v), (ci, cv) in zip(views, copies))
try:
    m.row(1)
    raised = "no"
except vecfmt.Error:
    raised = "yes"
print("OK", same, raised)
"""
    )
    assert p.stdout.split() == ["OK", "True", "yes"]


def test_file_overwritten_in_place(tmp_path):
    """A process that ignores the lock and writes garbage over the file in place: the views
    show whatever the file holds now, but nothing crashes."""
    path = tmp_path / "m.vfm"
    make(path, "raw")
    p = run_child(
        CHILD_SETUP.format(path=str(path))
        + """
size = os.path.getsize(path)
with open(path, "r+b") as f:
    f.write(os.urandom(size))
touched = sum(int(v.size) for _, v in views)
try:
    m[0:400]
except vecfmt.Error:
    pass
print("OK", touched > 0)
"""
    )
    assert p.stdout.split() == ["OK", "True"]
