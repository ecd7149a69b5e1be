"""The patient model: units, derived facts, three-valued answers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imnm.errors import InputError
from imnm.patient import Antibody, AntibodyStatus, Drug, OnsetPattern, load_patient
from imnm.testing import a_child


def test_ck_in_microkatal_is_60_units_per_microkatal() -> None:
    p = a_child().with_ck(150, "µkat/L", upper_limit=3.2).build()
    assert p.ck[0].u_per_l == pytest.approx(9000)
    assert p.ck[0].upper_limit_u_per_l == pytest.approx(192)
    assert load_patient({"id": "a", "ck": [{"value": 2, "unit": "ukat/L"}]}).ck[0].u_per_l \
        == pytest.approx(120)


def test_iu_per_litre_equals_units_per_litre() -> None:
    p = a_child().with_ck(3100, "IU/L").build()
    assert p.ck[0].u_per_l == pytest.approx(3100)


def test_weight_and_height_conversions() -> None:
    p = a_child().with_(weight="62 lb", height={"value": 52, "unit": "in"}).build()
    assert p.weight is not None and p.height is not None
    assert p.weight.kg == pytest.approx(28.1227, abs=1e-3)  # 62 x 0.45359237
    assert p.height.cm == pytest.approx(132.08)  # 52 x 2.54


@pytest.mark.parametrize(("presented", "pattern"), [
    ("2023-01-20", OnsetPattern.acute),      # 0.6 months
    ("2023-02-01", OnsetPattern.subacute),   # 31 days = 1.02 months: not < 1 month
    ("2023-03-15", OnsetPattern.subacute),   # 2.4 months
    ("2023-05-15", OnsetPattern.chronic),    # 4.4 months
    ("2023-09-01", OnsetPattern.insidious),  # 8 months
])
def test_onset_pattern_from_dates(presented: str, pattern: OnsetPattern) -> None:
    p = a_child(as_of="2024-01-01").with_(
        onset={"date": "2023-01-01", "presentation_date": presented}).build()
    assert p.onset.effective_pattern() is pattern


def test_onset_band_boundaries() -> None:
    from imnm.knowledge import load_knowledge

    bands = {b.id: b for b in load_knowledge().onset_bands}
    assert not bands["acute"].contains(1.0) and bands["subacute"].contains(1.0)
    assert bands["subacute"].contains(3.0) and not bands["chronic"].contains(3.0)
    assert bands["chronic"].contains(6.0) and not bands["insidious"].contains(6.0)
    assert bands["insidious"].contains(6.01)


def test_stated_pattern_used_without_dates() -> None:
    p = a_child().with_(onset={"pattern": "insidious"}).build()
    assert p.onset.effective_pattern() is OnsetPattern.insidious
    assert p.onset.derived_pattern() is None


def test_unknown_is_not_negative() -> None:
    p = a_child().with_antibody("HMGCR", "not_tested").build()
    assert p.antibody(Antibody.HMGCR) is AntibodyStatus.not_tested
    assert p.antibody(Antibody.SRP) is None  # not reported
    assert p.weakness.has_proximal_weakness() is None
    assert p.extramuscular.dysphagia is None


def test_weakness_from_grades() -> None:
    w = a_child().with_weakness(proximal_upper=5, proximal_lower=5).build().weakness
    assert w.has_proximal_weakness() is False
    w = a_child().with_weakness(proximal_upper=5).build().weakness
    assert w.has_proximal_weakness() is None  # lower limbs not examined
    w = a_child().with_weakness(neck_flexors=3, neck_extensors=4, proximal_lower=3,
                                distal_lower=5).build().weakness
    assert w.neck_flexor_predominance() is True
    assert w.legs_proximal_predominance() is True


def test_antibody_and_drug_aliases() -> None:
    p = load_patient({"id": "x", "antibodies": {"anti-HMGCR": "positive", "Mi-2α": "negative",
                                                  "anti-tif1γ": "negative"},
                      "treatments": [{"drug": "MTX"}, {"drug": "IVIg"}, {"drug": "MMF"}]})
    assert set(p.antibodies) == {Antibody.HMGCR, Antibody.MI2, Antibody.TIF1G}
    assert [t.drug for t in p.treatments] == [Drug.methotrexate, Drug.ivig,
                                              Drug.mycophenolate_mofetil]


def test_age_from_birth_date_and_onset_age_from_dates() -> None:
    p = a_child(age_years=None, as_of="2025-06-01").with_(
        birth_date="2015-06-01", onset={"date": "2020-06-01"}).build()
    assert p.age_years_now() == pytest.approx(10.0, abs=0.01)
    assert p.onset_age_years() == pytest.approx(5.0, abs=0.01)


def test_patient_is_frozen() -> None:
    from pydantic import ValidationError

    p = a_child().build()
    with pytest.raises(ValidationError):
        p.id = "other"  # type: ignore[misc]


def test_schema_command_prints_documented_json_schema() -> None:
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "schema"], capture_output=True,
                         text=True, check=True)
    schema = json.loads(run.stdout)
    assert schema["required"] == ["id"]
    assert schema["additionalProperties"] is False
    assert "Record identifier" in schema["properties"]["id"]["description"]
    defs = schema["$defs"]
    assert "µkat/L" in defs["EnzymeResult"]["properties"]["unit"]["description"]
    assert set(defs["Biopsy"]["properties"]) >= {"necrosis", "mac", "p62", "mxa", "mhc_ii"}


def test_common_spellings_of_results_and_sex() -> None:
    p = load_patient({"id": "x", "sex": "F", "antibodies": {
        "anti-HMGCR": "pos", "SRP": "-", "Jo-1": False, "Mi-2": "not done",
        "MDA5": {"status": "Negative", "method": "elisa"}}})
    assert p.sex.value == "female"
    assert [p.antibodies[a].status.value for a in (Antibody.HMGCR, Antibody.SRP, Antibody.JO1,
                                                   Antibody.MI2, Antibody.MDA5)] == [
        "positive", "negative", "negative", "not_tested", "negative"]
    assert load_patient({"id": "y", "sex": "boy"}).sex.value == "male"


def test_plain_numbers_and_labels_are_accepted() -> None:
    p = load_patient({"id": "x", "ck": 7842, "diagnoses": ["muscular dystrophy"]})
    assert p.ck[0].u_per_l == 7842 and p.ck[0].unit == "U/L"
    assert p.diagnoses[0].label == "muscular dystrophy"
    assert load_patient({"id": "y", "ck": [900, {"value": 2, "unit": "ukat/L"}]}
                        ).ck[1].u_per_l == pytest.approx(120)


def test_table_1_slow_onset_reads_as_chronic() -> None:
    assert load_patient({"id": "x", "onset": {"pattern": "Slow"}}).onset.pattern \
        is OnsetPattern.chronic


@pytest.mark.parametrize(("data", "field", "expected"), [
    ({"age_years": True}, "age_years", "a number, not true/false"),
    ({"age_years": float("nan")}, "age_years", "a finite number"),
    ({"weight": {"value": 30000, "unit": "mg"}}, "weight.unit", "one of kg, g, lb"),
    ({"weight": {"value": True, "unit": "kg"}}, "weight.value", "not true/false"),
    ({"treatments": [{"drug": "methotrexate", "dose": {"value": float("nan"), "unit": "mg"}}]},
     "treatments.0.dose.value", "a finite number"),
    ({"ck": [{"value": float("inf"), "unit": "U/L"}]}, "ck.0.value", "a finite number"),
])
def test_bad_numbers_are_refused_with_the_field(data: dict[str, object], field: str,
                                                expected: str) -> None:
    with pytest.raises(InputError) as caught:
        load_patient({"id": "probe"} | data)
    problem = caught.value.problems[0]
    assert problem.field == field and expected in problem.expected


def test_every_true_false_in_a_number_field_of_one_object_is_named() -> None:
    with pytest.raises(InputError) as caught:
        load_patient({"id": "probe", "ck": [{"value": True, "unit": "U/L", "upper_limit": False}],
                      "weakness": {"neck_flexors": True, "proximal_upper": 4}})
    named = {p.field: p.expected for p in caught.value.problems}
    assert set(named) == {"ck.0.value", "ck.0.upper_limit", "weakness.neck_flexors"}
    assert all(e == "a number, not true/false" for e in named.values())
    # Any mapping, not only a dict (the Python API accepts mappings).
    from types import MappingProxyType

    from pydantic import ValidationError

    from imnm.patient.model import Patient
    with pytest.raises(ValidationError, match="a number, not true/false"):
        Patient.model_validate(MappingProxyType({"id": "probe", "age_years": True}))


@pytest.mark.parametrize(("data", "field", "expected"), [
    ({"weight": {"value": 0.3, "unit": "kg"}}, "weight.value", "from 0.5 to 300 kg"),
    ({"weight": {"value": 300, "unit": "kg"}, "height": {"value": 30, "unit": "cm"}},
     "weight", "a weight for height"),
    ({"weight": {"value": 3, "unit": "kg"}, "height": {"value": 150, "unit": "cm"}},
     "weight", "check the units of weight and height"),
])
def test_implausible_body_sizes_are_refused_with_the_range(data: dict[str, object],
                                                           field: str, expected: str) -> None:
    # Issue 11 item 9: 0.3 kg printed "0 mg per week"; 300 kg at 30 cm was dosed.
    with pytest.raises(InputError) as caught:
        load_patient({"id": "probe"} | data)
    problem = caught.value.problems[0]
    assert problem.field == field and expected in problem.expected


def test_plausibility_limits_are_heuristic_knowledge_entries() -> None:
    from imnm.knowledge import load_knowledge
    from imnm.patient import limits

    parameters = load_knowledge().parameters
    for name in ("input_max_age_years", "input_min_weight_kg", "input_max_weight_kg",
                 "input_min_bmi", "input_max_bmi", "input_max_ck_u_per_l"):
        assert parameters[name].status.value == "heuristic" and parameters[name].why
    assert limits.MAX_WEIGHT_KG == parameters["input_max_weight_kg"].value
