#!/usr/bin/env python3
"""Reads from Python on workload M1: `vecfmt.open` against anndata (backed) and h5py.

Run by hand, with the package installed (or PYTHONPATH=python and a release build of the
extension) in the pinned environment (tests/python/requirements.txt):

    cargo run --release -p vecfmt-benches --bin m1_report     # once: makes target/bench-data/
    python benches/python/py_reads.py [--data target/bench-data] [--rows 10000] [--block 1000]

It needs `m1/` (M1 as raw arrays, from m1_report) and uses `m1-vfm/m1.raw.vfm` and
`m1-vfm/m1.zstd.vfm` when they are there (it writes them with the package otherwise). The
same M1 is written once as an uncompressed `.h5ad` (anndata's layout: group X with data,
indices, indptr) for the peers. Jobs, each on the same random rows (seed 42):

- `m.row(i)` at `--rows` random rows, warm (one untimed pass first), each call timed on its
  own: p50 / p90 / p99 in µs. Raw and zstd files. h5py's single-row read beside it
  (indptr in RAM, two dataset slices per row).
- `m[rows]` for `--block` random rows (sorted, distinct) as a `scipy.sparse.csr_array`:
  median of `--repeats` runs (`--fast-repeats` for the sub-millisecond jobs); anndata `read_h5ad(backed="r").X[rows]`; h5py gathering
  the same rows into a CSR by hand; scipy fancy indexing of the matrix in memory (the floor).

Every result is checked against M1 before it is timed. Prints a table; `--json` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp

import vecfmt
from vecfmt._matrix import _write_csr

warnings.filterwarnings("ignore", category=FutureWarning)


def log(msg: str) -> None:
    print(f"[py_reads {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_m1(d: pathlib.Path) -> sp.csr_array:
    shape = json.loads((d / "shape.json").read_text())
    indptr = np.fromfile(d / "indptr.i64", dtype="<i8")
    indices = np.fromfile(d / "indices.i32", dtype="<i4")
    data = np.fromfile(d / "data.f32", dtype="<f4")
    return sp.csr_array((data, indices, indptr), shape=(shape["n_rows"], shape["n_cols"]))


def percentiles(ns: list[int]) -> dict:
    a = np.array(ns, dtype=np.float64) / 1000.0
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99))}


def row_latency_vecfmt(path: pathlib.Path, rows: np.ndarray, ref: sp.csr_array) -> dict:
    with vecfmt.open(path) as m:
        for r in rows:  # warm: pages faulted in, chunks checked (and decoded, for zstd)
            idx, val = m.row(int(r))
        for r in rows[:200]:
            idx, val = m.row(int(r))
            lo, hi = ref.indptr[r], ref.indptr[r + 1]
            assert np.array_equal(idx, ref.indices[lo:hi]) and np.array_equal(val, ref.data[lo:hi])
        row = m.row
        clock = time.perf_counter_ns
        ids = [int(r) for r in rows]
        ns = []
        for r in ids:
            t0 = clock()
            row(r)
            ns.append(clock() - t0)
        # What a bare call of the clock costs, to read the figures against.
        empty = []
        for _ in ids[:2000]:
            t0 = clock()
            empty.append(clock() - t0)
    out = percentiles(ns)
    out["clock_overhead_us"] = float(np.median(empty)) / 1000.0
    return out


def row_latency_h5py(path: pathlib.Path, rows: np.ndarray) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        g = f["X"]
        indptr = g["indptr"][:]
        ind, dat = g["indices"], g["data"]
        for r in rows:
            a, b = indptr[r], indptr[r + 1]
            ind[a:b], dat[a:b]
        clock = time.perf_counter_ns
        ns = []
        for r in rows:
            t0 = clock()
            a, b = indptr[r], indptr[r + 1]
            ind[a:b]
            dat[a:b]
            ns.append(clock() - t0)
    return percentiles(ns)


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def h5py_gather(g, indptr: np.ndarray, rows: np.ndarray, n_cols: int) -> sp.csr_array:
    """The rows of an h5py CSR group as a csr_array: one pair of slices per row."""
    ind, dat = g["indices"], g["data"]
    parts_i, parts_d, lens = [], [], []
    for r in rows:
        a, b = indptr[r], indptr[r + 1]
        parts_i.append(ind[a:b])
        parts_d.append(dat[a:b])
        lens.append(b - a)
    out_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=out_ptr[1:])
    return sp.csr_array((np.concatenate(parts_d), np.concatenate(parts_i), out_ptr), shape=(len(rows), n_cols))


def same(a, b) -> bool:
    a, b = sp.csr_array(a), sp.csr_array(b)
    return (
        a.shape == b.shape
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=pathlib.Path, default=pathlib.Path("target/bench-data"))
    ap.add_argument("--rows", type=int, default=10_000, help="random rows for m.row(i)")
    ap.add_argument("--block", type=int, default=1_000, help="random rows for m[rows]")
    ap.add_argument("--repeats", type=int, default=5, help="runs of the peers' block reads")
    ap.add_argument("--fast-repeats", type=int, default=31, help="runs of vecfmt's and in-memory scipy's")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import anndata
    import h5py

    m1_dir = args.data / "m1"
    if not (m1_dir / "shape.json").exists():
        sys.exit(f"{m1_dir} is missing: run `cargo run --release -p vecfmt-benches --bin m1_report` first")
    log("loading M1")
    ref = load_m1(m1_dir)
    n_rows, n_cols = ref.shape
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="py_reads_"))
    files = {}
    for codec in ["raw", "zstd"]:
        p = args.data / "m1-vfm" / f"m1.{codec}.vfm"
        if not p.exists():
            p = tmp / f"m1.{codec}.vfm"
            log(f"writing {p}")
            _write_csr(p, ref, codec=codec)
        files[codec] = p
    h5ad = tmp / "m1.h5ad"
    log(f"writing {h5ad} (anndata, uncompressed)")
    anndata.AnnData(X=sp.csr_matrix(ref)).write_h5ad(h5ad)

    rng = np.random.default_rng(args.seed)
    rows = rng.integers(0, n_rows, args.rows)
    block = np.sort(rng.choice(n_rows, args.block, replace=False))
    result: dict = {
        "rows": args.rows,
        "block": args.block,
        "repeats": args.repeats,
        "fast_repeats": args.fast_repeats,
        "files": {k: str(v) for k, v in files.items()},
    }

    for codec, p in files.items():
        log(f"m.row(i), {codec}")
        result[f"vecfmt_row_{codec}_us"] = row_latency_vecfmt(p, rows, ref)
    log("h5py row")
    result["h5py_row_us"] = row_latency_h5py(h5ad, rows)

    want = ref[block]
    for codec, p in files.items():
        with vecfmt.open(p) as m:
            got = m[block]
            assert same(got, want), f"vecfmt {codec}: wrong rows"
            log(f"m[rows], {codec}")
            result[f"vecfmt_block_{codec}_s"] = median_time(lambda: m[block], args.fast_repeats)
            # The same rows one call each, for scale.
            result[f"vecfmt_block_{codec}_by_row_s"] = median_time(
                lambda: [m.row(int(r)) for r in block], args.fast_repeats
            )

    log("anndata backed")
    t0 = time.perf_counter()
    backed = anndata.read_h5ad(h5ad, backed="r")
    result["anndata_open_s"] = time.perf_counter() - t0
    got = backed.X[block]
    assert same(got, want), "anndata: wrong rows"
    result["anndata_backed_block_s"] = median_time(lambda: backed.X[block], max(1, args.repeats // 2))
    backed.file.close()

    log("h5py gather")
    with h5py.File(h5ad, "r") as f:
        g = f["X"]
        indptr = g["indptr"][:]
        assert same(h5py_gather(g, indptr, block, n_cols), want), "h5py: wrong rows"
        result["h5py_gather_block_s"] = median_time(lambda: h5py_gather(g, indptr, block, n_cols), args.repeats)

    log("scipy in memory")
    result["scipy_in_memory_block_s"] = median_time(lambda: ref[block], args.fast_repeats)

    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()

    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(
        f"M1 {n_rows} x {n_cols}, nnz {ref.nnz}; {args.rows} random rows, blocks of {args.block} "
        f"(medians of {args.fast_repeats} runs, {args.repeats} for the peers)"
    )
    print("m.row(i), one call timed each (us):")
    for k in ["vecfmt_row_raw_us", "vecfmt_row_zstd_us", "h5py_row_us"]:
        r = result[k]
        print(f"  {k:28s} p50 {r['p50']:8.2f}  p90 {r['p90']:8.2f}  p99 {r['p99']:8.2f}")
    print(f"  (a bare perf_counter_ns pair costs {result['vecfmt_row_raw_us']['clock_overhead_us']:.3f} us)")
    print(f"{args.block} random rows as a csr_array (ms):")
    base = result["vecfmt_block_raw_s"]
    for k in [
        "vecfmt_block_raw_s",
        "vecfmt_block_zstd_s",
        "vecfmt_block_raw_by_row_s",
        "vecfmt_block_zstd_by_row_s",
        "anndata_backed_block_s",
        "h5py_gather_block_s",
        "scipy_in_memory_block_s",
    ]:
        print(f"  {k:28s} {result[k] * 1000:10.3f}   {result[k] / base:8.1f}x vecfmt raw")
    print(f"  anndata backed open: {result['anndata_open_s']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
