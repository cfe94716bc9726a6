"""Resuming a killed `vecfmt.cooccur` and `vecfmt.build` (issue 19): a process SIGKILLed
after a commit is continued with ``resume=True``; the result equals an uninterrupted run,
and the temporaries are gone. A resume with other options is refused, naming the option.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecfmt


def corpus(path: pathlib.Path, lines: int) -> pathlib.Path:
    """About 50 bytes a line over 2,000 Zipf-ish word types, deterministic."""
    rng = np.random.default_rng(7)
    ids = (rng.zipf(1.3, size=lines * 9) % 2000).reshape(lines, 9)
    with open(path, "w") as f:
        for row in ids:
            f.write(" ".join(f"w{i}" for i in row[: 3 + row[0] % 7]) + "\n")
    return path


def killed_after(func: str, args: str, commits: int, cwd: pathlib.Path) -> None:
    """Runs `vecfmt.<func>(<args>)` in a child that SIGKILLs itself once its progress
    reports `commits` commits in the pass over the input."""
    code = textwrap.dedent(
        f"""
        import os, signal, vecfmt
        def progress(p):
            if p["stage"] != "vocab" and (p.get("commits") or 0) >= {commits}:
                os.kill(os.getpid(), signal.SIGKILL)
        vecfmt.{func}({args}, progress=progress)
        raise SystemExit("finished before it was killed")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)


def same_matrix(a: pathlib.Path, b: pathlib.Path) -> None:
    ma, mb = vecfmt.open(a), vecfmt.open(b)
    assert ma.shape == mb.shape
    if ma.row_labels is not None:
        assert list(ma.row_labels) == list(mb.row_labels)
    x, y = ma.to_scipy(force=True), mb.to_scipy(force=True)
    assert x.dtype == y.dtype and (x != y).nnz == 0


def test_a_killed_cooccur_resumes_to_the_uninterrupted_result(tmp_path):
    text = corpus(tmp_path / "corpus.txt", 300_000)
    opts = dict(window=5, memory="128M", checkpoint="1M", threads=2)
    ref = tmp_path / "ref.vfm"
    vecfmt.cooccur(text, ref, **opts)
    out = tmp_path / "out.vfm"
    killed_after("cooccur", f"'corpus.txt', 'out.vfm', **{opts!r}", 3, tmp_path)
    # The kill left a working file at a commit (and maybe the temporaries of a finish).
    s = vecfmt.cooccur(text, out, resume=True, **opts)
    assert s["resumed_at_line"] and 0 < s["resumed_at_line"] < 300_000
    same_matrix(out, ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "out.vfm", "ref.vfm"]
    with pytest.raises(vecfmt.Error, match="finished; there is nothing to resume"):
        vecfmt.cooccur(text, out, resume=True, **opts)


def test_a_killed_build_resumes_to_the_uninterrupted_result(tmp_path):
    rng = np.random.default_rng(3)
    n = 600_000
    rows, cols = rng.integers(0, 3000, n), rng.integers(0, 5000, n)
    vals = rng.integers(1, 5, n)
    with open(tmp_path / "t.tsv", "w") as f:
        f.writelines(f"r{r}\tc{c}\t{v}\n" for r, c, v in zip(rows, cols, vals))
    opts = dict(row_labels=True, col_labels=True, dtype="u32", memory="128M", checkpoint="1M")
    ref = tmp_path / "ref.vfm"
    vecfmt.build(tmp_path / "t.tsv", ref, **opts)
    killed_after("build", f"'t.tsv', 'out.vfm', **{opts!r}", 3, tmp_path)
    s = vecfmt.build(tmp_path / "t.tsv", tmp_path / "out.vfm", resume=True, **opts)
    assert s["resumed_at_line"] and s["triplets"] == n
    # Labels get ids in order of first appearance: compare by label.
    a, b = vecfmt.open(ref), vecfmt.open(tmp_path / "out.vfm")
    assert sorted(a.row_labels) == sorted(b.row_labels)
    key = ["row_label", "col_label"]

    def by_label(m):
        df = m.to_pandas()[key + ["value"]].astype({k: str for k in key})
        return df.sort_values(key).reset_index(drop=True)

    assert by_label(a).equals(by_label(b))


def test_resuming_with_another_option_is_refused_and_names_it(tmp_path):
    text = corpus(tmp_path / "corpus.txt", 300_000)
    opts = dict(window=5, memory="128M", checkpoint="1M", threads=2)
    killed_after("cooccur", f"'corpus.txt', 'out.vfm', **{opts!r}", 3, tmp_path)
    before = (tmp_path / "out.vfm").read_bytes()
    with pytest.raises(vecfmt.InvalidInputError, match='option "window".*it had 5, now 6'):
        vecfmt.cooccur(text, tmp_path / "out.vfm", resume=True, **{**opts, "window": 6})
    assert (tmp_path / "out.vfm").read_bytes() == before
    assert os.path.exists(tmp_path / "out.vfm")
