import os
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

__all__ = ["Accumulator"]

_Ids = int | str | Sequence[str] | npt.NDArray[np.integer[Any]] | npt.NDArray[np.str_]
_Values = int | float | npt.NDArray[np.integer[Any]] | npt.NDArray[np.floating[Any]]

class AccumulatorStats(TypedDict):
    memory_used: int
    memory_peak: int
    memory_budget: int
    evictions: int
    eviction_rounds: int
    spills: int
    reloads: int
    cache_drops: int
    commits: int
    bytes_written: int
    file_bytes: int
    free_bytes: int

class Accumulator:
    def __init__(
        self,
        path: str | os.PathLike[str],
        dtype: str | npt.DTypeLike | None = None,
        memory: int | str | None = None,
        checkpoint: float | str | None = "60s",
        mode: Literal["w", "a", "x"] = "w",
        row_labels: bool = False,
        col_labels: bool = False,
        n_rows: int | None = None,
        n_cols: int | None = None,
        threads: int | None = None,
    ) -> None: ...
    def add(self, rows: _Ids, cols: _Ids, values: _Values = 1) -> None: ...
    def commit(self) -> None: ...
    def finish(self) -> Any: ...
    def close(self) -> None: ...
    @property
    def stats(self) -> AccumulatorStats: ...
    @property
    def closed(self) -> bool: ...
    @property
    def path(self) -> str: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    def __enter__(self) -> Accumulator: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...
