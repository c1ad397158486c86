"""Exceptions raised by shmparse.

Each subclasses the builtin that existing code already catches, so replacing
``numpy.loadtxt`` with ``shmparse.loadtxt`` keeps ``except ValueError:`` working.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["ParseError"]


class ParseError(ValueError):
    """The text could not be parsed into the requested dtype.

    The message keeps numpy.loadtxt's wording and adds where it happened.

    Attributes
    ----------
    source : str
        The file name, or a description of the input (``<list>``, ...).
    line : int or None
        1-based physical line of the input (for iterables: the item number).
    row : int or None
        The row number as numpy reports it in the message.
    column : int or None
        1-based column of the file (before ``usecols``), when one field is at fault.
    text : str or None
        The offending field text, when one field is at fault.
    """

    def __init__(self, message: str, *, source: str = "<input>",
                 line: Optional[int] = None, row: Optional[int] = None,
                 column: Optional[int] = None, text: Optional[str] = None) -> None:
        super().__init__(message)
        self.source = source
        self.line = line
        self.row = row
        self.column = column
        self.text = text
