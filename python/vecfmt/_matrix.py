"""Reading ``.vfm`` matrices: :func:`open` maps a file and returns a :class:`Matrix`.

Rows come out as read-only numpy views (zero-copy for raw chunks), blocks of rows as
``scipy.sparse.csr_array``. scipy, pandas and anndata are imported only by the methods that
return their objects.

>>> import tempfile, pathlib, vecfmt
>>> from vecfmt._matrix import _example
>>> path = _example(pathlib.Path(tempfile.mkdtemp()) / "animals.vfm")
>>> with vecfmt.open(path) as m:
...     print(m.shape, m.dtype, m.nnz)
...     indices, values = m.row_by_label("cat")
...     print(indices.tolist(), values.tolist())
...     print(m[["cat", "fish"]].toarray())
(3, 4) float32 3
[0, 3] [1.0, 2.5]
[[1.  0.  0.  2.5]
 [0.  0.  4.  0. ]]
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from vecfmt import _native
from vecfmt._errors import LabelError, MemoryBudgetError, RowIndexError

if TYPE_CHECKING:  # pragma: no cover - imported only by type checkers
    import anndata
    import pandas
    import scipy.sparse

__all__ = ["open", "verify", "Matrix", "Labels", "VerifyReport"]

PathLike = Union[str, "os.PathLike[str]"]

_DTYPES = {
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "u32": np.dtype(np.uint32),
    "u64": np.dtype(np.uint64),
}

#: Default ceiling of :meth:`Matrix.to_scipy` and the conversions built on it: 2 GiB of CSR
#: arrays.
DEFAULT_LIMIT = 2 << 30

# Rows per block of `iter_blocks` aim at about this many bytes of CSR arrays.
_BLOCK_BYTES = 64 << 20

_ROW, _COL = 0, 1


def open(path: PathLike, cache: int | str = "256M") -> Matrix:  # noqa: A001 - vecfmt.open
    """Opens the ``.vfm`` file at ``path`` for reading.

    ``cache`` is the byte budget of the decoded-chunk cache (compressed files only): an int,
    or a size such as ``"256M"`` or ``"1G"``. The matrix holds a shared lock on the file
    until it is closed and its last row view is gone. Use it as a context manager, or call
    :meth:`Matrix.close`.

    Raises ``FileNotFoundError`` for a missing file, :class:`vecfmt.DamagedFileError` for
    one that is not a valid ``.vfm``, :class:`vecfmt.LockedError` while another process
    updates it.

    >>> import tempfile, pathlib, vecfmt
    >>> from vecfmt._matrix import _example
    >>> m = vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm"), cache="64M")
    >>> m.shape
    (3, 4)
    >>> m.close()
    """
    return Matrix(path, cache)


def verify(path: PathLike) -> VerifyReport:
    """Checks every checksum and the structure of every chunk of the ``.vfm`` file at
    ``path``; see :meth:`Matrix.verify`. A file too damaged to open raises
    :class:`vecfmt.DamagedFileError` instead.

    >>> import tempfile, pathlib, vecfmt
    >>> from vecfmt._matrix import _example
    >>> vecfmt.verify(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm")).is_clean
    True
    """
    with Matrix(path, 0) as m:
        return m.verify()


class VerifyReport:
    """What :meth:`Matrix.verify` found: ``chunks`` checked, and one message per damaged
    chunk or section in ``problems`` (each names the file and the byte offset)."""

    __slots__ = ("path", "chunks", "problems")

    def __init__(self, path: str, chunks: int, problems: list[str]):
        self.path = path
        self.chunks = chunks
        self.problems = list(problems)

    @property
    def is_clean(self) -> bool:
        """Whether nothing was wrong."""
        return not self.problems

    def __bool__(self) -> bool:
        return self.is_clean

    def __repr__(self) -> str:
        state = "clean" if self.is_clean else f"{len(self.problems)} problem(s)"
        return f"<VerifyReport {self.path!r}: {self.chunks} chunks, {state}>"


class Labels(Sequence):
    """The labels of one axis, read in place from the file: a read-only sequence of str.

    ``len``, ``labels[i]``, slices, iteration and ``in`` work as on a list; ``index(label)``
    (``ValueError`` when absent, as a list) and ``get_loc(label)`` (:class:`vecfmt.LabelError`,
    a ``KeyError``, as a pandas index) look the label up in the file's hash table, without
    building a Python string per label.

    >>> import tempfile, pathlib, vecfmt
    >>> from vecfmt._matrix import _example
    >>> m = vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm"))
    >>> labels = m.row_labels
    >>> len(labels), labels[0], labels[-1], list(labels[:2])
    (3, 'cat', 'fish', ['cat', 'dog'])
    >>> "dog" in labels, labels.index("fish"), labels.get_loc("dog")
    (True, 2, 1)
    """

    __slots__ = ("_m", "_axis")

    def __init__(self, matrix: _native._Matrix, axis: int):
        self._m = matrix
        self._axis = axis

    def __len__(self) -> int:
        return self._m._labels_len(self._axis)

    def __getitem__(self, key: Any) -> Any:
        n = len(self)
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self._m._label_range(self._axis, start, max(start, stop))
            return self._m._labels_at(self._axis, np.arange(start, stop, step, dtype=np.int64))
        if isinstance(key, (bool, np.bool_)):
            raise TypeError("labels are indexed by int or slice, not bool")
        try:
            i = operator.index(key)
        except TypeError:
            raise TypeError(f"labels are indexed by int or slice, not {type(key).__name__}") from None
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"label index {key} is out of range: the axis has {n} labels")
        return self._m._label_range(self._axis, i, i + 1)[0]

    def __iter__(self) -> Iterator[str]:
        n, step = len(self), 65536
        for start in range(0, n, step):
            yield from self._m._label_range(self._axis, start, min(n, start + step))

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and self._m._find_label(self._axis, label) is not None

    def index(self, label: Any, start: int = 0, stop: int | None = None) -> int:
        """The position of ``label``; ``ValueError`` when absent (as ``list.index``)."""
        i = self._m._find_label(self._axis, label) if isinstance(label, str) else None
        n = len(self)
        lo, hi, _ = slice(start, stop).indices(n)
        if i is None or not lo <= i < hi:
            raise ValueError(f"{label!r} is not in the {('row', 'column')[self._axis]} labels")
        return i

    def get_loc(self, label: str) -> int:
        """The position of ``label``; :class:`vecfmt.LabelError` (a ``KeyError``) when
        absent, as ``pandas.Index.get_loc``."""
        if not isinstance(label, str):
            raise LabelError(f"{self._m.path}: labels are str, not {type(label).__name__}")
        return self._m._label_id(self._axis, label)

    def count(self, label: Any) -> int:
        """1 if ``label`` is present (labels are unique), else 0."""
        return int(label in self)

    def tolist(self) -> list[str]:
        """Every label, as a list of str."""
        return self._m._label_range(self._axis, 0, len(self))

    def __repr__(self) -> str:
        n = len(self)
        head = ", ".join(repr(s) for s in self[: min(n, 3)])
        more = ", ..." if n > 3 else ""
        return f"<Labels [{head}{more}] ({n} {('rows', 'columns')[self._axis]})>"


class Matrix(_native._Matrix):
    """A ``.vfm`` matrix opened for reading; see :func:`vecfmt.open`.

    - ``shape``, ``nnz``, ``dtype`` (a numpy dtype), ``metadata`` (a dict), ``path``.
    - ``row_labels`` / ``col_labels``: :class:`Labels`, or ``None`` when the file has none.
    - ``m.row(i)`` / ``m.row_by_label(s)``: ``(indices, values)`` read-only numpy arrays.
    - ``m[i]``, ``m[a:b]``, ``m[[i, j]]``, ``m["cat"]``, ``m[["cat", "dog"]]``, a boolean
      mask: a ``scipy.sparse.csr_array`` with one row per selected row.
    - ``iter_blocks``, ``top``, ``to_scipy``, ``to_anndata``, ``to_pandas``, ``verify``.

    Closing releases the matrix; views returned before stay valid (they keep the map alive)
    and every other call raises ``ValueError``.
    """

    def __init__(self, path: PathLike, cache: int | str = "256M"):
        # The native __new__ opened the file; nothing more to set up.
        super().__init__()

    # ---- properties --------------------------------------------------------------------

    @property
    def dtype(self) -> np.dtype:
        """The value dtype, as a numpy dtype."""
        return _DTYPES[self._dtype_name]

    @property
    def metadata(self) -> dict:
        """The metadata stored with the matrix (a new dict on each access; ``{}`` when
        none)."""
        text = self._metadata_json
        return {} if text is None else json.loads(text)

    @property
    def row_labels(self) -> Labels | None:
        """The row labels, or ``None``."""
        return Labels(self, _ROW) if self._has_labels(_ROW) else None

    @property
    def col_labels(self) -> Labels | None:
        """The column labels, or ``None``."""
        return Labels(self, _COL) if self._has_labels(_COL) else None

    def __iter__(self) -> Iterator[Any]:
        # Without this, Python would iterate through __getitem__ one row at a time, and
        # `x in m` would scan the whole matrix.
        raise TypeError(
            "a Matrix is not iterable; use m.iter_blocks() for blocks of rows, or m.row(i) for i in range(m.shape[0])"
        )

    def __enter__(self) -> Matrix:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<vecfmt.Matrix {self.path!r} (closed)>"
        r, c = self.shape
        return f"<vecfmt.Matrix {self.path!r}: {r} x {c} {self._dtype_name}, {self.nnz} stored>"

    # ---- indexing ----------------------------------------------------------------------

    def _csr(self, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> scipy.sparse.csr_array:
        import scipy.sparse

        indptr, indices, data = arrays
        a = scipy.sparse.csr_array((data, indices, indptr), shape=(len(indptr) - 1, self.shape[1]), copy=False)
        # Column indices of a row are strictly increasing in every .vfm file.
        a.has_sorted_indices = True
        a.has_canonical_format = True
        return a

    def _row_ids(self, key: Any) -> np.ndarray:
        """Row ids (int64, negative allowed) of a list, array or mask; labels looked up."""
        a = np.asarray(key)
        if a.ndim != 1:
            raise TypeError(f"rows are selected by a 1-D list or array, not a {a.ndim}-D one")
        if a.size == 0:
            return np.empty(0, dtype=np.int64)
        if a.dtype.kind in "UO" and all(isinstance(s, str) for s in a.tolist()):
            return self._label_ids(_ROW, a.tolist())
        if a.dtype.kind == "O" and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in a.tolist()):
            # Ints beyond 64 bits make numpy fall back to objects.
            return np.concatenate([self._one_row(i) for i in a.tolist()])
        if a.dtype.kind == "b":
            if a.size != self.shape[0]:
                raise RowIndexError(
                    f"{self.path}: a boolean mask of {a.size} entries for {self.shape[0]} rows"
                )
            return np.flatnonzero(a).astype(np.int64)
        if a.dtype.kind == "u":
            if a.max() > np.iinfo(np.int64).max:
                raise RowIndexError(f"{self.path}: row {a.max()} is out of range: the matrix has {self.shape[0]} rows")
            return a.astype(np.int64)
        if a.dtype.kind == "i":
            return np.ascontiguousarray(a, dtype=np.int64)
        raise TypeError(f"rows are selected by ints, labels (str) or a boolean mask, not {a.dtype} values")

    def __getitem__(self, key: Any) -> scipy.sparse.csr_array:
        """Rows as a ``scipy.sparse.csr_array`` of shape ``(k, n_cols)``.

        ``m[i]`` (negative counts from the end), ``m[a:b]`` and ``m[a:b:s]``, ``m[[i, j]]``
        or an int array, a boolean mask over the rows, ``m["cat"]``, ``m[["cat", "dog"]]``.
        ``m[i]`` is a 1 x n_cols matrix, as in scipy's ``csr_matrix``. A row out of range
        raises :class:`vecfmt.RowIndexError` (an ``IndexError``); a missing label
        :class:`vecfmt.LabelError` (a ``KeyError``).

        >>> import tempfile, pathlib, vecfmt
        >>> from vecfmt._matrix import _example
        >>> m = vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm"))
        >>> m[1:].toarray().tolist()
        [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]]
        >>> m[-1].nnz, m["cat"].shape, m[[2, 0, 2]].nnz
        (1, (1, 4), 4)
        """
        if isinstance(key, tuple):
            raise TypeError("a Matrix is indexed by rows only (m[rows]); select columns on the result")
        if isinstance(key, str):
            return self._csr(self.rows_csr(self._label_ids(_ROW, [key])))
        if isinstance(key, slice):
            r = range(self.shape[0])[key]
            if r.step == 1:
                return self._csr(self.range_csr(r.start, max(r.start, r.stop)))
            return self._csr(self.rows_csr(np.arange(r.start, r.stop, r.step, dtype=np.int64)))
        if isinstance(key, (bool, np.bool_)):
            raise TypeError("a Matrix is indexed by row ids, labels or a boolean mask array, not a bool")
        if isinstance(key, (int, np.integer)):
            return self._csr(self.rows_csr(self._one_row(key)))
        if isinstance(key, (list, np.ndarray)) or (isinstance(key, Sequence) and not isinstance(key, (bytes, str))):
            return self._csr(self.rows_csr(self._row_ids(key)))
        try:
            operator.index(key)
        except TypeError:
            raise TypeError(
                f"a Matrix is indexed by an int, a slice, a label, or a list or array of them, not {type(key).__name__}"
            ) from None
        return self._csr(self.rows_csr(self._one_row(key)))

    def _one_row(self, key: Any) -> np.ndarray:
        i = operator.index(key)
        if not -(2**63) <= i < 2**63:
            raise RowIndexError(f"{self.path}: row {i} is out of range: the matrix has {self.shape[0]} rows")
        return np.array([i], dtype=np.int64)

    def iter_blocks(self, rows: int | None = None) -> Iterator[tuple[int, scipy.sparse.csr_array]]:
        """Yields ``(first_row, csr_array)`` for consecutive blocks of ``rows`` rows (the
        last may be shorter), covering every row once, in order. Only one block is in
        memory at a time. By default a block holds about 64 MiB of CSR arrays.

        >>> import tempfile, pathlib, vecfmt
        >>> from vecfmt._matrix import _example
        >>> m = vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm"))
        >>> [(first, block.shape) for first, block in m.iter_blocks(rows=2)]
        [(0, (2, 4)), (2, (1, 4))]
        """
        n_rows, _ = self.shape
        if rows is None:
            per_row = self._csr_bytes(self.shape[0], self.nnz) / max(1, n_rows)
            rows = max(1, int(_BLOCK_BYTES // max(per_row, 1)))
        rows = operator.index(rows)
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        for first in range(0, n_rows, rows):
            yield first, self._csr(self.range_csr(first, min(n_rows, first + rows)))

    def top(self, row: int | str, k: int = 10) -> list[tuple[int, str | None, Any]]:
        """The ``k`` largest stored entries of a row (an id or a row label), largest first,
        as ``(column, column_label, value)`` tuples; ``column_label`` is ``None`` when the
        matrix has no column labels. Ties go to the lower column; NaN comes last. Values are
        Python ints or floats.

        >>> import tempfile, pathlib, vecfmt
        >>> from vecfmt._matrix import _example
        >>> m = vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm"))
        >>> m.top("cat", 1)
        [(3, 'paw', 2.5)]
        """
        if isinstance(row, str):
            i = self._label_id(_ROW, row)
        elif isinstance(row, (bool, np.bool_)):
            raise TypeError("row must be an int id or a str label, not bool")
        else:
            i = operator.index(row)
        k = operator.index(k)
        if k < 0:
            raise ValueError(f"k must not be negative, got {k}")
        entries = self._top_entries(i, k)
        if not self._has_labels(_COL):
            return [(c, None, v) for c, v in entries]
        names = self._labels_at(_COL, np.array([c for c, _ in entries], dtype=np.int64))
        return [(c, name, v) for (c, v), name in zip(entries, names)]

    # ---- conversions -------------------------------------------------------------------

    def _csr_bytes(self, n_rows: int, nnz: int) -> int:
        """Bytes of the CSR arrays that gather returns (int32 indices when they fit)."""
        iw = 4 if self.shape[1] <= 2**31 - 1 and nnz <= 2**31 - 1 else 8
        return (n_rows + 1) * iw + nnz * (iw + self.dtype.itemsize)

    def _check_limit(self, what: str, force: bool, limit: int | str) -> None:
        need = self._csr_bytes(self.shape[0], self.nnz)
        cap = _native._size_in_bytes(limit)
        if need > cap and not force:
            raise MemoryBudgetError(
                f"{self.path}: {what} would build {need} bytes of CSR arrays, over the limit of "
                f"{cap} bytes; read it in blocks with iter_blocks(), raise limit=, or pass force=True"
            )

    def to_scipy(self, force: bool = False, limit: int | str = DEFAULT_LIMIT) -> scipy.sparse.csr_array:
        """The whole matrix as a ``scipy.sparse.csr_array``.

        Refused with :class:`vecfmt.MemoryBudgetError` (a ``MemoryError``) when its CSR
        arrays would take more than ``limit`` bytes (an int or a size such as ``"8G"``;
        default 2 GiB), unless ``force`` is true.

        >>> import tempfile, pathlib, vecfmt
        >>> from vecfmt._matrix import _example
        >>> m = vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm"))
        >>> a = m.to_scipy()
        >>> a.shape, a.nnz, a.dtype
        ((3, 4), 3, dtype('float32'))
        >>> m.to_scipy(limit=10)
        Traceback (most recent call last):
        ...
        vecfmt._errors.MemoryBudgetError: ...
        """
        self._check_limit("to_scipy()", force, limit)
        return self._csr(self.range_csr(0, self.shape[0]))

    def to_anndata(self, force: bool = False, limit: int | str = DEFAULT_LIMIT) -> anndata.AnnData:
        """The whole matrix as an in-memory ``anndata.AnnData`` whose ``X`` is a CSR array;
        ``obs_names`` and ``var_names`` are the row and column labels when the file has
        them (anndata's default ``"0"``, ``"1"``, ... otherwise). ``force`` and ``limit`` as
        in :meth:`to_scipy`.

        >>> import tempfile, pathlib, vecfmt
        >>> from vecfmt._matrix import _example
        >>> m = vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm"))
        >>> a = m.to_anndata()
        >>> list(a.obs_names), list(a.var_names)
        (['cat', 'dog', 'fish'], ['fur', 'gill', 'fin', 'paw'])
        """
        import anndata
        import pandas as pd

        x = self.to_scipy(force=force, limit=limit)
        obs = pd.DataFrame(index=pd.Index(self.row_labels.tolist())) if self._has_labels(_ROW) else None
        var = pd.DataFrame(index=pd.Index(self.col_labels.tolist())) if self._has_labels(_COL) else None
        return anndata.AnnData(X=x, obs=obs, var=var)

    def to_pandas(self, force: bool = False, limit: int | str = DEFAULT_LIMIT) -> pandas.DataFrame:
        """The stored entries as a COO ``pandas.DataFrame`` sorted by row then column, with
        int64 columns ``row`` and ``col``, a ``value`` column of the matrix's dtype, and
        ``row_label`` / ``col_label`` Categoricals when the file has labels (the layout of
        ``vecfmt convert`` to Parquet). ``force`` and ``limit`` as in :meth:`to_scipy`.

        >>> import tempfile, pathlib, vecfmt
        >>> from vecfmt._matrix import _example
        >>> m = vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm"))
        >>> df = m.to_pandas()
        >>> list(df.columns), str(df["row_label"].dtype)
        (['row', 'col', 'value', 'row_label', 'col_label'], 'category')
        >>> df[["row", "col", "value"]].to_numpy().tolist()
        [[0.0, 0.0, 1.0], [0.0, 3.0, 2.5], [2.0, 2.0, 4.0]]
        >>> df["col_label"].tolist()
        ['fur', 'paw', 'fin']
        """
        import pandas as pd

        self._check_limit("to_pandas()", force, limit)
        indptr, indices, data = self.range_csr(0, self.shape[0])
        rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
        cols = indices.astype(np.int64, copy=False)
        columns: dict[str, Any] = {"row": rows, "col": cols, "value": data}
        if self._has_labels(_ROW):
            columns["row_label"] = pd.Categorical.from_codes(rows, categories=self.row_labels.tolist())
        if self._has_labels(_COL):
            columns["col_label"] = pd.Categorical.from_codes(cols, categories=self.col_labels.tolist())
        return pd.DataFrame(columns)

    def verify(self) -> VerifyReport:
        """Checks every checksum and the structure of every chunk (in parallel, with the GIL
        released). Returns a :class:`VerifyReport`; ``report.is_clean`` is true when nothing
        was wrong.

        >>> import tempfile, pathlib, vecfmt
        >>> from vecfmt._matrix import _example
        >>> vecfmt.open(_example(pathlib.Path(tempfile.mkdtemp()) / "m.vfm")).verify().is_clean
        True
        """
        chunks, problems = self._verify_problems()
        return VerifyReport(self.path, chunks, problems)


def _write_csr(
    path: PathLike,
    csr: Any,
    codec: str = "raw",
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    metadata: dict | None = None,
    chunk_bytes: int | None = None,
) -> str:
    """Writes a scipy CSR matrix (or anything with ``indptr``, ``indices``, ``data`` and
    ``shape``) to a new ``.vfm`` file: for examples and tests; the public way to build a
    matrix is ``vecfmt.Accumulator``. Returns the path as a str."""
    _native._write_csr(
        os.fspath(path),
        int(csr.shape[1]),
        np.ascontiguousarray(csr.indptr, dtype=np.int64),
        np.ascontiguousarray(csr.indices, dtype=np.int64),
        np.ascontiguousarray(csr.data),
        codec,
        None if row_labels is None else list(row_labels),
        None if col_labels is None else list(col_labels),
        None if metadata is None else json.dumps(metadata),
        chunk_bytes,
    )
    return os.fspath(path)


class _Csr:
    """The three arrays and shape of a CSR matrix, without scipy."""

    def __init__(self, indptr: Any, indices: Any, data: Any, shape: tuple[int, int]):
        self.indptr, self.indices, self.data, self.shape = indptr, indices, data, shape


def _example(path: PathLike) -> str:
    """Writes the small matrix of the examples: 3 x 4 float32, rows ``cat``, ``dog``,
    ``fish``, columns ``fur``, ``gill``, ``fin``, ``paw``; ``dog`` is empty."""
    csr = _Csr(
        np.array([0, 2, 2, 3]),
        np.array([0, 3, 2]),
        np.array([1.0, 2.5, 4.0], dtype=np.float32),
        (3, 4),
    )
    return _write_csr(
        path, csr, row_labels=["cat", "dog", "fish"], col_labels=["fur", "gill", "fin", "paw"], metadata={"zoo": 1}
    )
