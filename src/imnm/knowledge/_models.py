"""Typed, frozen models of the knowledge files. They check themselves; they never open files."""

# No ``from __future__ import annotations``: pydantic would evaluate every field's annotation
# from its string (an eval and a compile each) as it builds the models, on every start.

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from imnm.codes import CodeSystem
from imnm.vocabulary import Antibody, Drug, Sex


class Frozen(BaseModel):
    """Base of every knowledge model: unknown fields refused, instances frozen. Validators are
    built on first validation (``defer_build``), so a process that takes the knowledge from
    the cache (:mod:`imnm.knowledge._cache`) never builds them."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Status(StrEnum):
    """How well a fact is established (see sources.toml for the meaning of each word)."""

    confirmed = "confirmed"
    secondary = "secondary"
    unconfirmed = "unconfirmed"
    derived = "derived"
    heuristic = "heuristic"


class Cited(Frozen):
    """An entry that rests on a source."""

    source: str
    status: Status


class Source(Frozen):
    """One publication or reference."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    citation: str
    doi: str | None = None
    url: str | None = None
    kind: Literal["seed", "guideline", "criteria", "study", "review", "terminology",
                  "laboratory", "project"]
    note: str | None = None

    @property
    def doi_url(self) -> str | None:
        """The DOI as a link, when the source has one."""
        return f"https://doi.org/{self.doi}" if self.doi else None

    @property
    def link(self) -> str | None:
        """Where a reader finds the source: its DOI, else its URL."""
        return self.doi_url or self.url


class OnsetBand(Cited):
    """One onset-pattern band of the review's Table 1 footnote."""

    id: Literal["acute", "subacute", "chronic", "insidious"]
    min_months: float = Field(ge=0)
    max_months: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    aliases: tuple[str, ...] = ()
    note: str | None = None

    def contains(self, months: float) -> bool:
        """True when a course of ``months`` falls in this band."""
        above = months >= self.min_months if self.min_inclusive else months > self.min_months
        if self.max_months is None:
            return above
        below = months <= self.max_months if self.max_inclusive else months < self.max_months
        return above and below


class CkBand(Cited):
    """A fallback CK upper reference limit for an age band and sex."""

    sex: Literal["male", "female"]
    min_age_years: float = Field(ge=0)
    max_age_years: float | None = None
    upper_limit: float = Field(gt=0)
    unit: str
    note: str | None = None

    def covers(self, sex: Sex, age_years: float) -> bool:
        """True when this band applies to ``sex`` at ``age_years``."""
        upper_ok = self.max_age_years is None or age_years < self.max_age_years
        return sex.value == self.sex and self.min_age_years <= age_years and upper_ok


Subgroup = Literal["imnm", "dm", "ass", "ibm", "overlap", "nonspecific", "dystrophy"]


class AntibodyProfile(Cited):
    """Which myositis subgroup an antibody points to."""

    id: Antibody
    name: str
    kind: Literal["specific", "associated"]
    points_to: tuple[Subgroup, ...]
    imnm_subtype: Literal["anti_hmgcr_imnm", "anti_srp_imnm"] | None = None
    note: str | None = None


class PathologyFeature(Cited):
    """One biopsy feature of a subgroup's pattern."""

    subgroup: Literal["imnm", "dm", "ass", "ibm", "dystrophy"]
    field: str
    expected: bool | str
    specific: bool
    says: str


class EnmcSubtype(Cited):
    """An ENMC 2017 IMNM subtype and the elements it requires."""

    id: Literal["anti_hmgcr_imnm", "anti_srp_imnm", "seronegative_imnm"]
    says: str
    requires: tuple[str, ...]
    caveats: tuple[str, ...] = ()
    note: str | None = None


class EnmcElement(Cited):
    """One element of the ENMC 2017 definitions."""

    id: str
    says: str
    missing: str


class EularItem(Cited):
    """One weighted item of the 2017 EULAR/ACR criteria."""

    id: str
    says: str
    points_without_biopsy: float | None = None
    points_with_biopsy: float
    onset_age_min: float | None = None
    onset_age_max: float | None = None

    def age_band_contains(self, age: float) -> bool:
        """For an age item: whether onset at ``age`` falls in its band."""
        low = self.onset_age_min if self.onset_age_min is not None else float("-inf")
        high = self.onset_age_max if self.onset_age_max is not None else float("inf")
        return low <= age < high


class EularCategory(Cited):
    """A probability category and its score cut-offs."""

    id: Literal["not_iim", "possible_iim", "probable_iim", "definite_iim"]
    says: str
    min_score_without_biopsy: float
    min_score_with_biopsy: float
    probability: str


class EularProbability(Cited):
    """Logistic constants of P = 1 / (1 + exp(c - score))."""

    intercept_without_biopsy: float
    intercept_with_biopsy: float
    note: str | None = None


class Juvenile(Cited):
    """The age below which onset is juvenile in the EULAR/ACR criteria."""

    onset_age_limit_years: float = Field(gt=0)


class CodeEntry(Cited):
    """A code that belongs to a code set."""

    set: Literal["dystrophy", "myositis", "unexplained_myopathy", "drug_induced_myopathy",
                 "ck", "enzyme", "antibody_test", "genetic_test", "vital", "answer",
                 "drug"]
    system: CodeSystem
    code: str
    match: Literal["exact", "prefix"] = "exact"
    display: str
    concept: str | None = None
    scale: Literal["Qn", "Ord", "Nom"] | None = None


class Product(Cited):
    """An RxNorm clinical or branded drug, mapped to the RXCUI of its ingredient."""

    rxcui: str = Field(pattern=r"^[1-9][0-9]{0,8}$")
    name: str
    tty: Literal["SCD", "SBD", "SCDC", "SBDC", "GPCK", "BPCK"]
    omop_concept_id: int | None = Field(default=None, gt=0)
    ingredient: str = Field(pattern=r"^[1-9][0-9]{0,8}$")


Answer = Literal["positive", "negative"]


class ValueConcept(Cited):
    """An OMOP value_as_concept_id that answers a qualitative test."""

    concept_id: int = Field(gt=0)
    name: str
    answer: Answer


class AnswerCode(Cited):
    """A coded answer (FHIR valueCodeableConcept) of a qualitative test."""

    system: CodeSystem
    code: str
    display: str
    answer: Answer


class Interpretation(Cited):
    """An HL7 v3 ObservationInterpretation code read as an answer."""

    code: str
    display: str
    answer: Answer
    note: str | None = None


class AnswerWord(Cited):
    """A result text read as an answer (whole text, case-insensitive)."""

    text: str
    answer: Answer


class Keyword(Cited):
    """A word that puts a free-text diagnosis label into a set."""

    set: Literal["myositis", "dystrophy", "unexplained_myopathy"]
    text: str


class Recommendation(Cited):
    """The words a rule says, with their source."""

    id: str = Field(pattern=r"^[a-z_]+(\.[a-z0-9_]+)+$")
    kind: Literal["action", "red_flag", "caution", "note"]
    says: str


class Parameter(Cited):
    """A named value that no source fixes (or one a source does)."""

    id: str
    value: float | bool
    unit: str
    says: str
    why: str


EnmcClass = Literal["anti_hmgcr_imnm", "anti_srp_imnm", "seronegative_imnm"]


class DoseRule(Cited):
    """How to compute one drug's dose for a child."""

    id: str
    drug: Drug
    says: str
    basis: Literal["per_kg", "per_m2", "fixed"]
    amount_min: float = Field(gt=0)
    amount_max: float = Field(gt=0)
    amount_unit: Literal["mg", "g"]
    per: Literal["day", "week", "course", "infusion"]
    cap: float | None = Field(None, gt=0)
    cap_source: str | None = None
    cap_status: Status | None = None
    route: str = ""
    frequency: str = ""
    duration: str = ""
    rounding_increment: float = Field(gt=0)
    administrations_min: int | None = Field(None, gt=0)  # doses in the course, where fixed
    administrations_max: int | None = Field(None, gt=0)
    choice: Literal["recommended", "alternative"] | None = None  # where a step has two doses
    choice_reason: str | None = None
    note: str | None = None


class Step(Cited):
    """One step of a treatment plan for ENMC subtypes."""

    id: str
    applies_to: tuple[EnmcClass, ...]
    line: Literal["first", "early", "wean", "second", "refractory"]
    doses: tuple[str, ...] = ()
    drugs: tuple[Drug, ...] = ()
    says: str


class Monitoring(Cited):
    """What to watch on a drug."""

    drug: Drug
    when: str
    says: str


class Cumulative(Cited):
    """A lifetime dose limit to track."""

    drug: Drug
    basis: Literal["per_m2"]
    limit: float = Field(gt=0)
    unit: Literal["g/m2"]
    applies_to_sex: Literal["male", "female"]
    says: str
    note: str | None = None


class Measure(Cited):
    """A core set measure of the Total Improvement Score."""

    id: Literal["physician_global", "patient_global", "strength", "function", "enzyme",
                "extramuscular"]
    says: str
    better: Literal["higher", "lower"]
    change: Literal["range", "baseline"]
    bands: tuple[float, float, float, float]
    points: tuple[float, float, float, float, float]
    # The percent-change formula (``change``) was not found in the sources seen: its own status.
    change_status: Status = Status.unconfirmed


class Scale(Cited):
    """An instrument recorded at visits."""

    id: str
    says: str
    min: float
    max: float
    better: Literal["higher", "lower"]


class Threshold(Cited):
    """TIS category cut-offs for a population."""

    population: Literal["juvenile", "adult"]
    minimal: float
    moderate: float
    major: float


class Review(Cited):
    """A point in time to reassess treatment."""

    id: str
    weeks: float = Field(gt=0)
    says: str
