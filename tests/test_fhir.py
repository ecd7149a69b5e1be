"""FHIR R4 Bundles in and out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from imnm import InputError, load_patient
from imnm.fhir import from_bundle, to_bundle
from tests.conftest import EXAMPLES

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_round_trip_keeps_every_field_but_the_free_text_notes(path: Path) -> None:
    patient = load_patient(path.read_text(encoding="utf-8"))
    bundle = json.loads(json.dumps(to_bundle(patient)))
    again, report = from_bundle(bundle)
    assert again.model_dump(exclude={"notes"}) == patient.model_dump(exclude={"notes"})
    assert again.notes is None
    assert report.ignored == []


def test_bundle_uses_standard_codes() -> None:
    patient = load_patient((EXAMPLES / "anti-hmgcr-units-and-food.json").read_text("utf-8"))
    resources = [e["resource"] for e in to_bundle(patient)["entry"]]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    ck = next(o for o in observations if o["code"]["coding"][0]["code"] == "2157-6")
    assert ck["valueQuantity"] == {"value": 150.0, "unit": "µkat/L",
                                   "system": "http://unitsofmeasure.org", "code": "ukat/L"}
    assert ck["category"][0]["coding"][0]["code"] == "laboratory"
    # 93493-5 is a units-scale test: the laboratory's reading as an interpretation code, never
    # a coded Positive/Negative value.
    hmgcr = next(o for o in observations if o["code"]["coding"][0]["code"] == "93493-5")
    assert "valueCodeableConcept" not in hmgcr
    assert hmgcr["interpretation"][0]["coding"][0]["code"] == "POS"
    assert hmgcr["category"][0]["coding"][0]["code"] == "laboratory"
    weight = next(o for o in observations if o["code"]["coding"][0]["code"] == "29463-7")
    assert weight["valueQuantity"]["code"] == "[lb_av]"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_reference_resolves_to_a_full_url_in_the_bundle(path: Path) -> None:
    bundle = to_bundle(load_patient(path.read_text(encoding="utf-8")))
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    references = [v for e in bundle["entry"] for v in _references(e["resource"])]
    assert references and all(r in full_urls for r in references)


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["reference"])] if "reference" in node else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def test_medication_uses_rxnorm() -> None:
    patient = load_patient((EXAMPLES / "case-series-2025-patient-1-course.json").read_text())
    meds = [e["resource"] for e in to_bundle(patient)["entry"]
            if e["resource"]["resourceType"] == "MedicationStatement"]
    codes = {m["medicationCodeableConcept"]["coding"][0]["code"] for m in meds}
    assert codes == {"8638", "68149", "121191"}  # prednisolone, MMF, rituximab


def ehr_bundle() -> dict[str, object]:
    # Shaped like an EHR's export: SNOMED and ICD codes, an unknown lab, a statin order.
    return {"resourceType": "Bundle", "type": "collection", "timestamp": "2025-03-01T10:00:00Z",
            "entry": [
                {"resource": {"resourceType": "Patient", "id": "p1", "gender": "male",
                              "birthDate": "2014-02-01"}},
                {"resource": {"resourceType": "Condition", "id": "c1",
                              "subject": {"reference": "Patient/p1"},
                              "code": {"coding": [{"system": "http://snomed.info/sct",
                                                   "code": "73297009",
                                                   "display": "Muscular dystrophy"}]}}},
                {"resource": {"resourceType": "Condition", "id": "c2",
                              "subject": {"reference": "Patient/p1"},
                              "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                   "code": "J45.909"}]}}},
                {"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                              "subject": {"reference": "Patient/p1"},
                              "effectiveDateTime": "2025-02-20T08:00:00Z",
                              "code": {"coding": [{"system": "http://loinc.org",
                                                   "code": "2157-6"}]},
                              "valueQuantity": {"value": 8800, "unit": "U/L",
                                                "system": "http://unitsofmeasure.org",
                                                "code": "U/L"},
                              "referenceRange": [{"high": {"value": 499}}]}},
                {"resource": {"resourceType": "Observation", "id": "o2", "status": "final",
                              "subject": {"reference": "Patient/p1"},
                              "code": {"coding": [{"system": "http://loinc.org",
                                                   "code": "718-7"}]},
                              "valueQuantity": {"value": 13.1, "unit": "g/dL"}}},
                {"resource": {"resourceType": "Observation", "id": "o3", "status": "final",
                              "subject": {"reference": "Patient/p1"},
                              "code": {"text": "Mi-2 antibody"},
                              "valueCodeableConcept": {"text": "Negative"}}},
                {"resource": {"resourceType": "MedicationRequest", "id": "m1",
                              "status": "active", "intent": "order",
                              "subject": {"reference": "Patient/p1"},
                              "authoredOn": "2024-06-01",
                              "medicationCodeableConcept": {"coding": [{
                                  "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                  "code": "36567"}]}}},
                {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished",
                              "class": {"code": "AMB"}}},
            ]}


def test_unknown_codes_are_reported_not_dropped_in_silence() -> None:
    patient, report = from_bundle(ehr_bundle())
    assert [d.code for d in patient.diagnoses] == ["73297009", "J45.909"]
    assert patient.ck[0].u_per_l == 8800 and patient.ck[0].upper_limit == 499
    assert patient.antibody(patient.antibodies.__iter__().__next__()).value == "negative"
    assert patient.exposures.statin is True
    joined = "\n".join(report.unrecognised_codes + report.ignored)
    assert "J45.909 is in no imnm code set" in joined
    assert "http://loinc.org|718-7 is not used" in joined
    assert "Encounter/e1: resource type not used" in joined
    assert "statin" in joined


def test_invalid_bundle_is_bad_input() -> None:
    bad = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1"}},
        {"resource": {"resourceType": "Observation", "id": "o1"}}]}  # no status, no code
    with pytest.raises(InputError) as caught:
        from_bundle(bad)
    assert caught.value.problems[0].field.startswith("bundle.entry")
    robot = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "robot"}}]}
    with pytest.raises(InputError) as caught:
        from_bundle(robot)
    assert caught.value.problems[0].field == "sex"  # the patient model's check
    none = {"resourceType": "Bundle", "type": "collection", "entry": []}
    with pytest.raises(InputError, match="exactly one Patient"):
        from_bundle(none)


def test_assess_command_accepts_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(ehr_bundle()), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "assess", str(path), "-f", "json"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["patient_id"] == "p1" and doc["as_of"] == "2025-03-01"
    assert "note: Observation/o2" in run.stderr


def test_ck_units_as_ehrs_send_them() -> None:
    def bundle_with(quantity: dict[str, object]) -> dict[str, object]:
        return {"resourceType": "Bundle", "type": "collection",
                "timestamp": "2025-03-01T10:00:00Z", "entry": [
                    {"resource": {"resourceType": "Patient", "id": "p1", "gender": "male",
                                  "birthDate": "2014-02-01"}},
                    {"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                                  "subject": {"reference": "Patient/p1"},
                                  "code": {"coding": [{"system": "http://loinc.org",
                                                       "code": "2157-6"}]},
                                  "valueQuantity": quantity}}]}

    # Athena's UCUM spelling of the international unit, as a UCUM code without unit text.
    patient, _ = from_bundle(bundle_with({"value": 9800, "system": "http://unitsofmeasure.org",
                                          "code": "[iU]/L"}))
    assert (patient.ck[0].value, patient.ck[0].unit) == (9800, "IU/L")
    # A CK in a unit that is not one of activity is set aside and said, never assumed U/L,
    # and the rest of the child is still assessed.
    patient, report = from_bundle(bundle_with({"value": 12000, "unit": "mg/dL"}))
    assert patient.ck == []
    assert any("'mg/dL', not a unit of activity" in line for line in report.ignored)
    patient, report = from_bundle(bundle_with({"value": 12000}))
    assert patient.ck == [] and any("None, not a unit" in line for line in report.ignored)


# ---------------------------------------------------------------- issue 14: only what is read

def _json_values() -> Any:
    from hypothesis import strategies as st

    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | \
        st.text(max_size=12)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(
                            ["coding", "text", "system", "code", "value", "unit", "high",
                             "display", "start", "end", "doseQuantity"]), inner, max_size=3),
                        max_leaves=8)


def _read_paths() -> list[tuple[str, tuple[str, ...]]]:
    from imnm.fhir.shapes import READ

    paths: list[tuple[str, tuple[str, ...]]] = []

    def walk(kind: str, shape: Any, path: tuple[str, ...]) -> None:
        if isinstance(shape, dict):
            for key, inner in shape.items():
                paths.append((kind, (*path, key)))
                walk(kind, inner, (*path, key))
        elif isinstance(shape, list):
            walk(kind, shape[0], (*path, "0"))

    for kind, shape in READ.items():
        walk(kind, shape, ())
    return paths


def test_the_light_check_turns_any_value_in_a_read_field_into_a_clear_error() -> None:
    """Whatever JSON sits in a field imnm reads, from_bundle(validate="read") answers with a
    patient or an InputError naming the field, never another exception (the hook's 500)."""
    import copy

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from imnm.errors import InputError
    from imnm.fhir import from_bundle, to_bundle

    base = to_bundle(load_patient((EXAMPLES / "case-series-2025-patient-1-course.json")
                                  .read_text(encoding="utf-8")))
    base["entry"].append({"resource": {
        "resourceType": "MedicationRequest", "id": "m9", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/x"},
        "medicationCodeableConcept": {"text": "methotrexate"},
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 15, "unit": "mg"}}]}]}})
    base["entry"] += [{"resource": {"resourceType": kind, "id": f"x{i}"}}
                      for i, kind in enumerate(("FamilyMemberHistory", "Procedure",
                                                "DiagnosticReport", "Condition",
                                                "MedicationStatement",
                                                "MedicationAdministration"))]
    paths = _read_paths()

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(which=st.integers(0, len(paths) - 1), value=_json_values())
    def check(which: int, value: Any) -> None:
        kind, path = paths[which]
        bundle = copy.deepcopy(base)
        targets = [e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == kind]
        node: Any = targets[0]
        for key in path[:-1]:
            if key == "0":
                if not isinstance(node, list) or not node:
                    return
                node = node[0]
            else:
                node = node.setdefault(key, [{}] if key in (
                    "coding", "interpretation", "referenceRange", "performer", "component",
                    "tag", "dosage", "dosageInstruction", "doseAndRate", "extension",
                    "identifier", "condition", "note", "conclusionCode") else {})
            if not isinstance(node, dict | list):
                return
        if isinstance(node, dict):
            node[path[-1]] = value
        try:
            from_bundle(bundle, validate="read")
        except InputError:
            pass

    check()


def _placed(path: tuple[str, ...], value: Any) -> Any:
    """``value`` at ``path`` ("0" an array's item), the levels above it sound."""
    for key in reversed(path):
        value = [value] if key == "0" else {key: value}
    return value


# Values that sit on the edges of the leaf checks: each JSON type, bool against number, big
# and not-a-number floats, dates with Unicode digits or a trailing newline, nulls in arrays.
_EDGES: list[Any] = [
    "x", "", 5, 0, -0.0, 5.5, float("nan"), float("inf"), 10**30, True, False, None, [], {},
    ["x"], [None], [{}], [[]], {"a": 1}, {"coding": None}, "2015", "2015-01", "2015-01-01",
    "2015-01-01T10:00", "2015-01-01T10:00:00.25+01:00", "2015-01-01\n", "2015-1-01",
    "\u0662\u0660\u0661\u0665", "2015-01-01T25:00Z"]


def test_the_rust_shape_check_and_the_python_one_agree_on_every_value() -> None:
    """The light check first asks pydantic-core (in Rust) whether a resource is sound and only
    then, when it is not, the Python checkers, which name each problem: the two must give the
    same verdict, or a resource the Python checks refuse could pass unchecked."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from imnm.fhir import shapes

    def slow(kind: str, resource: dict[str, Any], part: str = "") -> bool:
        problems: list[Any] = []
        checkers = {"": shapes._CHECKS, "keys": shapes._KEYS, "rest": shapes._REST}[part]
        checkers[kind](resource, (None, "r"), problems)
        return not problems

    def agree(kind: str, resource: dict[str, Any]) -> None:
        assert shapes._SOUND[kind](resource) == slow(kind, resource), (kind, resource)
        if kind in shapes.KEY_FIELDS:
            for part, sound in (("keys", shapes._SOUND_KEYS), ("rest", shapes._SOUND_REST)):
                assert sound[kind](resource) == slow(kind, resource, part), (part, resource)

    paths = _read_paths()
    checked = 0
    for kind, path in paths:
        for value in _EDGES:
            agree(kind, {"resourceType": kind} | _placed(path, value))
            checked += 1
    assert checked > 3000
    for example in sorted(EXAMPLES.glob("*.json")):
        bundle = to_bundle(load_patient(example.read_text(encoding="utf-8")))
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] in shapes.READ:
                agree(entry["resource"]["resourceType"], entry["resource"])

    @settings(max_examples=400, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(which=st.integers(0, len(paths) - 1), value=_json_values())
    def any_value(which: int, value: Any) -> None:
        kind, path = paths[which]
        agree(kind, {"resourceType": kind} | _placed(path, value))

    any_value()


def _bundle_and_observations(example: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An example child as a Bundle, and its Observations (to change in place)."""
    from imnm.fhir import to_bundle

    bundle = to_bundle(load_patient((EXAMPLES / f"{example}.json").read_text(encoding="utf-8")))
    return bundle, [e["resource"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Observation"]


def test_the_light_check_names_the_whole_path_of_a_wrong_field() -> None:
    from imnm.errors import InputError
    from imnm.fhir import from_bundle

    bundle, observations = _bundle_and_observations("case-series-2025-patient-1")
    observations[0]["valueQuantity"]["value"] = "high"
    observations[1]["code"]["coding"][0]["code"] = 5
    with pytest.raises(InputError) as caught:
        from_bundle(bundle, validate="read")
    assert [(p.field, p.value, p.expected) for p in caught.value.problems] == [
        ("bundle.resource 1 (Observation).valueQuantity.value", "'high'", "a number"),
        ("bundle.resource 3 (Observation).code.coding.0.code", "5", "a string")]


def test_the_light_check_says_array_object_and_null_where_they_are_wrong() -> None:
    from imnm.errors import InputError
    from imnm.fhir import from_bundle

    bundle, observations = _bundle_and_observations("case-series-2025-patient-1")
    observations[0]["code"]["coding"] = "LOINC 2157-6"
    observations[1]["code"]["coding"] = [None]
    observations[2]["code"] = ["CK"]
    observations[3]["effectiveDateTime"] = "yesterday"
    observations[4]["valueQuantity"] = None  # null is absent, as the readers take it
    with pytest.raises(InputError) as caught:
        from_bundle(bundle, validate="read")
    assert [(p.field.split(" ", 2)[2], p.expected) for p in caught.value.problems] == [
        ("(Observation).code.coding", "a JSON array"),
        ("(Observation).code.coding.0", "not null"),
        ("(Observation).code", "a JSON object"),
        ("(Observation).effectiveDateTime",
         "a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD[Thh:mm:ss])")]


def test_an_antibody_is_read_from_its_words_and_other_results_are_counted() -> None:
    # Every result without a code imnm knows is tried as an antibody by its words; the many
    # that are not one (a haemoglobin) are named as unused, without an error built for each.
    from imnm.fhir import from_bundle
    from imnm.vocabulary import Antibody, antibody_named

    assert antibody_named("anti-HMG-CoA reductase") is Antibody.HMGCR
    assert antibody_named("Hemoglobin") is None
    bundle, _ = _bundle_and_observations("lgmd-label-never-tested")
    bundle["entry"] += [{"resource": {
        "resourceType": "Observation", "id": "srp-by-words", "status": "final",
        "code": {"text": "Anti-SRP antibody"}, "valueString": "positive"}}] + [
        {"resource": {"resourceType": "Observation", "id": f"hb{i}", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "718-7",
                                           "display": "Hemoglobin"}]},
                      "valueQuantity": {"value": 12.5, "unit": "g/dL"}}} for i in range(3)]
    patient, report = from_bundle(bundle, validate="read")
    assert patient.antibodies[Antibody.SRP].status.value == "positive"
    assert [c for c in report.unrecognised_codes if "718-7" in c] == [
        f"Observation/hb{i}: Observation http://loinc.org|718-7 is not used by imnm"
        for i in range(3)]


def _haemoglobin(i: int, **fields: Any) -> dict[str, Any]:
    return {"resource": {"resourceType": "Observation", "id": f"hb{i}", "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": "718-7",
                                              "display": "Hemoglobin"}]},
                         "valueQuantity": {"value": 12.5, "unit": "g/dL"}} | fields}


def test_of_a_result_imnm_does_not_use_only_status_and_code_are_checked() -> None:
    # A real record sends hundreds of results imnm does not use; their other fields are not
    # read, so a wrong one there does not refuse the child. The same fields on a result imnm
    # uses (a CK) still give the clear error, and so do a wrong status or code on any.
    wrong = {"effectiveDateTime": "yesterday", "valueQuantity": "12.5 g/dL",
             "interpretation": "H", "referenceRange": [None]}
    bundle, observations = _bundle_and_observations("lgmd-label-never-tested")
    bundle["entry"].append(_haemoglobin(1, **wrong))
    patient, report = from_bundle(bundle, validate="read")
    assert patient.ck and any(c.startswith("Observation/hb1: Observation http://loinc.org|718-7")
                              for c in report.unrecognised_codes)
    ck = next(o for o in observations if o["code"]["coding"][0]["code"] == "2157-6")
    ck |= wrong
    with pytest.raises(InputError) as caught:
        from_bundle(bundle, validate="read")
    assert sorted(p.field.split(" (Observation).")[1] for p in caught.value.problems) == [
        "effectiveDateTime", "interpretation", "referenceRange.0", "valueQuantity"]
    bundle, _ = _bundle_and_observations("lgmd-label-never-tested")
    bundle["entry"] += [_haemoglobin(2, status=["final"]),
                        _haemoglobin(3, code={"coding": {"code": "718-7"}})]
    with pytest.raises(InputError) as caught:
        from_bundle(bundle, validate="read")
    assert [(p.field.split(" (Observation).")[1], p.expected)
            for p in caught.value.problems] == [("status", "a string"),
                                                ("code.coding", "a JSON array")]


def test_the_light_reading_names_unused_results_as_the_full_reading_does() -> None:
    """The hook's reader names a result the light check judged unused without reading it
    again: what it says must be what reading it in full says, result by result."""
    bundle, _ = _bundle_and_observations("case-series-2025-patient-1-course")
    bundle["entry"] += [
        _haemoglobin(0), _haemoglobin(1, status="cancelled"),
        _haemoglobin(2, status="entered-in-error"),
        _haemoglobin(3, code={"text": "Sodium"}), _haemoglobin(4, code={}),
        _haemoglobin(5, code={"coding": [{"system": "http://loinc.org"},
                                         {"code": "x"}, {"system": "urn:site", "code": "7"}]}),
        {"resource": {k: v for k, v in _haemoglobin(6, code={"text": "Anti-SRP antibody, serum"},
                                                    valueString="negative")["resource"].items()
                      if k != "valueQuantity"}},
        _haemoglobin(7, code={"coding": [{"system": "http://loinc.org", "code": "2951-2"}]})]
    light_patient, light = from_bundle(bundle, validate="read")
    full_patient, full = from_bundle(bundle)
    assert light_patient == full_patient
    assert light.unrecognised_codes == full.unrecognised_codes
    assert light.ignored == full.ignored
    named = "\n".join(light.unrecognised_codes + light.ignored)
    for i in (0, 3, 4, 5, 7):
        assert f"Observation/hb{i}: Observation" in named
    assert "hb1: status cancelled" in named and "hb2: status entered-in-error" in named
    assert "hb6" not in named  # an antibody by its words: read, not named as unused


class _Recording(dict[str, Any]):
    """A resource that remembers which of its fields were read."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def test_a_result_judged_unused_is_read_no_further_than_its_status_and_code() -> None:
    """The light check skips an Observation's other fields when _observation_used says the
    reader will not read them: that judgement must never be wrong that way. Every example's
    results, and results of kinds imnm does not use, by code and by words."""
    from imnm.fhir.common import ImportReport
    from imnm.fhir.read import _observation, _observation_used
    from imnm.fhir.shapes import KEY_FIELDS
    from imnm.knowledge import load_knowledge

    loinc = load_knowledge().loinc_index()
    results = [_haemoglobin(0)["resource"], _haemoglobin(1, status="cancelled")["resource"],
               {"resourceType": "Observation", "status": "final", "code": {"text": "Sodium"},
                "valueQuantity": {"value": 140}},
               {"resourceType": "Observation", "status": "final",
                "code": {"text": "Anti-SRP antibody, serum"}, "valueString": "negative"}]
    for path in sorted(EXAMPLES.glob("*.json")):
        results += _bundle_and_observations(path.stem)[1]
    unused = 0
    for resource in results:
        recording = _Recording(resource)
        _observation(recording, {}, [], {}, loinc, ImportReport(), "Observation/x")
        if not _observation_used(resource, loinc):
            unused += 1
            assert recording.read <= {*KEY_FIELDS["Observation"]}, resource
        else:
            assert recording.read - {*KEY_FIELDS["Observation"]}, resource
    assert unused == 3  # the haemoglobins and the sodium; the antibody by its words is used


def test_an_antibody_is_read_from_words_with_punctuation() -> None:
    from imnm.vocabulary import Antibody

    bundle, _ = _bundle_and_observations("lgmd-label-never-tested")
    bundle["entry"] += [{"resource": {
        "resourceType": "Observation", "id": f"by-words-{i}", "status": "final",
        "code": {"text": text}, "valueString": "positive"}} for i, text in enumerate((
            "Anti-SRP antibody, serum", "HMG-CoA reductase (HMGCR) Ab [IgG]"))]
    patient, _ = from_bundle(bundle, validate="read")
    assert patient.antibodies[Antibody.SRP].status.value == "positive"
    assert Antibody.HMGCR not in patient.antibodies  # "hmgcoareductasehmgcr" names none
