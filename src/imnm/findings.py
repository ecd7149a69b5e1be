"""Findings: what a rule concludes, from which facts, under which source, and what is missing."""

# No ``from __future__ import annotations``: pydantic would evaluate every field's annotation
# from its string (an eval and a compile each) as it builds the models, on every start.

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from imnm.knowledge import Knowledge, Status


class Kind(StrEnum):
    """What kind of statement a finding is."""

    conclusion = "conclusion"  # a classification or judgement
    action = "action"  # something to do (test, image, refer)
    red_flag = "red_flag"  # act on it
    caution = "caution"  # how to read a result
    note = "note"  # context worth knowing
    gap = "gap"  # a question the rule could not answer, and why


class Fact(BaseModel):
    """One input fact a rule used, as ``field`` = ``value`` (both text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    value: str


class Finding(BaseModel):
    """One conclusion of one rule. Build it with keyword arguments only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str = Field(description="Dotted rule id, e.g. suspicion.dystrophy_label_unconfirmed.")
    kind: Kind
    conclusion: str = Field(description="What the rule concludes, in words.")
    facts: tuple[Fact, ...] = Field(default=(), description="Input facts the rule used.")
    source: str = Field(description="Source id, resolvable with `imnm knowledge`.")
    status: Status = Field(description="How well the underlying knowledge is established.")
    missing: tuple[str, ...] = Field(default=(), description="What would change or firm it up.")


def facts(**values: object) -> tuple[Fact, ...]:
    """Build facts from keyword arguments, skipping ``None`` values."""
    return tuple(Fact(field=k, value=_text(v)) for k, v in values.items() if v is not None)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def recommended(
    knowledge: Knowledge,
    rule_id: str,
    *,
    facts_used: tuple[Fact, ...] = (),
    missing: tuple[str, ...] = (),
    prefix: str = "",
) -> Finding:
    """A finding whose words and source come from ``recommendations.toml``."""
    rec = knowledge.recommendation(rule_id)
    return Finding(
        rule_id=rule_id,
        kind=Kind(rec.kind),
        conclusion=(prefix + rec.says) if prefix else rec.says,
        facts=facts_used,
        source=rec.source,
        status=rec.status,
        missing=missing,
    )
