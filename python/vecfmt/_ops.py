"""The long operations: :func:`cooccur`, :func:`build`, :func:`merge`, :func:`compact` and
:func:`convert`.

Each runs in Rust with the GIL released, so other Python threads keep running. Each takes an
optional ``progress`` callback, called about five times a second with a dict such as
``{"stage": "cooccur", "done": 1048576, "total": 4194304, "unit": "bytes", "elapsed": 1.2,
...}``. Ctrl-C (KeyboardInterrupt) stops the call cleanly: a merge, compact or conversion
leaves no partial output (an existing output is untouched), and ``cooccur`` or ``build`` leave
their output at its last commit, with no temporary files. An exception raised by the callback
stops the call in the same way and is raised.

Sizes are bytes or strings such as ``"512M"``; durations are seconds or strings such as
``"60s"``. Each function returns a dict summarising what it did.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Mapping, Union

from vecfmt import _native, _worker

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[Mapping[str, Any]], Any]

__all__ = ["cooccur", "build", "merge", "compact", "convert", "vocab_part", "vocab_merge"]


def cooccur(
    inputs: PathLike | Iterable[PathLike],
    output: PathLike,
    *,
    window: int = 10,
    weighting: str = "harmonic",
    symmetric: bool = True,
    min_count: int = 1,
    max_vocab: int | None = None,
    lowercase: bool = False,
    memory: int | str | None = None,
    threads: int | None = None,
    shard: str | tuple[int, int] | None = None,
    vocab: PathLike | None = None,
    save_vocab: PathLike | None = None,
    dtype: str = "f32",
    codec: str = "zstd",
    checkpoint: int | float | str | None = "60s",
    overwrite: bool = False,
    resume: bool = False,
    scratch_dir: PathLike | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Counts word co-occurrences of text corpora (plain, ``.gz`` or ``.zst``) into a
    labelled ``.vfm`` matrix, GloVe's way: a window of ``window`` words on each side,
    weighted ``1/d`` (``"harmonic"``) or 1 (``"count"``), words below ``min_count``
    dropped. The same engine as ``vecfmt cooccur``.

    ``memory`` bounds the whole process (default: half the available memory); the output
    is committed every ``checkpoint``. ``shard="k/n"`` counts only the k-th of n byte
    ranges of the inputs (``vecfmt.merge`` sums the shards); ``vocab`` reads the vocabulary
    from a file instead of counting it, ``save_vocab`` writes it.

    ``resume=True`` continues a run that was killed or interrupted, from its last commit,
    without the vocabulary pass: the same inputs and options are required (a difference is
    an error naming it), and the result is that of an uninterrupted run. With no output yet
    it starts afresh, so a job script can always pass it. ``scratch_dir`` is for
    temporaries other than the output; ``cooccur`` makes none now (its sorted runs are inside
    the working file, at ``output``), so it has no effect. Temporaries that killed
    runs on the same output left behind are removed, and listed in the summary's
    ``removed_temporaries``.

    >>> import os, tempfile, vecfmt
    >>> d = tempfile.mkdtemp()
    >>> corpus = os.path.join(d, "corpus.txt")
    >>> _ = open(corpus, "w").write("the cat sat on the mat\\nthe dog sat\\n")
    >>> s = vecfmt.cooccur(corpus, os.path.join(d, "cooc.vfm"), window=2, memory="64M")
    >>> s["words"], s["shape"]
    (6, (6, 6))
    """
    return _native.cooccur(
        _paths(inputs), os.fspath(output), window=window, weighting=weighting, symmetric=symmetric,
        min_count=min_count, max_vocab=max_vocab, lowercase=lowercase, memory=memory,
        threads=threads, shard=shard, vocab=_opt_path(vocab), save_vocab=_opt_path(save_vocab),
        dtype=dtype, codec=codec, checkpoint=checkpoint, overwrite=overwrite, resume=resume,
        scratch_dir=_opt_path(scratch_dir), progress=progress,
    )


def build(
    inputs: PathLike | Iterable[PathLike],
    output: PathLike,
    *,
    row_labels: bool = False,
    col_labels: bool = False,
    n_rows: int | None = None,
    n_cols: int | None = None,
    append: bool = False,
    overwrite: bool = False,
    memory: int | str | None = None,
    threads: int | None = None,
    dtype: str = "f32",
    codec: str = "zstd",
    checkpoint: int | float | str | None = "60s",
    resume: bool = False,
    scratch_dir: PathLike | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Sums ``row col value`` triplet files (text, or vecfmt's binary triplet stream) into
    a ``.vfm`` matrix, as ``vecfmt build`` does. With ``row_labels``/``col_labels`` the
    first two fields are labels. ``append=True`` adds to an existing file.
    ``resume=True`` continues a killed or interrupted build from its last commit, as in
    :func:`cooccur`; ``scratch_dir`` as there.

    >>> import os, tempfile, vecfmt
    >>> d = tempfile.mkdtemp()
    >>> t = os.path.join(d, "t.tsv")
    >>> _ = open(t, "w").write("0\\t3\\t1.5\\n2\\t1\\t2\\n0\\t3\\t1\\n")
    >>> vecfmt.build(t, os.path.join(d, "m.vfm"))["nnz"]
    2
    """
    return _native.build(
        _paths(inputs), os.fspath(output), row_labels=row_labels, col_labels=col_labels,
        n_rows=n_rows, n_cols=n_cols, append=append, overwrite=overwrite, memory=memory,
        threads=threads, dtype=dtype, codec=codec, checkpoint=checkpoint, resume=resume,
        scratch_dir=_opt_path(scratch_dir), progress=progress,
    )


def merge(
    inputs: PathLike | Iterable[PathLike],
    output: PathLike,
    *,
    labels: str = "auto",
    memory: int | str | None = None,
    dtype: str | None = None,
    codec: str = "zstd",
    zstd_level: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Sums ``.vfm`` matrices into a new one. ``labels="auto"`` matches rows and columns
    by label where every input has labels (the result has the union), and by position
    otherwise; ``"require"`` insists on labels, ``"ignore"`` matches by position. Floats
    are summed in f64 and rounded once. The output appears only when complete. Rows are
    summed on ``threads`` threads (default: one per core), each on its own range of rows.

    >>> import os, tempfile, vecfmt
    >>> d = tempfile.mkdtemp()
    >>> corpus = os.path.join(d, "c.txt")
    >>> _ = open(corpus, "w").write("a b c a b\\nc a\\n")
    >>> parts = [os.path.join(d, f"p{k}.vfm") for k in (1, 2)]
    >>> for k, p in enumerate(parts, 1):
    ...     _ = vecfmt.cooccur(corpus, p, window=2, shard=(k, 2), memory="64M")
    >>> vecfmt.merge(parts, os.path.join(d, "all.vfm"))["shape"]
    (3, 3)
    """
    return _native.merge(
        _paths(inputs), os.fspath(output), labels=labels, memory=memory, dtype=dtype,
        codec=codec, zstd_level=zstd_level, overwrite=overwrite, progress=progress,
        threads=threads,
    )


def compact(
    path: PathLike,
    *,
    codec: str = "zstd",
    zstd_level: int | None = None,
    memory: int | str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Rewrites a ``.vfm`` file densely with ``codec``, freeing the space that updates
    left behind, and finishes a build that stopped after a commit. The new file replaces
    the old one only when complete.

    >>> import os, tempfile, vecfmt
    >>> d = tempfile.mkdtemp()
    >>> t = os.path.join(d, "t.tsv")
    >>> _ = open(t, "w").write("0\\t3\\t1.5\\n")
    >>> m = os.path.join(d, "m.vfm")
    >>> _ = vecfmt.build(t, m, codec="raw")
    >>> vecfmt.compact(m, zstd_level=19)["nnz"]
    1
    """
    return _native.compact(
        os.fspath(path), codec=codec, zstd_level=zstd_level, memory=memory, progress=progress
    )


def convert(
    src: PathLike,
    dst: PathLike,
    *,
    src_format: str | None = None,
    dst_format: str | None = None,
    layout: str | None = None,
    dtype: str | None = None,
    allow_lossy: bool = False,
    codec: str = "zstd",
    memory: int | str | None = None,
    row_col: str | None = None,
    col_col: str | None = None,
    value_col: str | None = None,
    dataset: str | None = None,
    shape: tuple[int, int] | None = None,
    gzip_level: int = 1,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Converts between ``.vfm``, scipy ``.npz``, ``.npy``, HDF5 (CSR, CSC, COO, dense,
    PyTables, pandas), ``.h5ad``, Parquet and Matrix Market, streaming under ``memory``.
    Formats come from the extensions unless named. The output appears only when complete;
    notes (a dtype read as another, labels not used) are returned under ``"notes"``.
    ``shape=(n_rows, n_cols)`` states the shape of an input that carries none (Parquet from
    pandas, pyarrow or Spark); an input that carries another is an error.
    ``gzip_level`` is the deflate level 0-9 of an HDF5 or ``.h5ad`` output, after the
    shuffle filter (0 for none; 1, the default, is about the size of h5py's gzip level 4).

    >>> import os, tempfile, vecfmt
    >>> d = tempfile.mkdtemp()
    >>> t = os.path.join(d, "t.tsv")
    >>> _ = open(t, "w").write("0\\t3\\t1.5\\n2\\t1\\t2\\n")
    >>> _ = vecfmt.build(t, os.path.join(d, "m.vfm"))
    >>> s = vecfmt.convert(os.path.join(d, "m.vfm"), os.path.join(d, "m.npz"))
    >>> s["from"], s["to"], s["nnz"]
    ('vfm', 'npz', 2)
    """
    return _native.convert(
        os.fspath(src), os.fspath(dst), src_format=src_format, dst_format=dst_format,
        layout=layout, dtype=dtype, allow_lossy=allow_lossy, codec=codec, memory=memory,
        row_col=row_col, col_col=col_col, value_col=value_col, dataset=dataset, shape=shape,
        gzip_level=gzip_level, overwrite=overwrite, worker=_worker.command(), progress=progress,
    )


def plot(
    path: PathLike,
    output: PathLike,
    *,
    rows: tuple[int | None, int | None] | None = None,
    cols: tuple[int | None, int | None] | None = None,
    width: int = 1500,
    height: int = 1000,
    bins: int | None = None,
    memory: int | str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Draws a ``.vfm`` matrix as one PNG, in one streaming pass with bounded memory: the
    sparsity pattern (binned to at most 1000 x 1000 cells, log colour scale), the rows by
    their nonzeros (log-log), and the columns' nonzeros by rank (log-log, Zipf at a glance),
    under a title with the file, shape, nonzeros and dtype. ``rows`` and ``cols`` zoom in:
    ``(start, stop)``, either end ``None`` for open. As ``vecfmt plot`` on the command line.

    >>> import os, tempfile, vecfmt
    >>> d = tempfile.mkdtemp()
    >>> t = os.path.join(d, "t.tsv")
    >>> _ = open(t, "w").write("0\\t3\\t1.5\\n2\\t1\\t2\\n5\\t9\\t1\\n")
    >>> _ = vecfmt.build(t, os.path.join(d, "m.vfm"))
    >>> s = vecfmt.plot(os.path.join(d, "m.vfm"), os.path.join(d, "m.png"), rows=(0, 3))
    >>> s["shape"], s["nnz"], s["nnz_in_view"]
    ((6, 10), 3, 2)
    >>> open(os.path.join(d, "m.png"), "rb").read(4)
    b'\\x89PNG'
    """
    return _native.plot(
        os.fspath(path), os.fspath(output), rows=rows, cols=cols, width=width, height=height, bins=bins,
        memory=memory, overwrite=overwrite, progress=progress,
    )


def vocab_part(
    inputs: PathLike | Iterable[PathLike],
    output: PathLike,
    *,
    shard: str | tuple[int, int] | None = None,
    lowercase: bool = False,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Counts the words of ``inputs``, or of one shard of them (the lines
    ``vecfmt.cooccur(..., shard=...)`` reads), into a vocabulary file of partial counts
    (``word<TAB>count``), uncut. :func:`vocab_merge` sums the parts of every shard and cuts
    once, so the distributed vocabulary equals one pass's. The same as ``vecfmt cooccur
    --vocab-only --shard K/N --save-vocab``.

    >>> import os, tempfile, vecfmt
    >>> d = tempfile.mkdtemp()
    >>> corpus = os.path.join(d, "c.txt")
    >>> _ = open(corpus, "w").write("a b a\\nc a b\\nb a d\\n")
    >>> parts = [os.path.join(d, f"v{k}.tsv") for k in (1, 2)]
    >>> for k, p in enumerate(parts, 1):
    ...     _ = vecfmt.vocab_part(corpus, p, shard=(k, 2))
    >>> vecfmt.vocab_merge(parts, os.path.join(d, "vocab.tsv"), min_count=2)["words"]
    2
    >>> open(os.path.join(d, "vocab.tsv")).read().split()
    ['a', '4', 'b', '3']
    """
    return _native.vocab_part(
        _paths(inputs), os.fspath(output), shard=shard, lowercase=lowercase, threads=threads,
        progress=progress,
    )


def vocab_merge(
    parts: Iterable[PathLike],
    output: PathLike,
    *,
    min_count: int = 1,
    max_vocab: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Sums vocabulary parts (see :func:`vocab_part`), then keeps the words counted at
    least ``min_count`` times, at most ``max_vocab`` of them, ranked by count and then by
    the word's bytes, as a single pass ranks them. The same as ``vecfmt vocab merge``."""
    return _native.vocab_merge(
        _paths(parts), os.fspath(output), min_count=min_count, max_vocab=max_vocab,
        overwrite=overwrite,
    )


def _paths(inputs: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(inputs, (str, bytes, os.PathLike)):
        return [os.fspath(inputs)]  # type: ignore[list-item]
    return [os.fspath(p) for p in inputs]


def _opt_path(p: PathLike | None) -> str | None:
    return None if p is None else os.fspath(p)
