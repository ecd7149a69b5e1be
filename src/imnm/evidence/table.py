"""The review's Table 1 as typed rows (``data/table1.toml``), loaded once."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from imnm.errors import KnowledgeError, Problem, shorten

FEATURES = ("dysphagia", "lung", "heart", "skin")
ONSETS = ("acute", "subacute", "chronic", "insidious", "unknown")
DYSTROPHY_LABELS = frozenset({"MD", "CMD", "LGMD", "FSHD"})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Row(_Frozen):
    """One study and antibody group of Table 1."""

    id: str
    reference: str
    ref: str
    antibody: Literal["HMGCR", "SRP"]
    patients: int = Field(gt=0)
    age: str
    female: int = Field(ge=0)
    male: int = Field(ge=0)
    sex_unknown: int = Field(ge=0)
    onset_acute: int = Field(ge=0)
    onset_subacute: int = Field(ge=0)
    onset_chronic: int = Field(ge=0)
    onset_insidious: int = Field(ge=0)
    onset_unknown: int = Field(ge=0)
    dysphagia: tuple[int, int]
    lung: tuple[int, int]
    heart: tuple[int, int]
    skin: tuple[int, int]
    ck: str
    ck_min: float | None = None
    ck_max: float | None = None
    initial_diagnoses: tuple[tuple[str, int], ...]
    treatments: tuple[str, ...]
    detail_excluded: bool
    note: str | None = None
    source: str

    @model_validator(mode="after")
    def _consistent(self) -> Row:
        if self.female + self.male + self.sex_unknown != self.patients:
            raise ValueError("female + male + sex_unknown to equal patients")
        if sum(self.onset(o) for o in ONSETS) != self.patients:
            raise ValueError("the onset counts to add up to patients")
        for name in FEATURES:
            positive, known = getattr(self, name)
            if not 0 <= positive <= known <= self.patients:
                raise ValueError(f"{name}: 0 <= positive <= known <= patients")
        if sum(n for _, n in self.initial_diagnoses) != self.patients:
            raise ValueError("initial_diagnoses counts to add up to patients")
        return self

    def onset(self, kind: str) -> int:
        """Children with onset ``kind`` (acute, subacute, chronic, insidious, unknown)."""
        return int(getattr(self, f"onset_{kind}"))

    def first_called_dystrophy(self) -> int:
        """Children whose initial diagnosis was a dystrophy label (MD, CMD, LGMD, FSHD)."""
        return sum(n for label, n in self.initial_diagnoses if label in DYSTROPHY_LABELS)


class Published(_Frozen):
    """The review's Total row and text figures."""

    source: str
    patients: int
    hmgcr: int
    srp: int
    female: int
    male: int
    sex_unknown: int
    female_to_male: str
    onset_acute: int
    onset_subacute: int
    onset_chronic: int
    onset_insidious: int
    onset_unknown: int
    subacute_text: str
    insidious_text: str
    dysphagia: tuple[int, int]
    lung: tuple[int, int]
    heart: tuple[int, int]
    skin: tuple[int, int]
    dysphagia_percent: int
    lung_percent: int
    heart_percent: int
    skin_percent: int
    initial_dystrophy: int
    mean_onset_age_years: float
    mean_onset_age_n: int
    note: str | None = None


class Table1(_Frozen):
    """All rows and the published totals."""

    published: Published
    rows: tuple[Row, ...]


def load_table(path: Path | None = None) -> Table1:
    """Load and validate Table 1; a problem names the row and the field."""
    if path is None:
        path = Path(str(resources.files("imnm.evidence") / "data" / "table1.toml"))
    return _load(str(path))


@cache
def _load(path: str) -> Table1:
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    problems: list[Problem] = []
    rows: list[Row] = []
    for index, item in enumerate(raw.get("row", [])):
        try:
            rows.append(Row.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"]) or "(row)"
                problems.append(Problem(f"table1.toml: row #{index + 1} "
                                        f"({item.get('id', '?')}) field {where}",
                                        shorten(err.get("input")), err["msg"]))
    try:
        published = Published.model_validate(raw.get("published"))
    except ValidationError as exc:
        problems += [Problem("table1.toml: [published]", shorten(e.get("input")), e["msg"])
                     for e in exc.errors(include_url=False)]
    if problems:
        raise KnowledgeError(problems)
    return Table1(published=published, rows=tuple(rows))
