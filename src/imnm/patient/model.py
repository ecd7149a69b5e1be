"""The patient model: what is known about one child, validated, with units normalised.

Everything here is *observation*; nothing is concluded. Three answers are kept apart
everywhere: a fact that is **true**, one that is **false** (looked for, absent, or tested
negative) and one that is **unknown** (``None``: not examined, not tested or not reported).
The rules in :mod:`imnm.rules` never read ``None`` as ``False``.
"""

# No ``from __future__ import annotations``: pydantic would evaluate every field's annotation
# from its string (an eval and a compile each) as it builds the models, on every start.

import datetime as dt
import re
import typing
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from imnm import quantities
from imnm.codes import EXPECTED, CodeSystem, is_valid
from imnm.errors import field_error
from imnm.knowledge import load_knowledge
from imnm.patient.limits import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    MAX_AGE_YEARS,
    MAX_BMI,
    MAX_CK_U_PER_L,
    MAX_HEIGHT_CM,
    MAX_TEXT_CHARS,
    MAX_WEIGHT_KG,
    MIN_BMI,
    MIN_HEIGHT_CM,
    MIN_WEIGHT_KG,
)
from imnm.patient.spellings import (
    _antibody_map,
    _ck_list,
    _diagnosis_list,
    _pattern,
    _quantity_input,
    _sex,
)
from imnm.vocabulary import (
    Antibody,
    AntibodyStatus,
    AssayMethod,
    BiopsyConclusion,
    DiagnosisStatus,
    Drug,
    GeneticResult,
    Interpretation,
    OnsetPattern,
    Sex,
    parse_drug,
)

_bad = field_error


def _numeric(annotation: object) -> bool:
    """True when a field's type is a number (float or int) and not also a boolean."""
    args = typing.get_args(annotation)
    if args:
        inner = [a for a in args if a is not type(None)]
        return any(_numeric(a) for a in inner) and bool not in inner
    return annotation in (float, int)


class Model(BaseModel):
    """Base of every patient-file model: unknown fields are refused, instances are frozen,
    numbers must be finite, and true/false is never read as 1/0."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True,
                              allow_inf_nan=False, str_max_length=MAX_TEXT_CHARS)

    @model_validator(mode="before")
    @classmethod
    def _no_boolean_numbers(cls, data: object) -> object:
        # One check per object rather than a validator on every field: a validator for "*"
        # made pydantic inspect it once per field when the models are built (a tenth of the
        # patient models' import) and cost a Python call per field of every file read.
        if not isinstance(data, Mapping):
            return data
        wrong = [InitErrorDetails(type=PydanticCustomError("value_error", "Value error, "
                                                           "a number, not true/false"),
                                  loc=(name,), input=value)
                 for name, value in data.items()
                 if isinstance(value, bool) and name in _numeric_fields(cls)]
        if wrong:  # every such field of the object is named, not only the first
            raise ValidationError.from_exception_data(cls.__name__, wrong)
        return data


@cache
def _numeric_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names of ``model``'s fields whose type is a number (see :func:`_numeric`)."""
    return frozenset(name for name, field in model.model_fields.items()
                     if _numeric(field.annotation))


class Quantity(Model):
    """A number with its unit, as entered."""

    value: float = Field(description="The number as entered.")
    unit: str = Field(description="The unit as entered (UCUM-like spelling, e.g. kg, lb, cm).")


class Weight(Quantity):
    """Body weight: kg, g or lb; stored in kg."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        kg = _convert(self.value, self.unit, "mass")
        if not MIN_WEIGHT_KG <= kg <= MAX_WEIGHT_KG:
            raise _bad("value", f"{self.value:g} {self.unit}",
                       f"a body weight from {MIN_WEIGHT_KG:g} to {MAX_WEIGHT_KG:g} kg "
                       "(input_min_weight_kg, input_max_weight_kg)")
        return self

    @property
    def kg(self) -> float:
        """Weight in kilograms."""
        return quantities.convert(self.value, self.unit, "mass")


class Height(Quantity):
    """Height or length: cm, m or in; stored in cm."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        cm = _convert(self.value, self.unit, "length")
        if not MIN_HEIGHT_CM <= cm <= MAX_HEIGHT_CM:
            raise _bad("value", f"{self.value:g} {self.unit}",
                       f"a height between {MIN_HEIGHT_CM:g} and {MAX_HEIGHT_CM:g} cm")
        return self

    @property
    def cm(self) -> float:
        """Height in centimetres."""
        return quantities.convert(self.value, self.unit, "length")


class Dose(Quantity):
    """A dose as given: mg, g, mg/kg, mg/m2 ... (checked to be a dose unit by pint)."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.value <= 0:
            raise _bad("value", self.value, "a dose above 0")
        try:
            quantities.parse_dose_unit(self.unit)
        except ValueError as exc:
            raise _bad("unit", self.unit, str(exc)) from None
        return self


def _convert(value: float, unit: str, kind: str) -> float:
    try:
        return quantities.convert(value, unit, kind)
    except ValueError as exc:
        raise _bad("unit", unit, str(exc)) from None


WeightIn = Annotated[Weight, BeforeValidator(_quantity_input)]


HeightIn = Annotated[Height, BeforeValidator(_quantity_input)]


DoseIn = Annotated[Dose, BeforeValidator(_quantity_input)]


MRC = Annotated[float, Field(ge=0, le=5, description="MRC grade 0-5 (5 = normal strength).")]


class EnzymeResult(Model):
    """One serum enzyme result. Give ``value`` with ``unit`` (and ideally the laboratory's own
    ``upper_limit`` in the same unit), or only ``interpretation`` when no number is known."""

    value: float | None = Field(None, description="Result as reported.")
    unit: str = Field("U/L", description="U/L, IU/L or µkat/L (1 µkat/L = 60 U/L).")
    upper_limit: float | None = Field(
        None, description="The reporting laboratory's upper reference limit, in `unit`."
    )
    date: dt.date | None = Field(None, description="Sample date.")
    interpretation: Interpretation | None = Field(
        None, description="'elevated' or 'normal' when only the laboratory's flag is known."
    )
    lab: str | None = Field(None, description="Reporting laboratory (free text).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.value is None and self.interpretation is None:
            raise _bad("value", None,
                       "a value (with unit) or an interpretation ('elevated'/'normal')")
        if self.value is not None:
            u_per_l = _convert(self.value, self.unit, "activity")
            if not 0 <= u_per_l <= MAX_CK_U_PER_L:
                raise _bad("value", self.value,
                           f"an activity between 0 and {MAX_CK_U_PER_L:,.0f} U/L")
        if self.upper_limit is not None:
            uln = _convert(self.upper_limit, self.unit, "activity")
            if not 0 < uln <= MAX_CK_U_PER_L:
                raise _bad("upper_limit", self.upper_limit,
                           "an upper reference limit above 0, in the result's unit")
        return self

    @property
    def u_per_l(self) -> float | None:
        """The value in U/L, or None when only an interpretation was given."""
        if self.value is None:
            return None
        return quantities.convert(self.value, self.unit, "activity")

    @property
    def upper_limit_u_per_l(self) -> float | None:
        """The laboratory's upper reference limit in U/L, when given."""
        if self.upper_limit is None:
            return None
        return quantities.convert(self.upper_limit, self.unit, "activity")


class OtherEnzyme(EnzymeResult):
    """Another muscle-derived enzyme (the EULAR/ACR 2017 enzyme item accepts LDH, AST, ALT)."""

    analyte: Literal["aldolase", "ldh", "ast", "alt"] = Field(description="Which enzyme.")


class AntibodyResult(Model):
    """One autoantibody result."""

    status: AntibodyStatus = Field(description="positive, negative or not_tested.")
    method: AssayMethod | None = Field(None, description="Assay; line blots need confirming.")
    strength: Literal["weak", "moderate", "strong"] | None = Field(
        None, description="Semi-quantitative strength as reported (e.g. line-blot band)."
    )
    date: dt.date | None = Field(None, description="Sample date.")


class Weakness(Model):
    """Strength by region. Give the worst MRC grade of either side (0-5) where examined;
    where only the presence of weakness is known, use the boolean fields instead."""

    proximal_upper: MRC | None = Field(None, description="Shoulder girdle / proximal arms.")
    proximal_lower: MRC | None = Field(None, description="Hip girdle / proximal legs.")
    distal_upper: MRC | None = Field(None, description="Forearm and hand.")
    distal_lower: MRC | None = Field(None, description="Lower leg and foot.")
    neck_flexors: MRC | None = None
    neck_extensors: MRC | None = None
    finger_flexors: MRC | None = None
    proximal_weakness: bool | None = Field(
        None, description="Objective proximal weakness when no grades are recorded."
    )
    symmetric: bool | None = Field(None, description="Weakness symmetric on both sides.")
    neck_flexors_weaker_than_extensors: bool | None = Field(
        None, description="When grades are not recorded; derived from grades otherwise."
    )
    legs_proximal_weaker_than_distal: bool | None = Field(
        None, description="In the legs, proximal weaker than distal (derived if graded)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        graded = self._graded_proximal()
        if graded is not None and self.proximal_weakness is not None:
            if graded != self.proximal_weakness:
                raise _bad("proximal_weakness", self.proximal_weakness,
                           "a value that agrees with the proximal MRC grades given")
        neck = self._graded_neck()
        if neck is not None and self.neck_flexors_weaker_than_extensors not in (None, neck):
            raise _bad("neck_flexors_weaker_than_extensors",
                       self.neck_flexors_weaker_than_extensors,
                       "a value that agrees with the neck MRC grades given")
        return self

    def _graded_proximal(self) -> bool | None:
        grades = [g for g in (self.proximal_upper, self.proximal_lower) if g is not None]
        if any(g < 5 for g in grades):
            return True
        if len(grades) == 2:
            return False
        return None

    def _graded_neck(self) -> bool | None:
        if self.neck_flexors is None or self.neck_extensors is None:
            return None
        return self.neck_flexors < self.neck_extensors

    def has_proximal_weakness(self) -> bool | None:
        """True, False (both proximal regions graded normal) or None (unknown)."""
        graded = self._graded_proximal()
        return graded if graded is not None else self.proximal_weakness

    def proximal_upper_weak(self) -> bool | None:
        """Proximal upper-limb weakness, from the grade."""
        return None if self.proximal_upper is None else self.proximal_upper < 5

    def proximal_lower_weak(self) -> bool | None:
        """Proximal lower-limb weakness, from the grade."""
        return None if self.proximal_lower is None else self.proximal_lower < 5

    def neck_flexor_predominance(self) -> bool | None:
        """Neck flexors relatively weaker than extensors."""
        graded = self._graded_neck()
        return graded if graded is not None else self.neck_flexors_weaker_than_extensors

    def legs_proximal_predominance(self) -> bool | None:
        """In the legs, proximal muscles relatively weaker than distal."""
        if self.proximal_lower is not None and self.distal_lower is not None:
            return self.proximal_lower < self.distal_lower
        return self.legs_proximal_weaker_than_distal


class Biopsy(Model):
    """Muscle biopsy findings (the 2023 review, section 5.2). ``None`` = not reported."""

    date: dt.date | None = None
    conclusion: BiopsyConclusion | None = Field(
        None, description="Pathologist's overall reading, e.g. necrotizing_myopathy."
    )
    necrosis: bool | None = Field(None, description="Necrotic muscle fibres.")
    regeneration: bool | None = Field(None, description="Regenerating fibres.")
    inflammation: Literal["none", "sparse", "prominent"] | None = Field(
        None, description="Lymphocytic infiltrate."
    )
    endomysial_infiltrate_not_invading: bool | None = Field(
        None, description="Endomysial mononuclear cells surrounding, not invading, fibres."
    )
    perimysial_perivascular_infiltrate: bool | None = None
    cd8_invasion: bool | None = Field(
        None, description="CD8+ cells invading non-necrotic fibres."
    )
    mhc_i: bool | None = Field(None, description="MHC class I upregulated on fibres.")
    mhc_ii: Literal["absent", "sarcolemmal", "sarcolemmal_and_sarcoplasmic"] | None = None
    mac: Literal["absent", "sarcolemmal", "capillary", "sarcolemmal_and_capillary"] | None = (
        Field(None, description="Membrane attack complex (C5b-9) deposition site.")
    )
    p62: Literal["absent", "fine_granular", "coarse_aggregates"] | None = None
    mxa: bool | None = Field(None, description="Sarcoplasmic MxA expression.")
    perifascicular_atrophy: bool | None = None
    perifascicular_necrosis: bool | None = None
    perimysial_fragmentation: bool | None = None
    rimmed_vacuoles: bool | None = None
    fibrosis: bool | None = Field(None, description="Endomysial fibrosis.")
    fatty_replacement: bool | None = None


class MuscleMRI(Model):
    """Muscle MRI (the 2023 review, section 5.1). Regions are free text such as
    ``hamstrings``, ``adductor_magnus``, ``quadriceps``, ``posterior_thigh``, ``upper_limbs``."""

    date: dt.date | None = None
    oedema: bool | None = Field(None, description="Muscle oedema (STIR hyperintensity).")
    oedema_regions: list[str] = Field(default_factory=list)
    fatty_replacement: bool | None = None
    fatty_replacement_regions: list[str] = Field(default_factory=list)
    fascial_oedema: bool | None = Field(None, description="Fascial oedema (frequent in DM).")
    symmetric: bool | None = None


class FamilyHistory(Model):
    """Family history of neuromuscular disease."""

    neuromuscular_disease: bool | None = None
    details: str | None = None


class GeneticTesting(Model):
    """Genetic testing for an inherited muscle disease. A gene named here is a *gene*: a
    variant in HMGCR (LGMD R28) is never an anti-HMGCR antibody result."""

    done: bool | None = None
    result: GeneticResult | None = None
    genes: list[str] = Field(default_factory=list, description="Genes with reported variants.")
    diagnosis: str | None = Field(None, description="Genetic diagnosis, e.g. 'Duchenne MD'.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.done is False and self.result is not None:
            raise _bad("result", self.result.value, "no result when done is false")
        return self

    @property
    def confirmed(self) -> bool:
        """A diagnostic genetic result is on record."""
        return self.result is GeneticResult.diagnostic


class Skin(Model):
    """Skin findings; the first three are EULAR/ACR 2017 items."""

    heliotrope_rash: bool | None = None
    gottron_papules: bool | None = None
    gottron_sign: bool | None = None
    any_skin_lesion: bool | None = Field(None, description="Any rash or skin lesion.")
    other: list[str] = Field(default_factory=list, description="e.g. mechanic's hands.")

    def any_present(self) -> bool | None:
        """True if any skin finding is reported, False if all are reported absent."""
        flags = [self.heliotrope_rash, self.gottron_papules, self.gottron_sign]
        flags.append(self.any_skin_lesion)
        if any(flags) or self.other:
            return True
        if self.any_skin_lesion is False:
            return False
        return None


class Extramuscular(Model):
    """Involvement beyond skeletal muscle."""

    dysphagia: bool | None = Field(None, description="Dysphagia or oesophageal dysmotility.")
    interstitial_lung_disease: bool | None = None
    cardiac: bool | None = Field(None, description="Cardiac involvement of any kind.")
    skin: Skin = Field(default_factory=Skin)


class Exposures(Model):
    """Statin exposure, from medicines or food (red yeast rice, mushrooms, Pu-erh tea)."""

    statin: bool | None = None
    statin_name: str | None = None
    red_yeast_rice: bool | None = None
    mushrooms: bool | None = None
    pu_erh_tea: bool | None = None


class PrecedingInfection(Model):
    """An infection before onset of weakness."""

    present: bool | None = None
    description: str | None = None
    weeks_before_onset: float | None = Field(None, ge=0, le=520)


class Diagnosis(Model):
    """A diagnosis label the child carries, with its code where known."""

    label: str = Field(description="The label as written, e.g. 'limb-girdle muscular dystrophy'.")
    system: CodeSystem | None = Field(None, description="icd10cm or snomedct.")
    code: str | None = Field(None, description="The code in `system`.")
    status: DiagnosisStatus = DiagnosisStatus.active
    date: dt.date | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.system is None) != (self.code is None):
            raise _bad("code" if self.system else "system", self.code or self.system,
                       "system and code together, or neither")
        if self.system is not None and self.code is not None:
            if self.system not in (CodeSystem.icd10cm, CodeSystem.snomedct):
                raise _bad("system", self.system.value,
                           "a diagnosis code system: icd10cm or snomedct")
            if not is_valid(self.system, self.code):
                raise _bad("code", self.code, EXPECTED[self.system])
        return self


class Treatment(Model):
    """A treatment given: drug, dose, route and dates."""

    drug: Annotated[Drug, BeforeValidator(lambda v: parse_drug(v) if isinstance(v, str) else v)]
    name: str | None = Field(None, description="Required when drug is 'other'.")
    dose: DoseIn | None = None
    route: Literal["oral", "iv", "sc", "im"] | None = None
    frequency: str | None = Field(None, description="e.g. 'daily', 'weekly', 'monthly'.")
    start: dt.date | None = None
    end: dt.date | None = None
    administrations: int | None = Field(
        None, ge=1, le=1000,
        description="How many doses this entry stands for (e.g. 3 cyclophosphamide pulses); "
        "needed for cumulative totals, never assumed.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.drug is Drug.other and not self.name:
            raise _bad("name", None, "a name for a drug given as 'other'")
        if self.start and self.end and self.end < self.start:
            raise _bad("end", self.end.isoformat(), "an end date on or after the start date")
        return self


class Onset(Model):
    """First symptoms. The pattern is derived from ``date`` and ``presentation_date`` when
    both are given, and must then agree with ``pattern`` if that is given too."""

    date: dt.date | None = Field(None, description="Date of the first related symptom.")
    age_years: float | None = Field(None, ge=0, le=MAX_AGE_YEARS, description="Age at onset.")
    presentation_date: dt.date | None = Field(
        None, description="Date the child presented with the developed weakness."
    )
    pattern: Annotated[OnsetPattern | None, BeforeValidator(_pattern)] = Field(
        None, description="acute, subacute, chronic (Table 1's 'slow') or insidious.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.date and self.presentation_date and self.presentation_date < self.date:
            raise _bad("presentation_date", self.presentation_date.isoformat(),
                       "a date on or after the onset date")
        derived = self.derived_pattern()
        if derived is not None and self.pattern is not None and derived is not self.pattern:
            raise _bad("pattern", self.pattern.value,
                       f"a pattern that agrees with the dates, which give {derived.value} "
                       f"({self.months_to_presentation():.1f} months)")
        return self

    def months_to_presentation(self) -> float | None:
        """Months from first symptom to presentation, when both dates are known."""
        if self.date is None or self.presentation_date is None:
            return None
        return (self.presentation_date - self.date).days / DAYS_PER_MONTH

    def derived_pattern(self) -> OnsetPattern | None:
        """Pattern from the dates, by the bands of the review's Table 1 footnote
        (knowledge file ``onset_patterns.toml``)."""
        months = self.months_to_presentation()
        if months is None:
            return None
        for band in load_knowledge().onset_bands:
            if band.contains(months):
                return OnsetPattern(band.id)
        return None

    def effective_pattern(self) -> OnsetPattern | None:
        """The pattern from dates if known, else as stated."""
        return self.derived_pattern() or self.pattern


# Instrument ranges: the scale definitions cited in response.toml (not clinical thresholds).
_SCALES = load_knowledge().scales
MMT8_MAX, CMAS_MAX, CHAQ_MAX, VAS_MAX, MRS_MAX = (
    _SCALES[name].max for name in ("mmt8", "cmas", "chaq", "vas", "mrs"))


class Visit(Model):
    """One visit of the course: enzymes, strength, function and global activity."""

    date: dt.date = Field(description="Visit date.")
    ck: EnzymeResult | None = Field(None, description="CK at this visit.")
    mmt8: float | None = Field(None, ge=0, le=MMT8_MAX, description="MMT-8 total, 0-80.")
    cmas: float | None = Field(None, ge=0, le=CMAS_MAX, description="CMAS total, 0-52.")
    mrc_proximal: MRC | None = Field(None, description="Worst proximal MRC grade, 0-5.")
    mrs: int | None = Field(None, ge=0, le=MRS_MAX, description="Modified Rankin Scale, 0-6.")
    chaq: float | None = Field(None, ge=0, le=CHAQ_MAX, description="CHAQ disability, 0-3.")
    physician_global: float | None = Field(None, ge=0, le=VAS_MAX, description="VAS 0-10.")
    patient_global: float | None = Field(None, ge=0, le=VAS_MAX, description="VAS 0-10.")
    extramuscular_global: float | None = Field(None, ge=0, le=VAS_MAX, description="VAS 0-10.")
    note: str | None = Field(None, description="Free text; never logged.")


_RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Patient(Model):
    """What is known about one child. Only ``id`` is required; every other field may be
    left out, and what is left out is reported as missing, never assumed."""

    schema_version: Literal[1] = Field(1, description="Version of this file format.")
    id: str = Field(
        description="Record identifier (letters, digits, . _ -; no names). The only patient "
        "detail imnm ever writes into messages."
    )
    as_of: dt.date | None = Field(
        None, description="Date the facts describe (default: today). Ages are computed at it."
    )
    sex: Annotated[Sex, BeforeValidator(_sex)] = Field(
        Sex.unknown, description="female, male, other or unknown (F and M accepted).")
    birth_date: dt.date | None = None
    age_years: float | None = Field(None, ge=0, description="Age at `as_of`, if no birth date.")
    weight: WeightIn | None = Field(None, description="e.g. {'value': 31, 'unit': 'kg'}.")
    height: HeightIn | None = Field(None, description="e.g. {'value': 138, 'unit': 'cm'}.")
    onset: Onset = Field(default_factory=Onset)
    weakness: Weakness = Field(default_factory=Weakness)
    ck: Annotated[list[EnzymeResult], BeforeValidator(_ck_list)] = Field(
        default_factory=list,
        description="Creatine kinase results (a plain number is taken as U/L).")
    other_enzymes: list[OtherEnzyme] = Field(default_factory=list)
    antibodies: Annotated[dict[Antibody, AntibodyResult], BeforeValidator(_antibody_map)] = (
        Field(
            default_factory=dict,
            description="Keyed by antibody (e.g. 'HMGCR', 'anti-SRP', 'Mi-2'); a value is a "
            "status string or an object. An antibody left out is 'not reported'.",
        )
    )
    biopsy: Biopsy | None = None
    mri: MuscleMRI | None = None
    family_history: FamilyHistory = Field(default_factory=FamilyHistory)
    genetic_testing: GeneticTesting = Field(default_factory=GeneticTesting)
    extramuscular: Extramuscular = Field(default_factory=Extramuscular)
    exposures: Exposures = Field(default_factory=Exposures)
    preceding_infection: PrecedingInfection = Field(default_factory=PrecedingInfection)
    diagnoses: Annotated[list[Diagnosis], BeforeValidator(_diagnosis_list)] = Field(
        default_factory=list, description="Diagnosis labels (objects, or plain label text).")
    treatments: list[Treatment] = Field(default_factory=list)
    visits: list[Visit] = Field(default_factory=list, description="The course, visit by visit.")
    notes: str | None = Field(None, description="Free text; never logged or echoed in errors.")

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _RECORD_ID.match(value):
            raise ValueError("a record id of 1-64 letters, digits, '.', '_' or '-' (no names)")
        return value

    @model_validator(mode="after")
    def _check_body_size(self) -> Self:
        if self.weight is not None and self.height is not None:
            bmi = self.weight.kg / (self.height.cm / 100) ** 2
            if not MIN_BMI <= bmi <= MAX_BMI:
                raise _bad("weight", f"{self.weight.value:g} {self.weight.unit} at "
                           f"{self.height.value:g} {self.height.unit}",
                           f"a weight for height (BMI {bmi:.0f} kg/m²) from {MIN_BMI:g} to "
                           f"{MAX_BMI:g} kg/m² (input_min_bmi, input_max_bmi): check the "
                           "units of weight and height")
        return self

    @model_validator(mode="after")
    def _check_dates(self) -> Self:
        today = self.reference_date()
        if self.as_of is not None and self.as_of > dt.date.today():
            raise _bad("as_of", self.as_of.isoformat(), "a date not in the future")
        if self.birth_date is not None and self.birth_date > today:
            raise _bad("birth_date", self.birth_date.isoformat(), "a date on or before as_of")
        age = self.age_at(today)
        if age is not None and age > MAX_AGE_YEARS:
            field = "birth_date" if self.birth_date else "age_years"
            shown = self.birth_date.isoformat() if self.birth_date else self.age_years
            raise _bad(field, shown, f"an age of at most {MAX_AGE_YEARS:g} years at as_of "
                       "(imnm is for childhood-onset disease)")
        for name, value in self._dated_facts():
            if value > today:
                raise _bad(name, value.isoformat(),
                           f"a date on or before as_of ({today.isoformat()})")
            if self.birth_date is not None and value < self.birth_date:
                raise _bad(name, value.isoformat(), "a date on or after birth_date")
        onset_age = self.onset_age_years()
        if onset_age is not None and age is not None and onset_age > age + 1 / 12:
            raise _bad("onset.age_years", round(onset_age, 1),
                       "an age at onset not above the current age")
        return self

    def _dated_facts(self) -> list[tuple[str, dt.date]]:
        facts: list[tuple[str, dt.date]] = []
        if self.onset.date:
            facts.append(("onset.date", self.onset.date))
        if self.onset.presentation_date:
            facts.append(("onset.presentation_date", self.onset.presentation_date))
        facts += [(f"ck[{i}].date", r.date) for i, r in enumerate(self.ck) if r.date]
        facts += [(f"treatments[{i}].start", t.start) for i, t in enumerate(self.treatments)
                  if t.start]
        if self.biopsy and self.biopsy.date:
            facts.append(("biopsy.date", self.biopsy.date))
        facts += [(f"visits[{i}].date", v.date) for i, v in enumerate(self.visits)]
        return facts

    # ------------------------------------------------------------------ derived facts

    def reference_date(self) -> dt.date:
        """``as_of``, or today when the file does not say."""
        return self.as_of or dt.date.today()

    def age_at(self, when: dt.date) -> float | None:
        """Age in years at ``when``: from birth date, else ``age_years`` at ``as_of``."""
        if self.birth_date is not None:
            return (when - self.birth_date).days / DAYS_PER_YEAR
        if self.age_years is not None:
            return self.age_years - (self.reference_date() - when).days / DAYS_PER_YEAR
        return None

    def age_years_now(self) -> float | None:
        """Age in years at the reference date."""
        return self.age_at(self.reference_date())

    def onset_age_years(self) -> float | None:
        """Age at first symptom: stated, or from onset date and birth date."""
        if self.onset.age_years is not None:
            return self.onset.age_years
        if self.onset.date is not None:
            return self.age_at(self.onset.date)
        return None

    def antibody(self, which: Antibody) -> AntibodyStatus | None:
        """The result for ``which``: positive/negative/not_tested, or None if not reported."""
        result = self.antibodies.get(which)
        return None if result is None else result.status

    def active_diagnoses(self) -> list[Diagnosis]:
        """Diagnosis labels currently held."""
        return [d for d in self.diagnoses if d.status is DiagnosisStatus.active]
