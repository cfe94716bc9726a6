#!/usr/bin/env python3
"""Building a matrix from Python (issue 17): the user's own job, and the raw add throughput.

**The user's own job** (`--corpus C1.txt`). Each line of the corpus makes its updates in the
user's Python code: a word's vector gets +1 at a hashed feature (crc32 % 4 M) of the next
word. The code reads a batch of lines at a time, maps words to ids with a dict, and makes
numpy arrays of rows and columns, as a numpy user would. Then:

- `a-dicts`: dicts of dicts (`vec[row][col] += 1`), then a CSR matrix and `save_npz`;
- `b-lil`: scipy `lil_matrix` (`m[row, col] += 1`; `dok_array` took 24 us per update here,
  five times lil), then `save_npz`;
- `c-tsv`, `c-bin`: `vecfmt build` through a pipe, fed TSV lines or the binary triplet
  stream (docs/TRIPLETS.md);
- `d-acc`: `vecfmt.Accumulator.add` with the numpy arrays of each batch, then `finish`;
- `frontend`: the user's code alone, storing nothing: the floor of all of the above.

**Raw add throughput** (`--raw N`): N batches of 1 M random updates (rows Zipf(1) over 1 M
rows, by rank; columns uniform over 4 M; f32 values), with the commit and the finish included,
against `vecfmt build` of the same updates as a binary triplet stream from a file:

- `raw-build`: `vecfmt build updates.bin` (all cores);
- `raw-acc`: one Python thread calling `add` (the extension cuts each batch among cores);
- `raw-acc-2py`: two Python threads calling `add`, one core each (`threads=1`).

Every job runs in a fresh Python process, `--repeats` times, interleaved; the medians of
wall time and the peak RSS (of the Python process, and of the `vecfmt build` child) are
printed, and the whole result as JSON with `--json`.

    python benches/python/py_build.py --vecfmt target/release/vecfmt \\
        --corpus target/bench-data/c1-20M.txt --raw 20 --memory 256M --raw-memory 1G

Needs the package importable (`pip install ./python`, or PYTHONPATH with the built
extension), numpy and scipy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from itertools import chain, islice

import numpy as np

DIM = 4_000_000  # columns: hashed features
N_WORDS = 1_000_000  # C1 has 1 M word types: the rows of the lil matrix
LINES_PER_BATCH = 10_000
RAW_BATCH = 1_000_000
RAW_ROWS = 1_000_000
TRIPLET_HEADER = b"VFMTRIP1" + (1).to_bytes(2, "little") + bytes([4, 1]) + bytes(4)  # u32 ids, f32
TRIPLET = np.dtype([("row", "<u4"), ("col", "<u4"), ("value", "<f4")])


def log(msg: str) -> None:
    print(f"[py_build {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the user's own job


def corpus_batches(path: str):
    """Yields (rows, cols) numpy arrays for each batch of lines: row = the word's id,
    col = the hashed feature of the next word in the line."""
    vocab: dict[str, int] = {}
    feature: list[int] = []
    feats = np.empty(0, np.int64)
    with open(path, encoding="utf-8") as f:
        while True:
            lines = list(islice(f, LINES_PER_BATCH))
            if not lines:
                return
            toks = [line.split() for line in lines]
            lens = np.fromiter(map(len, toks), np.int64, len(toks))
            flat = list(chain.from_iterable(toks))
            get = vocab.get
            ids = np.array([get(w, -1) for w in flat], np.int64)
            for k in np.flatnonzero(ids < 0).tolist():  # words not seen before
                w = flat[k]
                i = vocab.get(w)
                if i is None:
                    i = vocab[w] = len(feature)
                    feature.append(zlib.crc32(w.encode()) % DIM)
                ids[k] = i
            if len(feats) < len(feature):
                feats = np.array(feature, np.int64)
            # Every token but the last of its line has a next word.
            last = np.cumsum(lens) - 1
            keep = np.ones(len(ids), bool)
            keep[last[lens > 0]] = False
            pos = np.flatnonzero(keep)
            yield ids[pos], feats[ids[pos + 1]]


def job_frontend(args, out: str) -> dict:
    """The user's code alone, storing nothing: the floor of every job below."""
    n = 0
    for rows, _cols in corpus_batches(args.corpus):
        n += len(rows)
    open(out, "wb").close()
    return {"updates": n}


def job_a_dicts(args, out: str) -> dict:
    import scipy.sparse

    vec: dict[int, dict[int, float]] = {}
    n = 0
    for rows, cols in corpus_batches(args.corpus):
        for r, c in zip(rows.tolist(), cols.tolist()):
            d = vec.get(r)
            if d is None:
                d = vec[r] = {}
            d[c] = d.get(c, 0.0) + 1.0
        n += len(rows)
    n_rows = max(vec) + 1
    indptr = np.zeros(n_rows + 1, np.int64)
    for r, d in vec.items():
        indptr[r + 1] = len(d)
    np.cumsum(indptr, out=indptr)
    indices = np.empty(indptr[-1], np.int32)
    data = np.empty(indptr[-1], np.float32)
    for r, d in vec.items():
        a, b = indptr[r], indptr[r + 1]
        cols = np.fromiter(d.keys(), np.int32, len(d))
        order = np.argsort(cols)
        indices[a:b] = cols[order]
        data[a:b] = np.fromiter(d.values(), np.float32, len(d))[order]
    m = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n_rows, DIM))
    scipy.sparse.save_npz(out, m)
    return {"updates": n, "nnz": int(m.nnz)}


def job_b_lil(args, out: str) -> dict:
    import scipy.sparse

    m = scipy.sparse.lil_matrix((N_WORDS, DIM), dtype=np.float32)
    n = 0
    for rows, cols in corpus_batches(args.corpus):
        for r, c in zip(rows.tolist(), cols.tolist()):
            m[r, c] += 1
        n += len(rows)
    csr = m.tocsr()
    scipy.sparse.save_npz(out, csr)
    return {"updates": n, "nnz": int(csr.nnz)}


def build_pipe(args, out: str, memory: str) -> subprocess.Popen:
    return subprocess.Popen(
        [args.vecfmt, "build", "-o", out, "--memory", memory, "--force"],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def finish_pipe(p: subprocess.Popen) -> None:
    p.stdin.close()
    if p.wait() != 0:
        raise RuntimeError(f"vecfmt build exited {p.returncode}")


def job_c_tsv(args, out: str) -> dict:
    p = build_pipe(args, out, args.memory)
    n = 0
    for rows, cols in corpus_batches(args.corpus):
        p.stdin.write("".join(f"{r}\t{c}\t1\n" for r, c in zip(rows.tolist(), cols.tolist())).encode())
        n += len(rows)
    finish_pipe(p)
    return {"updates": n}


def job_c_bin(args, out: str) -> dict:
    p = build_pipe(args, out, args.memory)
    p.stdin.write(TRIPLET_HEADER)
    n = 0
    for rows, cols in corpus_batches(args.corpus):
        rec = np.empty(len(rows), TRIPLET)
        rec["row"], rec["col"], rec["value"] = rows, cols, 1
        p.stdin.write(rec.tobytes())
        n += len(rows)
    finish_pipe(p)
    return {"updates": n}


def job_d_acc(args, out: str) -> dict:
    import vecfmt

    n = 0
    acc = vecfmt.Accumulator(out, memory=args.memory)
    for rows, cols in corpus_batches(args.corpus):
        acc.add(rows, cols, 1.0)
        n += len(rows)
    acc.finish()
    return {"updates": n, "stats": acc.stats}


# ---------------------------------------------------------------- raw add throughput


def write_raw(path: str, n_batches: int) -> None:
    rng = np.random.default_rng(17)
    with open(path, "wb") as f:
        f.write(TRIPLET_HEADER)
        for _ in range(n_batches):
            rec = np.empty(RAW_BATCH, TRIPLET)
            # Zipf(1) by rank: log-uniform ranks, so rank r has weight about 1/r.
            rec["row"] = np.exp(rng.random(RAW_BATCH) * np.log(RAW_ROWS + 1)) - 1
            rec["col"] = rng.integers(0, DIM, RAW_BATCH, dtype=np.uint32)
            rec["value"] = rng.random(RAW_BATCH, dtype=np.float32)
            f.write(rec.tobytes())


def load_raw(path: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The updates as contiguous arrays of rows, columns and values, batch by batch (read a
    batch at a time: the process holds the 12 bytes per update of its arrays, no more)."""
    out = []
    with open(path, "rb") as f:
        f.seek(len(TRIPLET_HEADER))
        while len(rec := np.fromfile(f, TRIPLET, count=RAW_BATCH)):
            out.append((rec["row"].copy(), rec["col"].copy(), rec["value"].copy()))
    return out


def job_raw_build(args, out: str) -> dict:
    t = time.perf_counter()
    subprocess.run(
        [args.vecfmt, "build", args.raw_file, "-o", out, "--memory", args.raw_memory, "--force"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return {"seconds": time.perf_counter() - t}


def raw_acc(args, out: str, py_threads: int) -> dict:
    import vecfmt

    batches = load_raw(args.raw_file)  # not timed: the user's arrays exist already
    n = sum(len(b[0]) for b in batches)
    t0 = time.perf_counter()
    acc = vecfmt.Accumulator(out, memory=args.raw_memory, threads=1 if py_threads > 1 else None)
    t1 = time.perf_counter()

    def work(k):
        for b in batches[k::py_threads]:
            acc.add(*b)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(py_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t2 = time.perf_counter()
    acc.commit()
    acc.finish()
    t3 = time.perf_counter()
    return {"seconds": t3 - t0, "adds_seconds": t2 - t1, "adds_per_s": n / (t2 - t1), "stats": acc.stats}


JOBS = {
    "frontend": job_frontend,
    "a-dicts": job_a_dicts,
    "b-lil": job_b_lil,
    "c-tsv": job_c_tsv,
    "c-bin": job_c_bin,
    "d-acc": job_d_acc,
    "raw-build": job_raw_build,
    "raw-acc": lambda a, o: raw_acc(a, o, 1),
    "raw-acc-2py": lambda a, o: raw_acc(a, o, 2),
}


def run_job(args) -> None:
    """In the child process: runs one job, prints its figures as JSON."""
    out = os.path.join(args.out_dir, args.job + (".vfm" if args.job[0] in "cdr" else ".npz"))
    t = time.perf_counter()
    res = JOBS[args.job](args, out)
    res.setdefault("seconds", time.perf_counter() - t)
    res["rss_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    res["rss_children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    res["bytes"] = os.path.getsize(out)
    if out.endswith(".vfm"):
        info = json.loads(subprocess.run([args.vecfmt, "inspect", out, "--json"], capture_output=True, check=True).stdout)
        res["nnz"] = info["nnz"]
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vecfmt", required=True, help="the vecfmt binary (a release build)")
    ap.add_argument("--corpus", help="a C1 corpus (benches' c1_gen); the user's job runs on it")
    ap.add_argument("--raw", type=int, default=0, help="batches of 1 M updates for the raw throughput")
    ap.add_argument("--memory", default="256M", help="budget of c-* and d-acc")
    ap.add_argument("--raw-memory", default="1G", help="budget of the raw jobs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated jobs to leave out (e.g. b-lil)")
    ap.add_argument("--json", action="store_true", help="print the whole result as JSON")
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    ap.add_argument("--raw-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.job:
        return run_job(args)

    skip = set(filter(None, args.skip.split(",")))
    jobs = []
    if args.corpus:
        jobs += [j for j in ("frontend", "a-dicts", "b-lil", "c-tsv", "c-bin", "d-acc") if j not in skip]
    if args.raw:
        jobs += [j for j in ("raw-build", "raw-acc", "raw-acc-2py") if j not in skip]
    results: dict[str, list[dict]] = {j: [] for j in jobs}
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # numpy's BLAS threads would spin beside the work
    with tempfile.TemporaryDirectory(prefix="py_build-") as tmp:
        raw_file = os.path.join(tmp, "updates.bin")
        if args.raw:
            log(f"writing {args.raw} M raw updates")
            write_raw(raw_file, args.raw)
        for rep in range(args.repeats):
            for j in jobs:
                cmd = [sys.executable, __file__, "--job", j, "--out-dir", tmp, "--raw-file", raw_file]
                cmd += ["--vecfmt", args.vecfmt, "--memory", args.memory, "--raw-memory", args.raw_memory]
                if args.corpus:
                    cmd += ["--corpus", args.corpus]
                p = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if p.returncode != 0:
                    sys.exit(f"job {j} failed:\n{p.stderr}")
                r = json.loads(p.stdout.strip().splitlines()[-1])
                results[j].append(r)
                log(f"run {rep + 1}/{args.repeats} {j}: {r['seconds']:.2f} s, peak RSS {r['rss_self'] / 2**20:.0f} MiB")

    med = {j: statistics.median(r["seconds"] for r in rs) for j, rs in results.items()}
    peak = {j: max(r["rss_self"] for r in rs) for j, rs in results.items()}
    child = {j: max(r["rss_children"] for r in rs) for j, rs in results.items()}
    print(f"machine: {os.cpu_count()} cores; medians of {args.repeats} interleaved runs")
    if args.corpus:
        upd = results.get("d-acc", results.get("c-bin", [{}]))[0].get("updates")
        print(f"\nthe user's job on {os.path.basename(args.corpus)}: {upd} updates, budget {args.memory}")
        print(f"{'job':<12}{'seconds':>9}{'vs d':>8}{'py RSS MiB':>12}{'child MiB':>11}{'nnz':>10}")
        for j in ("frontend", "a-dicts", "b-lil", "c-tsv", "c-bin", "d-acc"):
            if j in med:
                ratio = med[j] / med["d-acc"] if "d-acc" in med else float("nan")
                nnz = results[j][0].get("nnz", "")
                print(f"{j:<12}{med[j]:>9.2f}{ratio:>7.1f}x{peak[j] / 2**20:>12.0f}{child[j] / 2**20:>11.0f}{nnz:>10}")
    if args.raw:
        n = args.raw * RAW_BATCH
        print(f"\nraw add throughput: {n / 1e6:.0f} M updates, budget {args.raw_memory}")
        for j in ("raw-build", "raw-acc", "raw-acc-2py"):
            if j in med:
                adds = [r["adds_per_s"] for r in results[j] if "adds_per_s" in r]
                extra = f", adds alone {statistics.median(adds) / 1e6:.1f} M/s" if adds else ""
                rss = max(peak[j], child[j])
                acc_peak = [r["stats"]["memory_peak"] for r in results[j] if "stats" in r]
                if acc_peak:  # the process also holds the 12 bytes per update of its input arrays
                    extra += f"; the accumulator's own peak {max(acc_peak) / 2**20:.0f} MiB"
                print(f"{j:<12}{med[j]:>7.2f} s  {n / med[j] / 1e6:5.2f} M updates/s end to end{extra}; peak RSS {rss / 2**20:.0f} MiB")
    if args.json:
        print(json.dumps({"medians": med, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
