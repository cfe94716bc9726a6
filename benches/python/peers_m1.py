#!/usr/bin/env python3
"""Python peers for benchmark workload M1 ("the Python way").

Measures what a typical Python user would do with a CSR matrix, so the Rust
benchmark runner can print the numbers side by side with vecfmt:

  1. scipy.sparse.save_npz(compressed=True)            -> seconds, bytes
  2. h5py CSR write, uncompressed contiguous           -> seconds, bytes
  3. h5py CSR write, gzip 4 + shuffle, 65536-elt chunks -> seconds, bytes
  4. warm random single-row read latency on 2. and 3.  -> p50/p99 microseconds
     (3. is measured twice: default chunk cache, and one big enough for all chunks)
  5. sequential full scan of 2. (data + indices)       -> seconds
  6. peak RSS of this process                          -> bytes

Input: DATA_DIR with raw little-endian arrays indptr.i64, indices.i32,
data.f32 and shape.json = {"n_rows": R, "n_cols": C, "nnz": N}.

Output: one JSON object on stdout. Progress goes to stderr.
See benches/python/README.md.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time

import h5py
import numpy as np
import scipy
import scipy.sparse

CHUNK_ELEMS = 65536
BIG_CACHE_SLOTS = 100003  # prime, >> number of chunks at M1 size
GROUP = "X"


def log(msg):
    print(f"[peers_m1 {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fsync_path(path):
    # fsync through a fresh descriptor: on Linux this flushes the file's dirty
    # pages regardless of which descriptor wrote them.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def load_csr(data_dir):
    with open(os.path.join(data_dir, "shape.json")) as f:
        shape = json.load(f)
    n_rows, n_cols, nnz = int(shape["n_rows"]), int(shape["n_cols"]), int(shape["nnz"])
    indptr = np.fromfile(os.path.join(data_dir, "indptr.i64"), dtype="<i8")
    indices = np.fromfile(os.path.join(data_dir, "indices.i32"), dtype="<i4")
    data = np.fromfile(os.path.join(data_dir, "data.f32"), dtype="<f4")
    if indptr.size != n_rows + 1:
        sys.exit(f"indptr.i64 has {indptr.size} elements, expected n_rows+1 = {n_rows + 1}")
    if indices.size != nnz or data.size != nnz:
        sys.exit(f"indices/data have {indices.size}/{data.size} elements, expected nnz = {nnz}")
    if indptr[0] != 0 or indptr[-1] != nnz:
        sys.exit(f"indptr must start at 0 and end at nnz ({indptr[0]}..{indptr[-1]} vs {nnz})")
    return n_rows, n_cols, nnz, indptr, indices, data


def timed_write(label, path, write_fn, repeats):
    """Run write_fn(path) `repeats` times (fresh file each time); time includes
    close + fsync. Returns {"seconds": median, "bytes": size, ...}."""
    times = []
    size = None
    for i in range(repeats):
        remove(path)
        t0 = time.perf_counter()
        write_fn(path)
        fsync_path(path)
        dt = time.perf_counter() - t0
        times.append(dt)
        size = os.path.getsize(path)
        log(f"{label}: rep {i + 1}/{repeats} {dt:.3f} s, {size} bytes")
    return {
        "seconds": statistics.median(times),
        "bytes": size,
        "repeats": repeats,
        "all_seconds": times,
    }


def write_npz(path, mat):
    scipy.sparse.save_npz(path, mat, compressed=True)


def write_h5_raw(path, indptr, indices, data):
    with h5py.File(path, "w") as f:
        g = f.create_group(GROUP)
        g.create_dataset("data", data=data)
        g.create_dataset("indices", data=indices)
        g.create_dataset("indptr", data=indptr)


def write_h5_gzip4(path, indptr, indices, data):
    def chunks(n):
        return (max(1, min(CHUNK_ELEMS, n)),)

    opts = dict(compression="gzip", compression_opts=4, shuffle=True)
    with h5py.File(path, "w") as f:
        g = f.create_group(GROUP)
        g.create_dataset("data", data=data, chunks=chunks(data.size), **opts)
        g.create_dataset("indices", data=indices, chunks=chunks(indices.size), **opts)
        g.create_dataset("indptr", data=indptr, chunks=chunks(indptr.size), **opts)


def row_read_latency(label, path, rows, ref_indptr, ref_indices, ref_data, **file_kw):
    """Open once, indptr in RAM, one untimed (verified) warm-up pass, then one
    timed pass. Returns p50/p99 in microseconds. file_kw goes to h5py.File
    (e.g. rdcc_nbytes / rdcc_nslots to size the per-dataset chunk cache)."""
    with h5py.File(path, "r", **file_kw) as f:
        g = f[GROUP]
        indptr = g["indptr"][:]
        ds_indices = g["indices"]
        ds_data = g["data"]
        # (nslots, nbytes, w0) actually in effect for each opened dataset.
        cache = ds_indices.id.get_access_plist().get_chunk_cache()
        if not np.array_equal(indptr, ref_indptr):
            raise RuntimeError(f"{label}: indptr mismatch")

        log(f"{label}: warm-up pass over {rows.size} rows")
        for r in rows:
            a, b = indptr[r], indptr[r + 1]
            idx = ds_indices[a:b]
            val = ds_data[a:b]
            if not (np.array_equal(idx, ref_indices[a:b]) and np.array_equal(val, ref_data[a:b])):
                raise RuntimeError(f"{label}: row {r} mismatch")

        log(f"{label}: timed pass")
        lat = np.empty(rows.size, dtype=np.int64)
        clock = time.perf_counter_ns
        for i, r in enumerate(rows):
            t0 = clock()
            a, b = indptr[r], indptr[r + 1]
            idx = ds_indices[a:b]
            val = ds_data[a:b]
            lat[i] = clock() - t0
        del idx, val
    us = lat / 1e3
    res = {
        "p50": float(np.percentile(us, 50)),
        "p99": float(np.percentile(us, 99)),
        "mean": float(us.mean()),
        "max": float(us.max()),
        "reads": int(rows.size),
        "chunk_cache_bytes": int(cache[1]),
        "chunk_cache_slots": int(cache[0]),
    }
    log(f"{label}: p50 {res['p50']:.1f} us, p99 {res['p99']:.1f} us")
    return res


def scan(path, repeats):
    times = []
    total = 0
    for i in range(repeats):
        t0 = time.perf_counter()
        with h5py.File(path, "r") as f:
            g = f[GROUP]
            d = g["data"][:]
            x = g["indices"][:]
        dt = time.perf_counter() - t0
        total = d.nbytes + x.nbytes
        del d, x
        times.append(dt)
        log(f"h5py raw scan: rep {i + 1}/{repeats} {dt:.3f} s")
    return statistics.median(times), total, times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", metavar="DATA_DIR")
    ap.add_argument("--reads", type=int, default=20000, help="random rows to read (default 20000)")
    ap.add_argument("--out-dir", default=None, help="where to write outputs (default: a temp dir)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per write/scan job (default 3)")
    ap.add_argument("--npz-repeats", type=int, default=None,
                    help="repeats for save_npz, the slowest job (default: --repeats)")
    ap.add_argument("--seed", type=int, default=42, help="seed for the random rows (default 42)")
    args = ap.parse_args()
    if args.repeats < 1 or (args.npz_repeats is not None and args.npz_repeats < 1) or args.reads < 0:
        ap.error("repeats must be >= 1 and reads >= 0")
    npz_repeats = args.npz_repeats if args.npz_repeats is not None else args.repeats

    t_start = time.perf_counter()
    n_rows, n_cols, nnz, indptr, indices, data = load_csr(args.data_dir)
    log(f"loaded {n_rows} x {n_cols}, nnz {nnz} from {args.data_dir}")

    created_dir = None
    if args.out_dir is None:
        out_dir = created_dir = tempfile.mkdtemp(prefix="peers_m1_")
    else:
        out_dir = args.out_dir
        os.makedirs(out_dir, exist_ok=True)
    tag = f"peers_m1_{os.getpid()}"
    p_npz = os.path.join(out_dir, f"{tag}.npz")
    p_raw = os.path.join(out_dir, f"{tag}_raw.h5")
    p_gz = os.path.join(out_dir, f"{tag}_gzip4.h5")

    result = {}
    try:
        mat = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))
        result["save_npz"] = timed_write("save_npz", p_npz, lambda p: write_npz(p, mat), npz_repeats)
        del mat

        result["h5py_csr_raw_write"] = timed_write(
            "h5py raw write", p_raw, lambda p: write_h5_raw(p, indptr, indices, data), args.repeats)
        result["h5py_csr_gzip4_write"] = timed_write(
            "h5py gzip4 write", p_gz, lambda p: write_h5_gzip4(p, indptr, indices, data), args.repeats)
        result["h5py_csr_gzip4_write"]["chunk_elems"] = CHUNK_ELEMS

        rng = np.random.default_rng(args.seed)
        if n_rows > 0 and args.reads > 0:
            rows = rng.integers(0, n_rows, size=args.reads)
            result["h5py_raw_row_read_us"] = row_read_latency(
                "h5py raw rows", p_raw, rows, indptr, indices, data)
            # Default per-dataset chunk cache (what a user gets without tuning;
            # usually far smaller than the dataset, so most reads still inflate
            # a whole 256 KiB chunk even after the warm-up pass).
            result["h5py_gzip4_row_read_us"] = row_read_latency(
                "h5py gzip4 rows", p_gz, rows, indptr, indices, data)
            # Chunk cache big enough for every chunk: after the warm-up pass
            # nothing is inflated any more (the best case for gzip4 + h5py).
            big = int(max(indices.nbytes, data.nbytes, indptr.nbytes) * 1.25) + (16 << 20)
            result["h5py_gzip4_bigcache_row_read_us"] = row_read_latency(
                "h5py gzip4 rows, big chunk cache", p_gz, rows, indptr, indices, data,
                rdcc_nbytes=big, rdcc_nslots=BIG_CACHE_SLOTS)
        else:
            result["h5py_raw_row_read_us"] = None
            result["h5py_gzip4_row_read_us"] = None
            result["h5py_gzip4_bigcache_row_read_us"] = None

        scan_s, scan_bytes, scan_all = scan(p_raw, args.repeats)
        result["h5py_raw_scan_seconds"] = scan_s
        result["h5py_raw_scan"] = {"seconds": scan_s, "bytes": scan_bytes,
                                   "repeats": args.repeats, "all_seconds": scan_all}
    finally:
        for p in (p_npz, p_raw, p_gz):
            remove(p)
        if created_dir is not None:
            shutil.rmtree(created_dir, ignore_errors=True)

    ru = resource.getrusage(resource.RUSAGE_SELF)
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = ru.ru_maxrss if sys.platform == "darwin" else ru.ru_maxrss * 1024
    result["peak_rss_bytes"] = int(peak)
    result["input"] = {"n_rows": n_rows, "n_cols": n_cols, "nnz": nnz,
                       "reads": args.reads, "seed": args.seed}
    result["versions"] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
    }
    result["total_seconds"] = time.perf_counter() - t_start
    log(f"done in {result['total_seconds']:.1f} s")
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
