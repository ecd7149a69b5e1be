"""The researcher's view of a child: coded and categorised values only, never free text.

The rule is by type, not by a list of fields to remove: every text field of the patient
model is dropped unless :data:`TEXT_RULES` says how it is made categorical, so a free-text
field added to the model later is withheld from researchers until someone decides otherwise.
Numbers, true/false, dates (cut to the month by the registry) and enumerated values are kept.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel

from imnm.knowledge import Knowledge, load_knowledge
from imnm.patient import Drug, Patient
from imnm.rules._facts import classify_labels

WITHHELD = "free text withheld"
_HGNC_SYMBOL = re.compile(r"^[A-Z][A-Z0-9-]{1,14}$")  # HGNC approved symbols' shape
_REGION = re.compile(r"^[a-z][a-z_]{1,39}$")  # the model's region words (hamstrings, ...)
_DROP = object()


def _is_text(annotation: object) -> bool:
    """Whether a field's type is free text: ``str`` itself (alone, optional or in a list), not
    an enumeration or a Literal, whose values are categories."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _is_text(args[0])
    if origin in (typing.Union, types.UnionType, list, tuple):
        return any(_is_text(a) for a in args)
    return annotation is str


def _frequency_words(knowledge: Knowledge) -> set[str]:
    words = {"once", "daily", "twice daily", "weekly", "every 2 weeks", "every 4 weeks",
             "monthly"}
    return words | {d.frequency.lower() for d in knowledge.doses.values() if d.frequency}


def _rules(knowledge: Knowledge) -> dict[str, Callable[[str, Any], object]]:
    """Text fields and how each becomes categorical (``_DROP`` withholds it)."""
    frequencies = _frequency_words(knowledge)
    return {
        "unit": lambda value, _owner: value,  # validated against known units at entry
        "Diagnosis.code": lambda value, _owner: value,  # validated against its system
        "Patient.id": lambda value, _owner: value,  # replaced by the pseudonym afterwards
        "Treatment.name": lambda _value, owner: (
            f"other ({WITHHELD})" if owner.drug is Drug.other else _DROP),
        "Treatment.frequency": lambda value, _owner: (
            value if value.lower() in frequencies else _DROP),
        "GeneticTesting.genes": lambda value, _owner: (
            value if _HGNC_SYMBOL.match(value) else _DROP),
        "MuscleMRI.oedema_regions": lambda value, _owner: (
            value if _REGION.match(value) else _DROP),
        "MuscleMRI.fatty_replacement_regions": lambda value, _owner: (
            value if _REGION.match(value) else _DROP),
    }


def _category_labels(patient: Patient, knowledge: Knowledge) -> dict[int, str]:
    """Each diagnosis's label as its category: the code's display from the knowledge when the
    code is known, else the keyword that put it in a set (so the researcher's assessment reads
    it the same way), else a plain 'unrecognised'."""
    first_keyword: dict[str, str] = {}
    for keyword in knowledge.keywords:
        first_keyword.setdefault(keyword.set, keyword.text)
    labels: dict[int, str] = {}
    for label in classify_labels(patient, knowledge):
        d = label.diagnosis
        if label.via == "code" and d.system is not None and d.code is not None:
            entry = knowledge.lookup_code(d.system.value, d.code)
            text = entry.display if entry is not None else f"coded diagnosis ({WITHHELD})"
        elif label.set is not None:
            text = f"{first_keyword[label.set]} ({WITHHELD})"
        else:
            text = f"unrecognised diagnosis ({WITHHELD})"
        labels[id(d)] = text
    return labels


def strip_free_text(patient: Patient, knowledge: Knowledge | None = None) -> dict[str, Any]:
    """The patient as JSON data with every free-text value withheld or categorised."""
    kb = knowledge or load_knowledge()
    rules = _rules(kb)
    labels = _category_labels(patient, kb)

    def text(value: str, owner: BaseModel, name: str) -> object:
        where = f"{type(owner).__name__}.{name}"
        if where == "Diagnosis.label":
            return labels.get(id(owner), f"diagnosis ({WITHHELD})")
        rule = rules.get(where) or rules.get(name)
        return _DROP if rule is None else rule(value, owner)

    def walk(value: object, dumped: object, owner: BaseModel | None, name: str,
             is_text: bool) -> object:
        if isinstance(value, BaseModel):
            out: dict[str, Any] = {}
            assert isinstance(dumped, Mapping)  # noqa: S101 - model_dump of a model
            fields = type(value).model_fields
            for field_name, field_dumped in dumped.items():
                kept = walk(getattr(value, field_name), field_dumped, value, field_name,
                            _is_text(fields[field_name].annotation))
                if kept is not _DROP:
                    out[field_name] = kept
            return out
        if isinstance(value, list | tuple):
            assert isinstance(dumped, list)  # noqa: S101
            items = [walk(v, d, owner, name, is_text)
                     for v, d in zip(value, dumped, strict=True)]
            return [i for i in items if i is not _DROP]
        if isinstance(value, Mapping):
            assert isinstance(dumped, Mapping)  # noqa: S101
            result = {}
            for key, item in value.items():
                json_key = key.value if isinstance(key, Enum) else str(key)
                kept = walk(item, dumped[json_key], owner, name, is_text)
                if kept is not _DROP:
                    result[json_key] = kept
            return result
        if is_text and isinstance(value, str) and owner is not None:
            return text(value, owner, name)
        return dumped

    data = walk(patient, patient.model_dump(mode="json", exclude_none=True), None, "", False)
    assert isinstance(data, dict)  # noqa: S101
    skin = patient.extramuscular.skin
    if skin.other and skin.any_skin_lesion is None:  # the fact survives, its words do not
        data.setdefault("extramuscular", {}).setdefault("skin", {})["any_skin_lesion"] = True
    return data
