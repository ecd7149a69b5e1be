"""How patient files may write things: common spellings of results and sex, a single result
or a plain number where a list is expected, quantities as text ('45 kg'), and the onset-pattern
names the literature uses. Each function turns an input into what the model validates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from imnm.knowledge import load_knowledge
from imnm.vocabulary import parse_antibody


def _quantity_input(value: object) -> object:
    """Accept ``{"value": 45, "unit": "kg"}`` or the string ``"45 kg"``."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([-+]?\d+(?:\.\d+)?)\s*(\S.*?)\s*", value)
        if not match:
            raise ValueError("a quantity such as '45 kg' or {'value': 45, 'unit': 'kg'}")
        return {"value": float(match.group(1)), "unit": match.group(2)}
    return value


_STATUS_ALIASES = {
    "pos": "positive", "+": "positive", "detected": "positive", "present": "positive",
    "neg": "negative", "-": "negative", "not detected": "negative", "absent": "negative",
    "not done": "not_tested", "untested": "not_tested", "not tested": "not_tested",
}


def _status(value: object) -> object:
    """Accept common spellings of a result: 'pos', '+', true, 'not done', ..."""
    if isinstance(value, bool):
        return "positive" if value else "negative"
    if isinstance(value, str):
        text = value.strip().lower()
        return _STATUS_ALIASES.get(text, text)
    return value


def _antibody_map(value: object) -> object:
    if not isinstance(value, Mapping):
        return value
    out: dict[str, object] = {}
    for key, result in value.items():
        if not isinstance(key, str):
            raise ValueError("antibody names as keys")
        name = parse_antibody(key).value
        if isinstance(result, Mapping):
            out[name] = {**result, "status": _status(result.get("status"))} \
                if "status" in result else result
        else:
            out[name] = {"status": _status(result)}
    return out


def _as_list(value: object) -> object:
    return value if isinstance(value, list) or value is None else [value]


def _ck_list(value: object) -> object:
    """Accept a single result, and plain numbers (taken as U/L)."""
    items = _as_list(value)
    if isinstance(items, list):
        return [{"value": v} if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in items]
    return items


def _diagnosis_list(value: object) -> object:
    """Accept plain labels: ["limb-girdle muscular dystrophy"]."""
    items = _as_list(value)
    if isinstance(items, list):
        return [{"label": v} if isinstance(v, str) else v for v in items]
    return items


_SEX_ALIASES = {"f": "female", "girl": "female", "woman": "female", "m": "male",
                "boy": "male", "man": "male"}


def _sex(value: object) -> object:
    if isinstance(value, str):
        text = value.strip().lower()
        return _SEX_ALIASES.get(text, text)
    return value


def _pattern(value: object) -> object:
    """Accept the band names the literature uses (Table 1 writes "Slow" for chronic)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    for band in load_knowledge().onset_bands:
        if text in band.aliases:
            return band.id
    return text
