"""vecfmt: build, store and convert very large sparse vectors out of core.

Read a ``.vfm`` matrix through a memory map, build one from numpy batches under a memory
budget, count word co-occurrences, merge, convert and verify.

>>> import vecfmt
>>> vecfmt.__version__ == vecfmt._native.__version__
True
"""

from __future__ import annotations

from vecfmt import _native
from vecfmt._accumulator import Accumulator
from vecfmt._errors import (
    DamagedFileError,
    DTypeError,
    Error,
    InvalidInputError,
    IOError,
    LabelError,
    LockedError,
    MemoryBudgetError,
    OutputExistsError,
    RowIndexError,
    UnsupportedError,
)
from vecfmt._matrix import Labels, Matrix, VerifyReport, open, verify
from vecfmt._ops import build, compact, convert, cooccur, merge, plot, vocab_merge, vocab_part

__version__: str = _native.__version__

__all__ = [
    "__version__",
    "Accumulator",
    "cooccur",
    "build",
    "merge",
    "compact",
    "convert",
    "plot",
    "vocab_part",
    "vocab_merge",
    "Error",
    "DamagedFileError",
    "LockedError",
    "UnsupportedError",
    "DTypeError",
    "IOError",
    "OutputExistsError",
    "LabelError",
    "InvalidInputError",
    "RowIndexError",
    "MemoryBudgetError",
    "open",
    "verify",
    "Matrix",
    "Labels",
    "VerifyReport",
]
