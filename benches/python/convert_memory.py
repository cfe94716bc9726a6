#!/usr/bin/env python3
"""Issue 20, part 4: the peak memory of every `vecfmt convert` input and output format at a
small `--memory`, against the budget + 64 MiB.

  convert_memory.py --vecfmt BIN --vfm SRC.vfm --work DIR [--memory 32M] [--slack 64M]

SRC.vfm is a labelled matrix (`convert_report --memory-check` makes one with `vecfmt cooccur`,
about 70 M nonzeros). Every output format is written from it at `--memory` (measured), then
every output is read back into a `.vfm` at `--memory` (measured: the input side). Each run's
process tree (vecfmt and the HDF5 worker it starts) is sampled from /proc every 10 ms; the
peak of the tree's summed RssAnon (the memory the processes allocate) is judged against
budget + slack, and the peak of the summed VmRSS (which adds the file-backed pages: the
binary and the input's map, which the kernel can drop) is printed beside it. Prints one JSON
object on stdout; progress on stderr. Dense outputs are left out: the matrix is far larger
dense than on disk.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def log(msg):
    print(f"[convert_memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_size(s):
    s = s.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(float(s.rstrip("KMG")) * mult)


def status_kib(pid):
    """(RssAnon, VmRSS) of a live process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            v = {}
            for line in f:
                k, _, rest = line.partition(":")
                if k in ("RssAnon", "VmRSS"):
                    v[k] = int(rest.split()[0])
            return v.get("RssAnon", 0), v.get("VmRSS", 0)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def run_sampled(argv):
    """Runs argv, sampling its process tree every 10 ms. Returns peak summed RssAnon and VmRSS
    (bytes), the most processes seen at once, wall seconds, wait4's ru_maxrss and the exit code."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_anon = peak_rss = procs = 0
    per_pid = {}
    while True:
        pid_done, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid_done:
            break
        anon = rss = 0
        tree = descendants(p.pid)
        for q in tree:
            s = status_kib(q)
            if s:
                anon += s[0]
                rss += s[1]
                per_pid[q] = max(per_pid.get(q, 0), s[0])
        peak_anon, peak_rss, procs = max(peak_anon, anon), max(peak_rss, rss), max(procs, len(tree))
        time.sleep(0.01)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    p.stdout.close()
    p.stderr.close()
    return {
        "peak_anon": peak_anon * 1024,
        "peak_rss": peak_rss * 1024,
        "peak_anon_per_process": sorted((v * 1024 for v in per_pid.values()), reverse=True),
        "processes": procs,
        "wall": wall,
        "ru_maxrss": ru.ru_maxrss * 1024,
        "exit": os.waitstatus_to_exitcode(status),
        "stderr": err[-1000:],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vecfmt", required=True)
    ap.add_argument("--vfm", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--memory", default="32M")
    ap.add_argument("--slack", default="64M")
    ap.add_argument("--only", default=None, help="comma-separated output names (default: all)")
    a = ap.parse_args()
    budget, slack = parse_size(a.memory), parse_size(a.slack)
    os.makedirs(a.work, exist_ok=True)
    # name, file, extra arguments of the output
    outputs = [
        ("vfm", "m.vfm", []),
        ("npz", "m.npz", []),
        ("mtx", "m.mtx", []),
        ("parquet-coo", "m.parquet", []),
        ("parquet-list", "m_list.parquet", ["--layout", "list"]),
        ("h5-csr", "m.h5", []),
        ("h5-csc", "m_csc.h5", ["--layout", "csc"]),
        ("h5ad", "m.h5ad", []),
    ]
    if a.only:
        keep = set(a.only.split(","))
        outputs = [o for o in outputs if o[0] in keep]
    rows = []

    def measure(direction, name, inp, out, extra):
        try:
            os.remove(out)
        except FileNotFoundError:
            pass
        argv = [a.vecfmt, "convert", inp, out, "--memory", a.memory] + extra
        m = run_sampled(argv)
        m.update({"direction": direction, "format": name, "cmd": argv,
                  "output_bytes": os.path.getsize(out) if os.path.exists(out) else None,
                  "within": m["exit"] == 0 and m["peak_anon"] <= budget + slack})
        log(f"{direction} {name}: {m['wall']:.1f} s, anon {m['peak_anon'] / 2**20:.0f} MiB, "
            f"rss {m['peak_rss'] / 2**20:.0f} MiB, {m['processes']} process(es), exit {m['exit']}"
            + (f": {m['stderr'].strip()}" if m["exit"] else ""))
        rows.append(m)

    for name, file, extra in outputs:
        measure("write", name, a.vfm, os.path.join(a.work, file), extra)
    for name, file, _ in outputs:
        inp = os.path.join(a.work, file)
        if os.path.exists(inp):
            measure("read", name, inp, os.path.join(a.work, "back.vfm"), [])
    for name, file, _ in outputs:
        try:
            os.remove(os.path.join(a.work, file))
        except FileNotFoundError:
            pass
    with open("/proc/loadavg") as f:
        load = f.read().strip()
    print(json.dumps({"budget": budget, "slack": slack, "loadavg_end": load, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
