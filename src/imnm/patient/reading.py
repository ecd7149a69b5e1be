"""Reading a patient file: JSON text or a mapping to a :class:`~imnm.patient.model.Patient`,
with every problem reported at once as :class:`imnm.errors.InputError`, each naming the field,
the value and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from imnm.errors import FIELD_SEP as _SEP
from imnm.errors import InputError, Problem, shorten
from imnm.jsonio import check_depth, parse_json
from imnm.patient.model import Patient


def _problem_from_pydantic(error: Mapping[str, Any]) -> Problem:
    loc = [str(part) for part in error.get("loc", ()) if not str(part).startswith("function-")]
    message = str(error.get("msg", "a valid value")).removeprefix("Value error, ")
    message = message.removeprefix("Input should be ")
    if message.startswith(_SEP):
        _, relative, shown, expected = message.split(_SEP, 3)
        field = ".".join([*loc, relative] if relative else loc) or "(file)"
        return Problem(field=field, value=shown, expected=expected)
    field = ".".join(loc) or "(file)"
    value: object = error.get("input")
    if error.get("type") == "missing":
        value, message = "(missing)", "a value: this field is required"
    elif error.get("type") == "extra_forbidden":
        message = "no such field (unknown fields are refused; see `imnm schema`)"
    return Problem(field=field, value=shorten(value), expected=message)


def load_patient(data: str | bytes | os.PathLike[str] | Mapping[str, Any]) -> Patient:
    """Validate a patient file (JSON text, a mapping, or the path of a file as a ``Path``) and
    return a :class:`Patient`.

    Raises :class:`InputError` listing every problem, each with field, value and expectation.
    """
    if isinstance(data, os.PathLike):
        try:
            data = Path(data).read_bytes()
        except OSError as exc:
            raise InputError([Problem("(file)", shorten(str(data)),
                                      f"a readable file ({type(exc).__name__})")]) from None
    elif isinstance(data, str) and not data.lstrip().startswith(("{", "[")) and (
            data.strip().endswith((".json", ".json.gz")) or os.path.exists(data.strip())):
        raise InputError([Problem("(file)", shorten(data), "JSON text or a mapping, not a "
                                  "file name: pass pathlib.Path(name) to read the file")])
    if isinstance(data, str | bytes):
        parsed = parse_json(data)
    else:
        parsed = data
        check_depth(parsed)
    if not isinstance(parsed, Mapping):
        raise InputError([Problem("(file)", shorten(type(parsed).__name__), "a JSON object")])
    return validate_patient(parsed)


def validate_patient(parsed: Mapping[str, Any]) -> Patient:
    """Validate a mapping already known to be shallow (imnm's own readers build it, as the
    FHIR reader does) as a :class:`Patient`; :func:`load_patient` is the edge for anything
    else. Raises :class:`InputError` as :func:`load_patient` does."""
    record_id = parsed.get("id") if isinstance(parsed.get("id"), str) else None
    try:
        return Patient.model_validate(parsed)
    except ValidationError as exc:
        problems = [_problem_from_pydantic(e) for e in exc.errors(include_url=False)]
        raise InputError(problems, record_id=record_id) from None
