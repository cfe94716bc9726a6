"""vecfmt.cooccur, build, merge, compact and convert from Python: the same results as the
CLI, the GIL released, progress reported, Ctrl-C honoured, errors typed."""

import os
import signal
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

import vecfmt

from conftest import run_python


def npz(cli, vfm, tmp_path):
    out = tmp_path / (pathlib_name(vfm) + ".npz")
    cli.run("convert", vfm, out, "--force")
    return sp.load_npz(out)


def pathlib_name(p):
    return os.path.basename(os.fspath(p))


def same(a, b):
    a, b = sp.csr_array(a), sp.csr_array(b)
    assert a.shape == b.shape
    assert a.dtype == b.dtype
    a.sort_indices()
    b.sort_indices()
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    # Bit for bit.
    assert a.data.tobytes() == b.data.tobytes()


def leftovers(d, keep):
    return sorted(n for n in os.listdir(d) if n not in keep)


def test_cooccur_equals_the_cli(tmp_path, cli, corpus):
    py_out, cli_out = tmp_path / "py.vfm", tmp_path / "cli.vfm"
    s = vecfmt.cooccur(corpus, py_out, window=5, min_count=2, memory="16M", threads=2, checkpoint="0.5s")
    cli.run("cooccur", corpus, "-o", cli_out, "--window", 5, "--min-count", 2, "--memory", "16M", "-j", 2)
    assert s["shape"][0] == s["words"] > 100
    same(npz(cli, py_out, tmp_path), npz(cli, cli_out, tmp_path))
    a, b = cli.inspect(py_out), cli.inspect(cli_out)
    assert (a["shape"], a["nnz"], a["dtype"]) == (b["shape"], b["nnz"], b["dtype"])
    for w in ["cat", "wolf"]:
        assert cli.run("get", py_out, "--label", w).stdout == cli.run("get", cli_out, "--label", w).stdout


def test_shards_merge_equal_one_pass(tmp_path, cli, corpus):
    whole = tmp_path / "whole.vfm"
    vocab = tmp_path / "vocab.txt"
    vecfmt.cooccur(corpus, whole, window=4, min_count=3, memory="32M", save_vocab=vocab)
    parts = []
    for k in (1, 2, 3):
        p = tmp_path / f"part{k}.vfm"
        vecfmt.cooccur(corpus, p, window=4, vocab=vocab, shard=f"{k}/3", memory="32M")
        parts.append(p)
    merged = tmp_path / "merged.vfm"
    s = vecfmt.merge(parts, merged)
    assert s["inputs"] == 3
    a, b = npz(cli, merged, tmp_path), npz(cli, whole, tmp_path)
    assert a.shape == b.shape and a.nnz == b.nnz
    # Shards sum in another order: equal to f32 rounding.
    assert np.allclose(a.toarray(), b.toarray(), rtol=1e-6, atol=0)
    # Finished on several threads, each on its own range of rows: the one thread's result,
    # bit for bit.
    for threads in (1, 3):
        out = tmp_path / f"merged-{threads}.vfm"
        vecfmt.merge(parts, out, threads=threads, memory="8M")
        same(npz(cli, out, tmp_path), a)


def test_build_compact_convert(tmp_path, cli):
    rng = np.random.default_rng(7)
    rows, cols = rng.integers(0, 50, 2000), rng.integers(0, 1000, 2000)
    vals = rng.random(2000).astype(np.float32)
    tsv = tmp_path / "t.tsv"
    with open(tsv, "w") as f:
        for r, c, v in zip(rows, cols, vals):
            f.write(f"{r}\t{c}\t{float(v)!r}\n")
    m = tmp_path / "m.vfm"
    s = vecfmt.build(tsv, m, n_cols=1000, dtype="f64", codec="raw")
    ref = sp.coo_array((vals.astype(np.float64), (rows, cols)), shape=(50, 1000)).tocsr()
    ref.sum_duplicates()
    assert s["nnz"] == ref.nnz
    vecfmt.compact(m, codec="zstd", zstd_level=9)
    out = tmp_path / "m.npz"
    c = vecfmt.convert(m, out)
    assert (c["from"], c["to"], c["nnz"]) == ("vfm", "npz", ref.nnz)
    got = sp.load_npz(out)
    assert np.allclose(got.toarray(), ref.toarray(), rtol=1e-12)


def test_convert_to_hdf5_and_h5ad_in_a_worker(tmp_path):
    anndata = pytest.importorskip("anndata")
    src = tmp_path / "m.vfm"
    tsv = tmp_path / "t.tsv"
    tsv.write_text("0\t3\t1.5\n2\t1\t2\n")
    vecfmt.build(tsv, src)
    h5ad = tmp_path / "m.h5ad"
    vecfmt.convert(src, h5ad)
    a = anndata.read_h5ad(h5ad)
    assert a.shape == (3, 4)
    assert a.X[0, 3] == 1.5 and a.X[2, 1] == 2
    back = tmp_path / "back.vfm"
    vecfmt.convert(h5ad, back)
    npz_out = tmp_path / "back.npz"
    vecfmt.convert(back, npz_out)
    assert sp.load_npz(npz_out).toarray()[2, 1] == 2


def test_convert_gzip_level(tmp_path):
    h5py = pytest.importorskip("h5py")
    src = tmp_path / "m.npz"
    m = sp.random(40, 30, density=0.2, format="csr", random_state=1)
    sp.save_npz(src, m)
    for level, want in [(None, 1), (0, None), (9, 9)]:
        out = tmp_path / f"m{level}.h5"
        vecfmt.convert(src, out, **({} if level is None else {"gzip_level": level}))
        with h5py.File(out) as f:
            d = f["matrix/data"]
            assert (d.compression_opts, d.shuffle) == (want, want is not None), level
            assert np.array_equal(d[:], m.data)
    with pytest.raises(vecfmt.InvalidInputError, match="gzip level 10") as e:
        vecfmt.convert(src, tmp_path / "x.h5", gzip_level=10)
    assert "--gzip-level" not in str(e.value)
    assert not (tmp_path / "x.h5").exists()


def test_gil_is_released_during_cooccur(tmp_path, corpus):
    ticks = 0
    stop = threading.Event()

    def tick():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    start = time.monotonic()
    try:
        vecfmt.cooccur(corpus, tmp_path / "c.vfm", window=10, memory="16M", threads=1)
    finally:
        stop.set()
        t.join()
    elapsed = time.monotonic() - start
    # A thread starved of the GIL would tick only at the call's 50 ms wake-ups.
    assert ticks > 0.3 * elapsed / 0.001 / 2, (ticks, elapsed)


def test_progress_reports(tmp_path, corpus):
    reports = []
    vecfmt.cooccur(corpus, tmp_path / "c.vfm", window=10, memory="16M", progress=reports.append)
    assert reports, "no progress report"
    r = reports[-1]
    assert r["stage"] in ("vocab", "cooccur") and r["unit"] == "bytes"
    assert r["total"] == os.path.getsize(corpus)
    assert 0 < r["done"] <= r["total"]


@pytest.mark.parametrize("op", ["cooccur", "merge", "convert"])
def test_interrupt_from_the_callback_leaves_nothing(tmp_path, corpus, op):
    """An exception from the callback (here KeyboardInterrupt, as Ctrl-C raises it) stops
    the call; a new output is not left behind half-written, nor are temporaries."""
    src = tmp_path / "src.vfm"
    if op != "cooccur":
        vecfmt.cooccur(corpus, src, window=10, memory="64M")
    before = set(os.listdir(tmp_path))

    def stop(report):
        raise KeyboardInterrupt

    out = tmp_path / ("out.npz" if op == "convert" else "out.vfm")
    with pytest.raises(KeyboardInterrupt):
        if op == "cooccur":
            vecfmt.cooccur(corpus, out, window=10, memory="16M", checkpoint=None, progress=stop)
        elif op == "merge":
            vecfmt.merge([src, src], out, memory="16M", progress=stop)
        else:
            vecfmt.convert(src, out, progress=stop)
    left = set(os.listdir(tmp_path)) - before
    assert left == set(), left


def test_sigint_stops_cooccur_at_its_last_commit(tmp_path, corpus, cli):
    out = tmp_path / "c.vfm"
    # The default Ctrl-C handler, even when this test runs with SIGINT ignored (see test_crash).
    code = f"""
import signal, vecfmt, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    vecfmt.cooccur({str(corpus)!r}, {str(out)!r}, window=15, memory="8M", threads=1, checkpoint=0.2,
                   progress=lambda r: print(r["stage"], flush=True))
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(42)
print("finished", flush=True)
"""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    # Interrupt once the pairs pass runs (after at least one commit has had time to happen).
    for line in p.stdout:
        if line.strip() == "cooccur":
            time.sleep(0.5)
            p.send_signal(signal.SIGINT)
            break
    rest = p.stdout.read()
    rc = p.wait(timeout=60)
    if rc == 0:
        pytest.skip("the count finished before the interrupt arrived")
    assert rc == 42, rest
    assert "interrupted" in rest
    assert leftovers(tmp_path, {"c.vfm"}) == []
    if out.exists():
        cli.run("verify", out)


def test_errors_are_typed_and_name_the_file(tmp_path, corpus):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError) as e:
        vecfmt.cooccur(missing, tmp_path / "o.vfm")
    assert str(missing) in str(e.value)
    out = tmp_path / "o.vfm"
    vecfmt.cooccur(corpus, out, window=2, memory="16M")
    with pytest.raises(vecfmt.OutputExistsError) as e:
        vecfmt.cooccur(corpus, out, window=2, memory="16M")
    assert str(out) in str(e.value) and "--" not in str(e.value)
    taken = tmp_path / "taken.vfm"
    taken.write_bytes(b"someone else's file")
    with pytest.raises(FileExistsError):
        vecfmt.merge([out], taken)
    assert taken.read_bytes() == b"someone else's file"
    with pytest.raises(vecfmt.InvalidInputError):
        vecfmt.merge([out], out)
    with pytest.raises(ValueError):
        vecfmt.cooccur(corpus, tmp_path / "w.vfm", weighting="gaussian")
    with pytest.raises(TypeError):
        vecfmt.cooccur(corpus, tmp_path / "w.vfm", memory=[1])
    with pytest.raises(ValueError):
        vecfmt.cooccur(corpus, tmp_path / "w.vfm", memory="lots")
    bad = tmp_path / "bad.vfm"
    bad.write_bytes(b"not a vfm file at all" * 10)
    with pytest.raises(vecfmt.DamagedFileError) as e:
        vecfmt.convert(bad, tmp_path / "x.npz")
    assert str(bad) in str(e.value)
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(vecfmt.UnsupportedError):
        vecfmt.convert(out, tmp_path / "x.unknownext")


def test_plot_draws_what_the_cli_draws_and_refuses_bad_ranges(tmp_path, cli, corpus):
    src = tmp_path / "c.vfm"
    vecfmt.cooccur(corpus, src, window=5, memory="64M")
    png, png_cli = tmp_path / "c.png", tmp_path / "c-cli.png"
    s = vecfmt.plot(src, png, width=900, height=600)
    cli.run("plot", src, "-o", png_cli, "--width", "900", "--height", "600")
    assert png.read_bytes() == png_cli.read_bytes()  # the drawing is deterministic
    info = cli.inspect(src)
    assert list(s["shape"]) == info["shape"] and s["nnz"] == s["nnz_in_view"] == info["nnz"]
    z = vecfmt.plot(src, tmp_path / "z.png", rows=(0, 100), cols=(None, 50))
    assert z["rows"] == (0, 100) and z["cols"] == (0, 50) and z["nnz_in_view"] < s["nnz"]
    before = set(os.listdir(tmp_path))
    with pytest.raises(ValueError, match="range"):
        vecfmt.plot(src, tmp_path / "bad.png", rows=(10, 5))
    with pytest.raises(vecfmt.OutputExistsError):
        vecfmt.plot(src, png)
    with pytest.raises(FileNotFoundError, match="missing.vfm"):
        vecfmt.plot(tmp_path / "missing.vfm", tmp_path / "m.png")
    assert set(os.listdir(tmp_path)) == before
