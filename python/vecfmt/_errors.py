"""The exceptions vecfmt raises.

Every error of the library is a :class:`vecfmt.Error`. The subclasses also derive from the
built-in exception a Python user would catch for the same problem: a damaged file is a
``vecfmt.DamagedFileError``; a sum that does not fit the dtype is a ``vecfmt.DTypeError``,
which is also a ``ValueError``; an I/O failure is a ``vecfmt.IOError``, also an ``OSError``.
A missing input raises the built-in ``FileNotFoundError``.

>>> import vecfmt
>>> issubclass(vecfmt.DTypeError, ValueError) and issubclass(vecfmt.DTypeError, vecfmt.Error)
True
"""

from __future__ import annotations

import builtins

__all__ = [
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
]


class Error(Exception):
    """The base of every error vecfmt raises."""


class DamagedFileError(Error):
    """A file is damaged or malformed: a bad checksum, a truncated chunk, a foreign file
    whose structure does not hold together."""


class LockedError(Error):
    """The file is locked for update by another process."""


class UnsupportedError(Error):
    """A format, layout, version or codec that vecfmt does not handle."""


class DTypeError(Error, builtins.ValueError):
    """A value that does not fit the dtype: an integer overflow, a NaN into an integer
    matrix, an inexact cast, inputs whose dtypes disagree."""


class IOError(Error, builtins.OSError):  # noqa: A001 - vecfmt.IOError, deliberately
    """An operating-system error on a file (other than a missing input, which raises the
    built-in ``FileNotFoundError``)."""


class OutputExistsError(Error, builtins.FileExistsError):
    """The output exists, and replacing it was not asked for."""


class LabelError(Error, builtins.KeyError):
    """A label that the matrix does not have, or labels used on an axis that has none."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidInputError(Error, builtins.ValueError):
    """Input that breaks a rule: mismatched lengths, an id out of range, unsorted rows,
    a bad line in a text input, shapes that do not agree."""


class RowIndexError(Error, builtins.IndexError):
    """A row id past the end of the matrix."""


class MemoryBudgetError(Error, builtins.MemoryError):
    """An operation needs more memory than its budget allows."""
