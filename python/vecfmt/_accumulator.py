"""Building a matrix from Python: :class:`vecfmt.Accumulator`.

Updates ``(row, col, value)`` are summed into a ``.vfm`` file under a memory budget: what
does not fit is merged into the file, and read back when more updates for it arrive. Feed
it numpy batches; the work runs in Rust with the GIL released.

>>> import numpy as np, vecfmt
>>> path = getfixture("tmp_path") / "counts.vfm"
>>> with vecfmt.Accumulator(path, dtype="i64", memory="64M") as acc:
...     acc.add(np.array([0, 2, 2]), np.array([5, 1, 1]), 1)
...     acc.add(1, 7, 10)
>>> path.exists()
True
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vecfmt import _native

__all__ = ["Accumulator"]


def _ids(x: Any) -> Any:
    """Ids of one axis as the extension takes them: a Python int, a str, a list of str, or
    a one-dimensional numpy integer array in native byte order."""
    if isinstance(x, (str, int)):  # bool too: the extension refuses it with a TypeError
        return x
    if isinstance(x, np.generic):
        return x.item() if x.dtype.kind in "iuUb" else x
    if isinstance(x, np.ndarray):
        a = x
    elif isinstance(x, (list, tuple)) and all(isinstance(v, str) for v in x):
        return list(x)
    else:
        a = np.asarray(x)
        if a.ndim == 0:  # a float, say: refused by the extension as what it is
            return a.item()
        if a.size == 0:
            a = np.empty(0, dtype=np.int64)
    if a.dtype.kind in "UO":
        # A numpy array of labels (or of Python objects: the extension checks each is a str).
        return a.tolist() if a.ndim == 1 else a
    return _native_order(a)


def _values(x: Any) -> Any:
    """Values as the extension takes them: a Python int or float, or a one-dimensional
    numpy array of numbers in native byte order."""
    if isinstance(x, (int, float)):
        return x
    if isinstance(x, np.generic):
        return x.item() if x.dtype.kind in "iuf" else x
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.ndim == 0:
        return a.item() if a.dtype.kind in "iuf" else a
    return _native_order(a)


def _native_order(a: np.ndarray) -> np.ndarray:
    # Big-endian data is converted (the values are the same), never read as native.
    if a.dtype.kind in "iuf" and not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


class Accumulator:
    """Sums updates into the ``.vfm`` file at ``path`` under a memory budget.

    :param path: the file to build.
    :param dtype: the values' type: ``"f32"`` (the default for a new file), ``"f64"``,
        ``"i32"``, ``"i64"``, ``"u32"``, ``"u64"``, or a numpy dtype. With ``mode="a"``, the
        file's own dtype by default (another one is an error). Float sums are kept in f64
        while building and rounded once; integer sums are checked: an overflow raises
        :class:`vecfmt.DTypeError`, never wraps.
    :param memory: the budget of the accumulator's memory (pending sums, cached chunks,
        labels), as bytes or a size such as ``"8G"`` or ``"512M"``. ``None`` (the default)
        takes half of the memory available now. The arrays you pass and the process's other
        memory are not counted.
    :param checkpoint: commit automatically when this long has passed since the last commit
        (checked at the end of each :meth:`add`): a duration such as ``"60s"`` or ``"5m"``,
        or seconds. ``None`` commits only when :meth:`commit` is called.
    :param mode: ``"w"`` creates the file, replacing one that exists; ``"a"`` adds to an
        existing file (finished or not; it keeps its dtype and labels), creating it if it is
        missing; ``"x"`` creates it and raises :class:`vecfmt.OutputExistsError` (a
        ``FileExistsError``) if it exists.
    :param row_labels: rows are named by ``str`` labels, given to :meth:`add` in place of
        ids (a new label gets the next id).
    :param col_labels: columns are named by labels.
    :param n_rows: a fixed number of rows: larger ids are an error. By default the matrix
        has as many rows as the largest id seen (ids are below 2**32 - 1).
    :param n_cols: a fixed number of columns.
    :param threads: threads that add one large batch of ids (each takes a share), and
        that put the rows of the finished file together in :meth:`finish`; ``None`` (the
        default) uses every core. Batches of labels are added by one thread, so that new
        labels get ids in the order they come.

    The file is locked while the accumulator is open: other processes can neither read nor
    add to it until it is finished or closed.

    Used as a context manager, a normal exit finishes the file (:meth:`finish`), and an
    exception, including ``KeyboardInterrupt``, closes it without a commit: the file stays
    at its last commit, as after a crash.

    >>> import numpy as np, vecfmt
    >>> path = getfixture("tmp_path") / "words.vfm"
    >>> acc = vecfmt.Accumulator(path, row_labels=True, memory="64M")
    >>> acc.add(["cat", "dog", "cat"], np.array([3, 9, 3]), np.array([0.5, 1.0, 2.0]))
    >>> acc.add("cat", np.arange(4), 1.0)      # a scalar is repeated
    >>> acc.commit()                            # durable from here on
    >>> acc.stats["commits"]
    1
    >>> m = acc.finish()
    >>> acc.closed
    True
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        dtype: Any = None,
        memory: int | str | None = None,
        checkpoint: float | str | None = "60s",
        mode: str = "w",
        row_labels: bool = False,
        col_labels: bool = False,
        n_rows: int | None = None,
        n_cols: int | None = None,
        threads: int | None = None,
    ) -> None:
        if dtype is not None and not isinstance(dtype, str):
            dtype = np.dtype(dtype).name
        self._native = _native.Accumulator(
            os.fspath(path),
            dtype=dtype,
            memory=memory,
            checkpoint=checkpoint,
            mode=mode,
            row_labels=row_labels,
            col_labels=col_labels,
            n_rows=n_rows,
            n_cols=n_cols,
            threads=threads,
        )

    def add(self, rows: Any, cols: Any, values: Any = 1) -> None:
        """Adds ``values`` at ``(rows, cols)``.

        ``rows`` and ``cols`` are each a one-dimensional array of integer ids (any integer
        dtype, any strides), a sequence of ``str`` labels (for a labelled axis), or one id
        or label for the whole batch. ``values`` is an array of numbers, or one number for
        every update. The arrays must have one length. Repeated ``(row, col)`` pairs are
        summed.

        The whole batch is checked before any of it is added, so a bad batch adds nothing:
        mismatched lengths, negative ids, ids out of range and labels for an axis without
        labels raise :class:`vecfmt.InvalidInputError` (a ``ValueError``) or
        :class:`vecfmt.LabelError`; float ids raise ``TypeError``; a NaN, a fraction or an
        out-of-range value for an integer matrix raises :class:`vecfmt.DTypeError`.

        The GIL is released while the batch is added, and many threads may add at once.
        Ctrl-C stops a long batch between slices of about a million updates; part of the
        batch may then have been added (leaving the ``with`` block by the interrupt keeps the
        file at its last commit).

        >>> import numpy as np, vecfmt
        >>> acc = vecfmt.Accumulator(getfixture("tmp_path") / "m.vfm", dtype="u32", memory="64M")
        >>> acc.add(np.array([1, 1]), np.array([2, 2]))   # values default to 1: (1, 2) is 2
        >>> acc.add(np.array([0, -1]), np.array([0, 0]), 1)
        Traceback (most recent call last):
        ...
        vecfmt._errors.InvalidInputError: ...: row id -1 (at position 1 of the batch) is negative
        >>> acc.close()
        """
        self._native.add(_ids(rows), _ids(cols), _values(values))

    def commit(self) -> None:
        """Makes everything added so far durable: after a crash, the file opens with it."""
        self._native.commit()

    def finish(self) -> Any:
        """Commits, writes the finished file (its final dtype, compressed) and closes the
        accumulator. Returns the matrix as :func:`vecfmt.open` opens it."""
        self._native.finish()
        import vecfmt

        opener = getattr(vecfmt, "open", None)
        return opener(self.path) if opener is not None else self.path

    def close(self) -> None:
        """Closes without committing: the file stays at its last commit, and nothing more
        is written. Does nothing if the accumulator is already closed."""
        self._native.close()

    @property
    def stats(self) -> dict[str, int]:
        """The cache's counters: ``memory_used``, ``memory_peak`` and ``memory_budget`` (in
        bytes), ``evictions`` (pending sums merged into the file or spilled when memory ran
        out), ``reloads`` (chunks read back), ``commits``, ``bytes_written``, and more."""
        return self._native.stats

    @property
    def closed(self) -> bool:
        """Whether the accumulator was finished or closed."""
        return self._native.closed

    @property
    def path(self) -> str:
        """The file being built."""
        return os.fspath(self._native.path)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the finished matrix."""
        return np.dtype(_NUMPY[self._native.dtype])

    def __enter__(self) -> Accumulator:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<vecfmt.Accumulator {self.path!r} {self._native.dtype} {state}>"


_NUMPY = {"f32": "float32", "f64": "float64", "i32": "int32", "i64": "int64", "u32": "uint32", "u64": "uint64"}
