#!/usr/bin/env python3
"""Issue-4 conversion benchmark: `vecfmt convert` and "the Python way", side by side.

Subcommands (each prints one JSON object on stdout; progress goes to stderr):

  make-npz DUMP_DIR NPZ
      Builds a scipy CSR (int32 indices and indptr, f32 values) from the raw M1 dump that
      `convert_report` writes (indptr.i64, indices.i32, data.f32, shape.json) and saves it
      once with `scipy.sparse.save_npz(compressed=True)`. Skipped when NPZ.json says it was
      built from the same dump (same M1 fingerprint).

  peer JOB IN OUT [--shape R,C]
      One Python way, run by `bench` in its own process so its peak RSS is its own. Imports
      happen first; the timed section starts after them and ends after the output is
      written, closed and fsynced. Prints the timed seconds, the split into load and save,
      and the RSS after imports. JOBs:
        npz2h5ad      load_npz -> anndata.AnnData(X).write_h5ad(OUT, compression="gzip")
        h5ad2npz      anndata.read_h5ad(IN).X (a scipy CSR) -> save_npz(OUT)
        npz2parquet   load_npz -> tocoo -> pd.DataFrame(row, col, value)
                      -> to_parquet(OUT, compression="zstd") (pyarrow)
        parquet2npz   pd.read_parquet(IN) -> coo_matrix((value, (row, col)), shape).tocsr()
                      -> save_npz(OUT)
        vfm2npz       save_npz(OUT) of the CSR already in memory: IN (an .npz) is loaded
                      before the timer starts; only the save (and fsync) is timed. Peak RSS
                      includes holding the matrix.
      The direct ways (issue 20), what a user who knows h5py or pyarrow writes:
        npz2h5_h5py   load_npz -> h5py: a group with data, indices, indptr, each chunked
                      like vecfmt's (131,072 entries; indptr 65,536), gzip 4 + shuffle
        npz2parquet_pyarrow
                      load_npz -> tocoo -> pa.table(row, col, value)
                      -> pq.write_table(OUT, compression="zstd")
        parquet2npz_pyarrow
                      pq.read_table(IN) -> coo_matrix((value, (row, col)), shape).tocsr()
                      -> save_npz(OUT)

  bench --vecfmt BIN --npz NPZ --work DIR [--reps N]
      Runs the five conversions and the three direct ones. For each, N repetitions alternate vecfmt then the Python
      way; every child is measured from outside (wall time from spawn to exit; peak RSS =
      `ru_maxrss` from `os.wait4` of that child alone). After the runs each output, vecfmt's
      and Python's, is checked against the source (see `check_*`): a benchmark must not time
      a broken conversion.

All outputs are removed before each run, so no run is an overwrite or an append.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.abspath(__file__)


def log(msg):
    print(f"[convert_peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fsync_path(path):
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
    except IsADirectoryError:
        import shutil

        shutil.rmtree(path)


def maxrss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------------------------------
# make-npz


def cmd_make_npz(a):
    import numpy as np
    import scipy.sparse

    with open(os.path.join(a.dump, "shape.json")) as f:
        meta = json.load(f)
    side = a.npz + ".json"
    if os.path.exists(a.npz) and os.path.exists(side):
        with open(side) as f:
            old = json.load(f)
        if old.get("source") == meta:
            log(f"{a.npz} is current (M1 fingerprint {meta.get('fingerprint')})")
            print(json.dumps(old))
            return
    n_rows, n_cols, nnz = meta["n_rows"], meta["n_cols"], meta["nnz"]
    indptr = np.fromfile(os.path.join(a.dump, "indptr.i64"), dtype="<i8").astype(np.int32)
    indices = np.fromfile(os.path.join(a.dump, "indices.i32"), dtype="<i4")
    data = np.fromfile(os.path.join(a.dump, "data.f32"), dtype="<f4")
    assert indptr.shape == (n_rows + 1,) and indices.shape == (nnz,) and data.shape == (nnz,)
    X = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))
    assert X.has_sorted_indices and X.indices.dtype == np.int32
    os.makedirs(os.path.dirname(os.path.abspath(a.npz)), exist_ok=True)
    tmp = a.npz + ".tmp.npz"
    t = time.perf_counter()
    scipy.sparse.save_npz(tmp, X, compressed=True)
    fsync_path(tmp)
    os.replace(tmp, a.npz)
    secs = time.perf_counter() - t
    out = {
        "source": meta,
        "shape": [n_rows, n_cols],
        "nnz": int(X.nnz),
        "bytes": os.path.getsize(a.npz),
        "value_sum": float(X.data.sum(dtype=np.float64)),
        "save_npz_seconds": secs,
    }
    with open(side, "w") as f:
        json.dump(out, f, indent=1)
    log(f"wrote {a.npz}: {out['bytes'] / 1e6:.1f} MB in {secs:.2f} s")
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------
# peer: one Python way, in its own process


def cmd_peer(a):
    import warnings

    import numpy as np
    import scipy.sparse

    warnings.simplefilter("ignore")
    job = a.job
    if job in ("npz2h5ad", "h5ad2npz"):
        import anndata
    if job in ("npz2parquet", "parquet2npz"):
        import pandas as pd
        import pyarrow  # noqa: F401  (the engine pandas uses)
    if job == "npz2h5_h5py":
        import h5py
    if job in ("npz2parquet_pyarrow", "parquet2npz_pyarrow"):
        import pyarrow as pa
        import pyarrow.parquet as pq
    pre = None
    if job == "vfm2npz":
        # The matrix is already in the user's hands; only the save is timed.
        pre = scipy.sparse.load_npz(a.inp)
    rss_after_imports = maxrss_bytes()
    remove(a.out)

    t0 = time.perf_counter()
    if job == "npz2h5ad":
        X = scipy.sparse.load_npz(a.inp)
        t1 = time.perf_counter()
        anndata.AnnData(X).write_h5ad(a.out, compression="gzip")
    elif job == "h5ad2npz":
        X = anndata.read_h5ad(a.inp).X
        assert scipy.sparse.issparse(X) and X.format == "csr", type(X)
        t1 = time.perf_counter()
        scipy.sparse.save_npz(a.out, X, compressed=True)
    elif job == "npz2parquet":
        coo = scipy.sparse.load_npz(a.inp).tocoo()
        df = pd.DataFrame({"row": coo.row, "col": coo.col, "value": coo.data})
        t1 = time.perf_counter()
        df.to_parquet(a.out, compression="zstd")
    elif job == "parquet2npz":
        df = pd.read_parquet(a.inp)
        shape = tuple(int(x) for x in a.shape.split(","))
        X = scipy.sparse.coo_matrix(
            (df["value"].to_numpy(), (df["row"].to_numpy(), df["col"].to_numpy())), shape=shape
        ).tocsr()
        t1 = time.perf_counter()
        scipy.sparse.save_npz(a.out, X, compressed=True)
    elif job == "vfm2npz":
        t1 = time.perf_counter()
        scipy.sparse.save_npz(a.out, pre, compressed=True)
    elif job == "npz2h5_h5py":
        X = scipy.sparse.load_npz(a.inp)
        t1 = time.perf_counter()
        with h5py.File(a.out, "w") as f:
            g = f.create_group("matrix")
            for name, arr, chunk in (("data", X.data, 1 << 17), ("indices", X.indices, 1 << 17),
                                     ("indptr", X.indptr.astype(np.int64), 1 << 16)):
                g.create_dataset(name, data=arr, chunks=(max(1, min(chunk, len(arr))),),
                                 compression="gzip", compression_opts=4, shuffle=True)
            g.attrs["encoding-type"] = "csr_matrix"
            g.attrs["encoding-version"] = "0.1.0"
            g.attrs["shape"] = np.array(X.shape, dtype=np.int64)
    elif job == "npz2parquet_pyarrow":
        coo = scipy.sparse.load_npz(a.inp).tocoo()
        t1 = time.perf_counter()
        pq.write_table(pa.table({"row": coo.row, "col": coo.col, "value": coo.data}), a.out,
                       compression="zstd")
    elif job == "parquet2npz_pyarrow":
        t = pq.read_table(a.inp)
        shape = tuple(int(x) for x in a.shape.split(","))
        X = scipy.sparse.coo_matrix(
            (t["value"].to_numpy(), (t["row"].to_numpy(), t["col"].to_numpy())), shape=shape
        ).tocsr()
        t1 = time.perf_counter()
        scipy.sparse.save_npz(a.out, X, compressed=True)
    else:
        raise SystemExit(f"unknown job {job}")
    fsync_path(a.out)
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "job": job,
                "seconds": t2 - t0,
                "load_seconds": t1 - t0,
                "save_seconds": t2 - t1,
                "rss_after_imports": rss_after_imports,
                "peak_rss_self": maxrss_bytes(),
            }
        )
    )


# ---------------------------------------------------------------------------------------
# checks: every output against the source CSR


def _same_csr(src, X, what, allow_fewer_cols=False):
    """Exact comparison of two scipy CSR matrices. Returns a dict; raises on mismatch."""
    import numpy as np

    X = X.tocsr()
    problems = []
    if X.shape[0] != src.shape[0]:
        problems.append(f"rows {X.shape[0]} != {src.shape[0]}")
    note = None
    if X.shape[1] != src.shape[1]:
        max_col = int(src.indices.max()) + 1 if src.nnz else 0
        if allow_fewer_cols and X.shape[1] == max_col:
            note = (
                f"shape {X.shape} instead of {src.shape}: a Parquet COO file has no shape, so "
                f"the column count is the largest column index + 1"
            )
        else:
            problems.append(f"shape {X.shape} != {src.shape}")
    if X.nnz != src.nnz:
        problems.append(f"nnz {X.nnz} != {src.nnz}")
    else:
        if not X.has_sorted_indices:
            X = X.sorted_indices()
        if not np.array_equal(X.indptr, src.indptr):
            problems.append("indptr differs")
        if not np.array_equal(X.indices, src.indices):
            problems.append("indices differ")
        if X.data.dtype != src.data.dtype:
            problems.append(f"dtype {X.data.dtype} != {src.data.dtype}")
        elif X.data.tobytes() != src.data.tobytes():
            problems.append("values differ")
    if problems:
        raise AssertionError(f"{what}: " + "; ".join(problems))
    out = {
        "ok": True,
        "nnz": int(X.nnz),
        "shape": list(X.shape),
        "value_sum": float(X.data.sum(dtype=np.float64)),
        "value_crc32": zlib.crc32(X.data.tobytes()),
        "index_crc32": zlib.crc32(np.ascontiguousarray(X.indices, dtype=np.int64).tobytes()),
        "dtypes": {"data": str(X.data.dtype), "indices": str(X.indices.dtype), "indptr": str(X.indptr.dtype)},
    }
    if note:
        out["note"] = note
    return out


def _h5_filters(path):
    """Compression of X/data in an h5ad (what each writer chose)."""
    import h5py

    with h5py.File(path, "r") as f:
        d = f["X"]["data"]
        return {
            "compression": d.compression,
            "compression_opts": d.compression_opts,
            "shuffle": bool(d.shuffle),
            "chunks": list(d.chunks) if d.chunks else None,
            "indices_dtype": str(f["X"]["indices"].dtype),
            "indptr_dtype": str(f["X"]["indptr"].dtype),
        }


def _parquet_meta(path):
    import pyarrow.parquet as pq

    m = pq.ParquetFile(path).metadata
    rg = m.row_group(0) if m.num_row_groups else None
    return {
        "rows": m.num_rows,
        "row_groups": m.num_row_groups,
        "columns": [m.schema.column(i).name for i in range(m.num_columns)],
        "physical_types": [m.schema.column(i).physical_type for i in range(m.num_columns)],
        "compression": rg.column(0).compression if rg else None,
    }


def check_output(kind, path, src, vecfmt_bin, scratch):
    """Loads `path` (an output of kind `kind`) back with the Python library, or for .vfm with
    `vecfmt verify` + `vecfmt convert` to .npz + scipy, and compares it with `src`."""
    import numpy as np
    import scipy.sparse

    if kind == "h5ad":
        import anndata

        X = anndata.read_h5ad(path).X
        r = _same_csr(src, X, path)
        r["hdf5"] = _h5_filters(path)
        return r
    if kind == "npz":
        return _same_csr(src, scipy.sparse.load_npz(path), path)
    if kind == "h5":
        import h5py

        with h5py.File(path, "r") as f:
            g = f["matrix"]
            X = scipy.sparse.csr_matrix(
                (g["data"][:], g["indices"][:], g["indptr"][:]), shape=tuple(int(x) for x in g.attrs["shape"])
            )
            d = g["data"]
            filters = {"compression": d.compression, "compression_opts": d.compression_opts,
                       "shuffle": bool(d.shuffle), "chunks": list(d.chunks) if d.chunks else None}
        X.indices = X.indices.astype(src.indices.dtype)
        X.indptr = X.indptr.astype(src.indptr.dtype)
        r = _same_csr(src, X, path)
        r["hdf5"] = filters
        return r
    if kind == "parquet":
        import pandas as pd

        df = pd.read_parquet(path)
        coo = src.tocoo()
        problems = []
        if len(df) != coo.nnz:
            problems.append(f"{len(df)} records != nnz {coo.nnz}")
        else:
            for col, ref in (("row", coo.row), ("col", coo.col), ("value", coo.data)):
                if col not in df.columns:
                    problems.append(f"no column {col!r} (columns: {list(df.columns)})")
                elif not np.array_equal(df[col].to_numpy(), ref):
                    problems.append(f"column {col!r} differs (in row-major order)")
        if problems:
            raise AssertionError(f"{path}: " + "; ".join(problems))
        return {
            "ok": True,
            "nnz": len(df),
            "value_sum": float(df["value"].to_numpy().sum(dtype=np.float64)),
            "value_crc32": zlib.crc32(df["value"].to_numpy().tobytes()),
            "dtypes": {c: str(df[c].dtype) for c in df.columns},
            "parquet": _parquet_meta(path),
        }
    if kind == "vfm":
        v = subprocess.run([vecfmt_bin, "verify", path], capture_output=True, text=True)
        if v.returncode != 0:
            raise AssertionError(f"vecfmt verify {path} exited {v.returncode}: {v.stderr.strip()}")
        info = json.loads(
            subprocess.run([vecfmt_bin, "inspect", path, "--json"], capture_output=True, text=True, check=True).stdout
        )
        back = os.path.join(scratch, "vfm_check.npz")
        remove(back)
        c = subprocess.run([vecfmt_bin, "convert", path, back], capture_output=True, text=True)
        if c.returncode != 0:
            raise AssertionError(f"vecfmt convert {path} {back} exited {c.returncode}: {c.stderr.strip()}")
        r = _same_csr(src, scipy.sparse.load_npz(back), path, allow_fewer_cols=True)
        remove(back)
        r["inspect"] = {k: info[k] for k in ("shape", "nnz", "dtype", "codec") if k in info} or info
        r["how"] = "vecfmt verify; vecfmt convert to .npz; scipy load_npz compared array for array"
        return r
    raise ValueError(kind)


# ---------------------------------------------------------------------------------------
# bench


def run_measured(argv, stdout_path, stderr_path):
    """Spawns argv and reaps it with os.wait4. Returns a dict: wall seconds from spawn to exit,
    peak RSS of that child alone (`ru_maxrss`), its user + system CPU seconds, its exit code
    and the 1-minute load average just before the spawn (the machine is shared)."""
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    with open(stdout_path, "wb") as so, open(stderr_path, "wb") as se:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=so, stderr=se)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "peak_rss": ru.ru_maxrss * 1024, "cpu_seconds": ru.ru_utime + ru.ru_stime,
            "exit": p.returncode, "loadavg_before": load}


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def cmd_bench(a):
    import numpy as np
    import scipy
    import scipy.sparse

    work = os.path.abspath(a.work)
    vf_dir, py_dir, logs = (os.path.join(work, d) for d in ("vecfmt", "python", "logs"))
    for d in (vf_dir, py_dir, logs):
        os.makedirs(d, exist_ok=True)
    npz = os.path.abspath(a.npz)
    with open(npz + ".json") as f:
        src_meta = json.load(f)
    shape = "{},{}".format(*src_meta["shape"])

    # The five conversions. Both sides read the same input file. The inputs of 2, 4 and 5
    # are outputs of earlier rows: the anndata-written .h5ad and the pandas-written .parquet
    # (the files a Python user has), and vecfmt's .vfm.
    h5ad_user = os.path.join(py_dir, "m.h5ad")
    parquet_user = os.path.join(py_dir, "m.parquet")
    vfm_in = os.path.join(vf_dir, "m_from_h5ad.vfm")
    convs = [
        ("npz2h5ad", ".npz -> .h5ad (anndata CSR, gzip)", npz,
         os.path.join(vf_dir, "m.h5ad"), h5ad_user, "h5ad", "h5ad"),
        ("h5ad2vfm", ".h5ad -> .vfm (Python: .h5ad -> .npz)", h5ad_user,
         vfm_in, os.path.join(py_dir, "m_from_h5ad.npz"), "vfm", "npz"),
        ("npz2parquet", ".npz -> Parquet COO (zstd)", npz,
         os.path.join(vf_dir, "m.parquet"), parquet_user, "parquet", "parquet"),
        ("parquet2vfm", "Parquet -> .vfm (Python: Parquet -> .npz)", parquet_user,
         os.path.join(vf_dir, "m_from_parquet.vfm"), os.path.join(py_dir, "m_from_parquet.npz"), "vfm", "npz"),
        ("vfm2npz", ".vfm -> .npz (Python: save_npz of the CSR in memory)", vfm_in,
         os.path.join(vf_dir, "out.npz"), os.path.join(py_dir, "out.npz"), "npz", "npz"),
        # The direct ways (issue 20): h5py and pyarrow, without anndata or pandas.
        ("npz2h5_direct", ".npz -> .h5 CSR, shuffle + gzip (vecfmt level 1, h5py level 4) (direct: h5py)", npz,
         os.path.join(vf_dir, "m.h5"), os.path.join(py_dir, "m_h5py.h5"), "h5", "h5"),
        ("npz2parquet_direct", ".npz -> Parquet COO, zstd (direct: pyarrow)", npz,
         os.path.join(vf_dir, "m_direct.parquet"), os.path.join(py_dir, "m_pyarrow.parquet"), "parquet", "parquet"),
        ("parquet2npz_direct", "Parquet -> .npz (direct: pyarrow + scipy)", parquet_user,
         os.path.join(vf_dir, "m_from_parquet.npz"), os.path.join(py_dir, "m_from_parquet_pa.npz"), "npz", "npz"),
    ]
    peer_job = {"npz2h5ad": "npz2h5ad", "h5ad2vfm": "h5ad2npz", "npz2parquet": "npz2parquet",
                "parquet2vfm": "parquet2npz", "vfm2npz": "vfm2npz", "npz2h5_direct": "npz2h5_h5py",
                "npz2parquet_direct": "npz2parquet_pyarrow", "parquet2npz_direct": "parquet2npz_pyarrow"}
    # Extra vecfmt arguments: a pandas-written Parquet file carries no shape.
    vf_extra = {"parquet2npz_direct": ["--shape", shape]}
    # Python's input for vfm2npz: it has no .vfm reader; the matrix it saves is the source
    # CSR, loaded from the .npz before its timer starts.
    peer_input = {"vfm2npz": npz}

    # Warm the page cache with the source.
    with open(npz, "rb") as f:
        while f.read(1 << 24):
            pass

    if a.only:
        keep = set(a.only.split(","))
        convs = [c for c in convs if c[0] in keep]

    results = []
    for key, title, inp, vf_out, py_out, vf_kind, py_kind in convs:
        log(f"== {key}: {title}")
        vf_cmd = [a.vecfmt, "convert", inp, vf_out] + vf_extra.get(key, [])
        py_cmd = [sys.executable, SCRIPT, "peer", peer_job[key], peer_input.get(key, inp), py_out, "--shape", shape]
        row = {"key": key, "title": title, "input": inp, "input_bytes": size_of(inp),
               "vecfmt_cmd": vf_cmd, "python_cmd": py_cmd, "vecfmt": [], "python": [], "errors": []}
        for rep in range(a.reps):
            # vecfmt
            remove(vf_out)
            so, se = (os.path.join(logs, f"{key}.vecfmt.{rep}.{s}") for s in ("out", "err"))
            m = run_measured(vf_cmd, so, se)
            wall, rss, code = m["wall"], m["peak_rss"], m["exit"]
            with open(se) as f:
                err = f.read().strip()
            row["vecfmt"].append({"seconds": wall, "peak_rss": rss, "cpu_seconds": m["cpu_seconds"],
                                  "exit": code, "loadavg_before": m["loadavg_before"]})
            if err:
                row["vecfmt_stderr"] = err[-2000:]
            log(f"   rep {rep} vecfmt {wall:.3f} s, {rss / 1e6:.0f} MB peak, exit {code}")
            if code != 0:
                row["errors"].append(f"vecfmt exited {code}: {err[-500:]}")
            # Python
            remove(py_out)
            so, se = (os.path.join(logs, f"{key}.python.{rep}.{s}") for s in ("out", "err"))
            m = run_measured(py_cmd, so, se)
            wall, rss, code = m["wall"], m["peak_rss"], m["exit"]
            rec = {"wall_seconds": wall, "peak_rss": rss, "cpu_seconds": m["cpu_seconds"], "exit": code,
                   "loadavg_before": m["loadavg_before"]}
            if code == 0:
                with open(so) as f:
                    rec.update(json.loads(f.read()))
            else:
                with open(se) as f:
                    row["errors"].append(f"python exited {code}: {f.read()[-500:]}")
            row["python"].append(rec)
            log(f"   rep {rep} python {rec.get('seconds', float('nan')):.3f} s timed "
                f"({wall:.3f} s with start-up and imports), {rss / 1e6:.0f} MB peak, exit {code}")
        ok_v = [r for r in row["vecfmt"] if r["exit"] == 0]
        ok_p = [r for r in row["python"] if r["exit"] == 0]
        if ok_v:
            row["vecfmt_median_seconds"] = statistics.median(r["seconds"] for r in ok_v)
            row["vecfmt_peak_rss"] = max(r["peak_rss"] for r in ok_v)
            row["vecfmt_median_cpu_seconds"] = statistics.median(r["cpu_seconds"] for r in ok_v)
            row["vecfmt_output_bytes"] = size_of(vf_out) if os.path.exists(vf_out) else None
        if ok_p:
            row["python_median_seconds"] = statistics.median(r["seconds"] for r in ok_p)
            row["python_median_wall_seconds"] = statistics.median(r["wall_seconds"] for r in ok_p)
            row["python_median_load_seconds"] = statistics.median(r["load_seconds"] for r in ok_p)
            row["python_median_save_seconds"] = statistics.median(r["save_seconds"] for r in ok_p)
            row["python_peak_rss"] = max(r["peak_rss"] for r in ok_p)
            row["python_median_cpu_seconds"] = statistics.median(r["cpu_seconds"] for r in ok_p)
            row["python_rss_after_imports"] = max(r["rss_after_imports"] for r in ok_p)
            row["python_output_bytes"] = size_of(py_out) if os.path.exists(py_out) else None
        results.append((row, vf_out, py_out, vf_kind, py_kind))

    # Checks, after all the timed runs (outputs of the last repetition).
    log("checking every output against the source")
    src = scipy.sparse.load_npz(npz).tocsr()
    scratch = os.path.join(work, "scratch")
    os.makedirs(scratch, exist_ok=True)
    rows = []
    for row, vf_out, py_out, vf_kind, py_kind in results:
        for side, path, kind in (("vecfmt", vf_out, vf_kind), ("python", py_out, py_kind)):
            if not os.path.exists(path):
                row[f"{side}_check"] = {"ok": False, "error": "no output"}
                continue
            try:
                row[f"{side}_check"] = check_output(kind, path, src, a.vecfmt, scratch)
            except Exception as e:  # noqa: BLE001 (reported, never hidden)
                row[f"{side}_check"] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            c = row[f"{side}_check"]
            log(f"   {row['key']} {side}: {'ok' if c.get('ok') else 'FAILED ' + c.get('error', '')}")
        rows.append(row)

    from importlib.metadata import version

    import h5py

    with open("/proc/loadavg") as f:
        load_end = f.read().strip()
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "reps": a.reps,
        "source": {"path": npz, **src_meta},
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "h5py": h5py.__version__,
                     "hdf5": h5py.version.hdf5_version, "pandas": version("pandas"),
                     "pyarrow": version("pyarrow"), "anndata": version("anndata")},
        "loadavg_end": load_end,
        "conversions": rows,
    }, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make-npz")
    p.add_argument("dump")
    p.add_argument("npz")
    p = sub.add_parser("peer")
    p.add_argument("job")
    p.add_argument("inp")
    p.add_argument("out")
    p.add_argument("--shape", default=None)
    p = sub.add_parser("bench")
    p.add_argument("--vecfmt", required=True)
    p.add_argument("--npz", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--only", default=None, help="comma-separated conversion keys to run (default: all)")
    a = ap.parse_args()
    {"make-npz": cmd_make_npz, "peer": cmd_peer, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main()
