# Type stubs of the extension module vecfmt._native (the Rust side of the package). The
# public API is re-exported, with docstrings, from vecfmt/__init__.py.
from typing import Any, Callable, Mapping, Sequence

__version__: str

_Progress = Callable[[Mapping[str, Any]], Any] | None
_Size = int | str | None

def cli_main(argv: Sequence[str]) -> int: ...
def cooccur(
    inputs: Sequence[str],
    output: str,
    *,
    window: int = ...,
    weighting: str = ...,
    symmetric: bool = ...,
    min_count: int = ...,
    max_vocab: int | None = ...,
    lowercase: bool = ...,
    memory: _Size = ...,
    threads: int | None = ...,
    shard: str | tuple[int, int] | None = ...,
    vocab: str | None = ...,
    save_vocab: str | None = ...,
    dtype: str = ...,
    codec: str = ...,
    checkpoint: int | float | str | None = ...,
    overwrite: bool = ...,
    resume: bool = ...,
    scratch_dir: str | None = ...,
    progress: _Progress = ...,
) -> dict[str, Any]: ...
def build(
    inputs: Sequence[str],
    output: str,
    *,
    row_labels: bool = ...,
    col_labels: bool = ...,
    n_rows: int | None = ...,
    n_cols: int | None = ...,
    append: bool = ...,
    overwrite: bool = ...,
    memory: _Size = ...,
    threads: int | None = ...,
    dtype: str = ...,
    codec: str = ...,
    checkpoint: int | float | str | None = ...,
    resume: bool = ...,
    scratch_dir: str | None = ...,
    progress: _Progress = ...,
) -> dict[str, Any]: ...
def merge(
    inputs: Sequence[str],
    output: str,
    *,
    labels: str | None = ...,
    memory: _Size = ...,
    dtype: str | None = ...,
    codec: str = ...,
    zstd_level: int | None = ...,
    overwrite: bool = ...,
    progress: _Progress = ...,
) -> dict[str, Any]: ...
def compact(
    path: str, *, codec: str = ..., zstd_level: int | None = ..., memory: _Size = ..., progress: _Progress = ...
) -> dict[str, Any]: ...
def convert(
    src: str,
    dst: str,
    *,
    src_format: str | None = ...,
    dst_format: str | None = ...,
    layout: str | None = ...,
    dtype: str | None = ...,
    allow_lossy: bool = ...,
    codec: str = ...,
    memory: _Size = ...,
    row_col: str | None = ...,
    col_col: str | None = ...,
    value_col: str | None = ...,
    dataset: str | None = ...,
    shape: tuple[int, int] | None = ...,
    gzip_level: int = ...,
    overwrite: bool = ...,
    worker: Sequence[str] | None = ...,
    progress: _Progress = ...,
) -> dict[str, Any]: ...
def plot(
    path: str,
    output: str,
    *,
    rows: tuple[int | None, int | None] | None = ...,
    cols: tuple[int | None, int | None] | None = ...,
    width: int = ...,
    height: int = ...,
    bins: int | None = ...,
    memory: _Size = ...,
    overwrite: bool = ...,
    progress: _Progress = ...,
) -> dict[str, Any]: ...
def vocab_part(
    inputs: Sequence[str],
    output: str,
    *,
    shard: str | tuple[int, int] | None = ...,
    lowercase: bool = ...,
    threads: int | None = ...,
    progress: _Progress = ...,
) -> dict[str, Any]: ...
def vocab_merge(
    parts: Sequence[str], output: str, *, min_count: int = ..., max_vocab: int | None = ..., overwrite: bool = ...
) -> dict[str, Any]: ...

# ---- the reader (python/src/matrix.rs); vecfmt.Matrix (vecfmt/_matrix.py) subclasses _Matrix

import numpy as np
import numpy.typing as npt

_Csr = tuple[npt.NDArray[np.signedinteger[Any]], npt.NDArray[np.signedinteger[Any]], npt.NDArray[Any]]

class _MapOwner: ...
class _ChunkOwner: ...

class _Matrix:
    def __new__(cls, path: str | Any, cache: _Size = ...) -> _Matrix: ...
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def nnz(self) -> int: ...
    @property
    def index_width(self) -> int: ...
    @property
    def _dtype_name(self) -> str: ...
    @property
    def _metadata_json(self) -> str | None: ...
    def row(self, i: int) -> tuple[npt.NDArray[np.unsignedinteger[Any]], npt.NDArray[Any]]: ...
    def row_by_label(self, label: str) -> tuple[npt.NDArray[np.unsignedinteger[Any]], npt.NDArray[Any]]: ...
    def rows_csr(self, ids: npt.NDArray[np.int64]) -> _Csr: ...
    def range_csr(self, start: int, stop: int) -> _Csr: ...
    def _has_labels(self, axis: int) -> bool: ...
    def _label_id(self, axis: int, label: str) -> int: ...
    def _find_label(self, axis: int, label: str) -> int | None: ...
    def _label_ids(self, axis: int, labels: Sequence[str]) -> npt.NDArray[np.int64]: ...
    def _label_range(self, axis: int, start: int, stop: int) -> list[str]: ...
    def _labels_at(self, axis: int, ids: npt.NDArray[np.int64]) -> list[str]: ...
    def _labels_len(self, axis: int) -> int: ...
    def _top_entries(self, i: int, k: int) -> list[tuple[int, int | float]]: ...
    def _verify_problems(self) -> tuple[int, list[str]]: ...

def _size_in_bytes(size: int | str) -> int: ...
def _write_csr(
    path: str,
    n_cols: int,
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    values: npt.NDArray[Any],
    codec: str = ...,
    row_labels: Sequence[str] | None = ...,
    col_labels: Sequence[str] | None = ...,
    metadata_json: str | None = ...,
    chunk_bytes: int | None = ...,
) -> None: ...
