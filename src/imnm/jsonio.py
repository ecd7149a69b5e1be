"""Reading JSON at imnm's edges (files, uploads, request bodies) without crashing on hostile
input: malformed text, bytes that are not UTF-8, and nesting deep enough to exhaust Python's
recursion (the standard parser and every recursive reader after it).

Every failure is an :class:`~imnm.errors.InputError` naming where, what and what was expected.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any

from imnm.errors import InputError, Problem

MAX_JSON_DEPTH = 64
"""Deepest nesting of objects and arrays accepted (operational, not clinical). A FHIR Bundle of
searchset Bundles with components and codings is about 12 deep; a patient file about 6."""


def depth_problem(data: object, where: str = "(file)") -> Problem | None:
    """A problem if ``data`` nests deeper than :data:`MAX_JSON_DEPTH`, else None. Iterative,
    one level of the tree at a time, so it never recurses itself and touches each value
    once."""
    level: list[Any] = [data] if isinstance(data, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            return Problem(where, f"(nested more than {MAX_JSON_DEPTH} deep)",
                           f"JSON nested at most {MAX_JSON_DEPTH} objects or arrays deep")
        # The next level's containers in one comprehension over the values of this one
        # (this runs over every value of every hook call: a fifth quicker than a loop that
        # kept the scalars too, measured on prefetches of 17 to 1,000 results).
        level = [value for value in chain.from_iterable(
            node.values() if isinstance(node, dict) else node for node in level)
            if isinstance(value, _CONTAINERS)]
    return None


# A tuple, not ``dict | list``: isinstance with a union is slower on Python 3.11.
_CONTAINERS = (dict, list)


def check_depth(data: object, where: str = "(file)") -> None:
    """Raise :class:`InputError` if ``data`` nests too deep."""
    problem = depth_problem(data, where)
    if problem is not None:
        raise InputError([problem])


def parse_json(text: str | bytes, where: str = "(file)") -> Any:
    """Parse JSON text, refusing what is not UTF-8, not JSON or nested too deep."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError([Problem(where, f"(byte {exc.start} is not UTF-8)",
                                      "JSON text encoded as UTF-8")]) from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem(
            f"{where} (line {exc.lineno}, column {exc.colno})" if where != "(file)"
            else f"(line {exc.lineno}, column {exc.colno})",
            "(malformed JSON)", f"valid JSON: {exc.msg}")]) from None
    except RecursionError:
        raise InputError([Problem(where, f"(nested more than {MAX_JSON_DEPTH} deep)",
                                  f"JSON nested at most {MAX_JSON_DEPTH} objects or arrays "
                                  "deep")]) from None
    check_depth(parsed, where)
    return parsed
