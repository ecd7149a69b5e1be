"""Checking only what imnm reads of a FHIR Bundle: the fields the readers in
:mod:`imnm.fhir.read` take, each for the JSON type FHIR gives it. Used by the CDS Hooks service
instead of validating the whole Bundle through fhir.resources, which costs more than the
assessment itself (issue 14) and judges fields imnm never reads.

A field of the wrong type is an :class:`~imnm.errors.InputError` naming where it is, what it
is and what FHIR expects there, exactly as the full validation's errors do; fields imnm does not
read, and resources of types it does not read, are left alone (and reported as not used). Of a
result imnm does not use (a haemoglobin), only its status and code are read, so only they are
checked (:data:`KEY_FIELDS`): a real record sends hundreds of such results with every call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import SchemaValidator, ValidationError, core_schema

from imnm.errors import Problem, shorten

# FHIR's date and dateTime: ASCII digits, nothing after (\Z, where $ would let a newline end it).
_DATE = re.compile(r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
                   r"(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?\Z")

Check = Callable[[object], str | None]  # None when the value fits, else what was expected


def _string(value: object) -> str | None:
    return None if isinstance(value, str) else "a string"


def _number(value: object) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return None if ok else "a number"


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _integer(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "an integer"


def _datetime(value: object) -> str | None:
    ok = isinstance(value, str) and _DATE.match(value) is not None
    return None if ok else "a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD[Thh:mm:ss])"


CODING: dict[str, Any] = {"system": _string, "code": _string, "display": _string}
CONCEPT: dict[str, Any] = {"coding": [CODING], "text": _string}
QUANTITY: dict[str, Any] = {"value": _number, "unit": _string, "code": _string,
                            "system": _string}
PERIOD: dict[str, Any] = {"start": _datetime, "end": _datetime}
DOSAGE: dict[str, Any] = {"doseAndRate": [{"doseQuantity": QUANTITY}], "route": CONCEPT,
                          "timing": {"code": CONCEPT}}
MEDICATION: dict[str, Any] = {
    "status": _string, "medicationCodeableConcept": CONCEPT, "effectivePeriod": PERIOD,
    "effectiveDateTime": _datetime, "authoredOn": _datetime,
    "dispenseRequest": {"validityPeriod": PERIOD}, "dosage": [DOSAGE],
    "dosageInstruction": [DOSAGE], "extension": [{"url": _string, "valueInteger": _integer}]}

READ: dict[str, dict[str, Any]] = {
    "Patient": {"id": _string, "gender": _string, "birthDate": _datetime,
                "identifier": [{"system": _string, "value": _string}]},
    "Condition": {"verificationStatus": CONCEPT, "clinicalStatus": CONCEPT, "code": CONCEPT,
                  "onsetDateTime": _datetime},
    "Observation": {
        "status": _string, "code": CONCEPT, "effectiveDateTime": _datetime,
        "valueBoolean": _boolean, "valueInteger": _integer, "valueString": _string,
        "valueDateTime": _datetime, "valueQuantity": QUANTITY, "valueCodeableConcept": CONCEPT,
        "dataAbsentReason": CONCEPT, "interpretation": [CONCEPT], "method": CONCEPT,
        "referenceRange": [{"high": QUANTITY}], "performer": [{"display": _string}],
        "component": [{"code": CONCEPT, "valueString": _string}],
        "meta": {"tag": [CODING]}},
    "MedicationStatement": MEDICATION,
    "MedicationRequest": MEDICATION,
    "MedicationAdministration": MEDICATION,
    "FamilyMemberHistory": {"condition": [{"note": [{"text": _string}]}]},
    "Procedure": {"code": CONCEPT, "performedDateTime": _datetime},
    "DiagnosticReport": {"code": CONCEPT, "conclusionCode": [CONCEPT],
                         "effectiveDateTime": _datetime},
}


_Trail = tuple[Any, ...] | None  # (parent trail, key): the dotted name is joined on a problem only


def _where(path: _Trail) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(str(key))
    return ".".join(reversed(parts))


Checker = Callable[[object, _Trail, list[Problem]], None]


def _compile(shape: Any) -> Checker:
    """A checker for ``shape``, built once: a closure per object, array and field, so a call
    walks the value alone (interpreting the shape on every call cost about a third more)."""
    if isinstance(shape, dict):
        fields = {key: _compile(inner) for key, inner in shape.items()}
        lookup = fields.get

        def check_object(value: object, path: _Trail, problems: list[Problem]) -> None:
            if not isinstance(value, dict) and not isinstance(value, Mapping):  # dict: no ABC
                problems.append(Problem(_where(path), shorten(value), "a JSON object"))
                return
            # The value's own fields, in its order, each looked up in the shape: a resource
            # has a few of the many fields a shape knows (an Observation 6 of 16).
            for key, inner in value.items():
                check = lookup(key)
                if check is not None and inner is not None:  # null: the readers take absent
                    check(inner, (path, key), problems)

        return check_object
    if isinstance(shape, list):
        check_item = _compile(shape[0])

        def check_array(value: object, path: _Trail, problems: list[Problem]) -> None:
            if not isinstance(value, list):
                problems.append(Problem(_where(path), shorten(value), "a JSON array"))
                return
            for i, item in enumerate(value):
                if item is None:
                    problems.append(Problem(_where((path, i)), "None", "not null"))
                else:
                    check_item(item, (path, i), problems)

        return check_array
    leaf: Check = shape

    def check_field(value: object, path: _Trail, problems: list[Problem]) -> None:
        expected = leaf(value)
        if expected is not None:
            problems.append(Problem(_where(path), shorten(value), expected))

    return check_field


_CHECKS: dict[str, Checker] = {kind: _compile(shape) for kind, shape in READ.items()}

KEY_FIELDS: dict[str, tuple[str, ...]] = {"Observation": ("status", "code")}
"""The fields that say whether imnm uses a resource at all. A real child's record sends
hundreds of laboratory results imnm does not use (haemoglobin, sodium...); of those only these
are read (to name them as not used), so only these are checked."""

# Each such type's shape split in two: its key fields, and the rest.
_KEY_SHAPES = {kind: {k: READ[kind][k] for k in keys} for kind, keys in KEY_FIELDS.items()}
_REST_SHAPES = {kind: {k: v for k, v in READ[kind].items() if k not in keys}
                for kind, keys in KEY_FIELDS.items()}
_KEYS: dict[str, Checker] = {kind: _compile(shape) for kind, shape in _KEY_SHAPES.items()}
_REST: dict[str, Checker] = {kind: _compile(shape) for kind, shape in _REST_SHAPES.items()}

Used = Callable[[Mapping[str, Any]], bool]

# The same shapes as pydantic-core validators, asking of each value exactly what the leaf
# checks above ask (strict: no coercion; a number is an int or a float, never a bool; a date
# matches _DATE, whose \Z the Rust engine spells \z). They answer only "sound or not", in
# Rust: a resource they pass has no problems; one they refuse goes through the checkers above,
# which name each problem. (A test holds the two to the same answer.)
_LEAVES: dict[Check, Any] = {
    _string: core_schema.str_schema(strict=True),
    _number: core_schema.union_schema([core_schema.int_schema(strict=True),
                                       core_schema.float_schema(strict=True)]),
    _boolean: core_schema.bool_schema(strict=True),
    _integer: core_schema.int_schema(strict=True),
    _datetime: core_schema.str_schema(strict=True, pattern=_DATE.pattern.replace("\\Z", "\\z")),
}


def _core(shape: Any) -> Any:
    if isinstance(shape, dict):
        return core_schema.typed_dict_schema(
            {key: core_schema.typed_dict_field(core_schema.nullable_schema(_core(inner)),
                                               required=False)
             for key, inner in shape.items()},
            extra_behavior="ignore", strict=True)
    if isinstance(shape, list):
        return core_schema.list_schema(_core(shape[0]), strict=True)
    return _LEAVES[shape]


def _sound(shape: dict[str, Any]) -> Callable[[object], bool]:
    validator = SchemaValidator(_core(shape))

    def sound(value: object) -> bool:
        try:
            validator.validate_python(value)
        except ValidationError:
            return False
        return True

    return sound


_SOUND = {kind: _sound(shape) for kind, shape in READ.items()}
_SOUND_KEYS = {kind: _sound(shape) for kind, shape in _KEY_SHAPES.items()}
_SOUND_REST = {kind: _sound(shape) for kind, shape in _REST_SHAPES.items()}


def read_problems(resource: Mapping[str, Any], where: str, used: Used | None = None
                  ) -> list[Problem]:
    """What is wrong in the fields imnm reads of one resource (empty when nothing is).

    With ``used``, a resource of a type in :data:`KEY_FIELDS` has its key fields checked
    first; when they are sound and ``used(resource)`` says the reader goes no further than
    them, the rest is not read, so it is not checked either."""
    kind = str(resource.get("resourceType"))
    if used is not None and kind in _SOUND_KEYS:
        if _SOUND_KEYS[kind](resource) and (not used(resource) or _SOUND_REST[kind](resource)):
            return []
    elif kind not in _SOUND or _SOUND[kind](resource):
        return []
    problems: list[Problem] = []
    path = (None, where)
    if used is not None and (keys := _KEYS.get(kind)) is not None:
        keys(resource, path, problems)
        if not problems and used(resource):
            _REST[kind](resource, path, problems)
        return problems
    check = _CHECKS.get(kind)
    if check is not None:
        check(resource, path, problems)
    return problems
