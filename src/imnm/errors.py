"""The one exception tree of imnm.

::

    ImnmError                         root of everything imnm raises on purpose
    ├── InputError(ValueError)        bad input at an edge: carries a list of Problem
    └── KnowledgeError(ValueError)    a knowledge file is malformed: carries a list of Problem

A :class:`Problem` names *where* (``field``), *what was given* (``value``, already shortened)
and *what was expected*. Surfaces turn an ``InputError`` into exit code 2 (CLI) or HTTP 422.
Messages never carry patient data other than the record identifier and the rejected value
itself, which is shown only to the person who supplied it.
"""

from __future__ import annotations

from dataclasses import dataclass

_MAX_VALUE_CHARS = 60


def shorten(value: object) -> str:
    """Return a short, single-line representation of a rejected value."""
    try:
        text = repr(value)
    except RecursionError:  # a value nested deeper than repr can go: what it is, not what
        return f"(a {type(value).__name__} nested too deep to show)"
    text = text.replace("\n", " ")
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    return text


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: the field, the value given and what was expected."""

    field: str
    value: str
    expected: str

    def __str__(self) -> str:
        return f"{self.field}: got {self.value}; expected {self.expected}"


class ImnmError(Exception):
    """Root of the errors imnm raises on purpose."""


class InputError(ImnmError, ValueError):
    """Input that cannot be used. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem], *, record_id: str | None = None) -> None:
        self.problems = problems
        self.record_id = record_id
        head = f"record {record_id}: " if record_id else ""
        super().__init__(head + "; ".join(str(p) for p in problems))


class KnowledgeError(ImnmError, ValueError):
    """A knowledge file is malformed. Each problem's ``field`` is ``file: entry``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


FIELD_SEP = "\x1f"  # separates field, value and expectation inside a validator's message


def field_error(field: str, value: object, expected: str) -> ValueError:
    """A validator error that names the (relative) field and the offending value precisely;
    :func:`imnm.patient.load_patient` turns it into a :class:`Problem`."""
    return ValueError(f"{FIELD_SEP}{field}{FIELD_SEP}{shorten(value)}{FIELD_SEP}{expected}")
