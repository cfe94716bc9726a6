"""Issue 18's benchmark: cooccur on a Dask LocalCluster against `vecfmt cooccur` in one
process, side by side in one run, with the time of each phase; then the merge's throughput
(nonzeros per second) at fan-in 2, 8 and 16.

    make python-release            # the package built as a user gets it (release)
    cargo build --release -p vecfmt-cli
    cargo run --release -p vecfmt-benches --bin c1_gen -- --bytes 1G
    .venv/bin/python benches/python/dask_cooccur.py target/bench-data/c1-1g.txt [--reps 3] [--shards 8] [--no-merge-bench]

Prints one line per run and the medians. Runs alternate between the configurations, so that
a change in the machine's speed spreads over all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import vecfmt
import vecfmt.dask

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "target", "release", "vecfmt")
OPTS = dict(window=10, weighting="harmonic", min_count=5)


def one_process(corpus, out, threads, memory):
    t = time.monotonic()
    subprocess.run([BIN, "cooccur", corpus, "-o", out, "--window", "10", "--min-count", "5", "-j", str(threads),
                    "--memory", memory, "--force"], check=True, capture_output=True)
    return time.monotonic() - t, {}


def on_dask(corpus, out, workers, shards, memory):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=50) as cluster, Client(cluster) as client:
        t = time.monotonic()
        s = vecfmt.dask.cooccur(corpus, out, client, shards=shards, memory_per_task=memory, overwrite=True, **OPTS)
        return time.monotonic() - t, s["phases"]


def merge_throughput(work, parts, fan_ins, reps):
    rows = []
    for f in fan_ins:
        group = (parts * ((f + len(parts) - 1) // len(parts)))[:f]
        times = []
        for _ in range(reps):
            out = os.path.join(work, f"fan{f}.vfm")
            t = time.monotonic()
            s = vecfmt.merge(group, out, overwrite=True, memory="1G", dtype="f32")
            times.append(time.monotonic() - t)
        nnz_in = sum(vecfmt.open(p).nnz for p in group)
        med = statistics.median(times)
        rows.append((f, med, nnz_in, s["nnz"]))
        print(f"merge fan-in {f:2d}: median {med:.2f} s, {nnz_in / med / 1e6:.1f} M input nonzeros/s "
              f"({s['nnz']} out)", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--memory", default="2G", help="budget of the one process")
    ap.add_argument("--task-memory", default="1G", help="budget of each Dask task (2 run at once)")
    ap.add_argument("--work", default=None)
    ap.add_argument("--no-merge-bench", action="store_true", help="skip the merge throughput at fan-in 2, 8, 16")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="vecfmt-dask-bench-", dir=os.path.join(REPO, "target"))
    half = a.task_memory
    configs = {
        "vecfmt cooccur -j 2": lambda out: one_process(a.corpus, out, 2, a.memory),
        "dask 2 workers": lambda out: on_dask(a.corpus, out, 2, a.shards, half),
        "dask 1 worker": lambda out: on_dask(a.corpus, out, 1, a.shards, half),
    }
    times = {k: [] for k in configs}
    phases = {k: [] for k in configs}
    for r in range(a.reps):
        for name, run in configs.items():
            out = os.path.join(work, name.replace(" ", "_") + ".vfm")
            t, ph = run(out)
            times[name].append(t)
            phases[name].append(ph)
            print(f"rep {r + 1} {name}: {t:.1f} s {json.dumps({k: round(v, 1) for k, v in ph.items()})}", flush=True)
    base = statistics.median(times["vecfmt cooccur -j 2"])
    print("\nmedians:")
    for name in configs:
        med = statistics.median(times[name])
        ph = {k: round(statistics.median(p[k] for p in phases[name]), 1) for k in (phases[name][0] or {})}
        print(f"  {name:22s} {med:7.1f} s  {med / base:5.2f}x the one process  {ph}")
    one, two = statistics.median(times["dask 1 worker"]), statistics.median(times["dask 2 workers"])
    print(f"  2 workers / 1 worker speed-up: {one / two:.2f}x")
    if a.no_merge_bench:
        shutil.rmtree(work, ignore_errors=True)
        return 0
    # The merge alone: parts of 8 shards, kept from one Dask run.
    parts_dir = os.path.join(work, "parts")
    os.makedirs(parts_dir, exist_ok=True)
    parts = []
    vocab = os.path.join(parts_dir, "vocab.tsv")
    subprocess.run([BIN, "cooccur", a.corpus, "--vocab-only", "--save-vocab", vocab, "--min-count", "5"], check=True,
                   capture_output=True)
    for k in range(1, 9):
        p = os.path.join(parts_dir, f"part-{k}.vfm")
        if not os.path.exists(p):
            vecfmt.cooccur(a.corpus, p, shard=(k, 8), vocab=vocab, dtype="f64", codec="raw", memory=a.memory,
                           window=10)
        parts.append(p)
    print()
    merge_throughput(work, parts, [2, 8, 16], a.reps)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
