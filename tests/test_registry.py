"""The registry on SQLite and on PostgreSQL (started on loopback by scripts/check):
migrations, audit, roles, de-identification, idempotent imports, and no half-written import
after a failure or a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from imnm import load_patient
from imnm.fhir import to_bundle
from imnm.registry import SCHEMA_HEAD, Account, Forbidden, Registry, migrate
from tests.conftest import EXAMPLES

POSTGRES = os.environ.get("TEST_POSTGRES_URL")


def _postgres_database() -> str:
    if not POSTGRES:
        pytest.fail("TEST_POSTGRES_URL is not set: run the suite with scripts/check, which "
                    "starts PostgreSQL on loopback")
    name = f"imnm_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        yield _postgres_database()


@pytest.fixture
def registry(url: str) -> Iterator[Registry]:
    migrate(url)
    store = Registry(url, secret="test-secret")  # noqa: S106 - test pseudonym key
    yield store
    store.close()


def clinician(registry: Registry) -> Account:
    registry.create_user("dr-who", "correct horse battery", "clinician")
    account = registry.login("dr-who", "correct horse battery")
    assert account is not None
    return account


def example(name: str):  # type: ignore[no-untyped-def]
    return load_patient((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def test_save_read_and_audit(registry: Registry) -> None:
    doctor = clinician(registry)
    patient = example("case-series-2025-patient-1-course")
    registry.save_patient(patient, doctor)
    assert registry.patient(patient.id, doctor) == patient
    assert registry.counts()["visits"] == 5
    changed = patient.model_copy(update={"sex": patient.sex, "notes": "edited"})
    registry.save_patient(changed, doctor)
    trail = registry.audit(patient.id)
    assert [e["action"] for e in trail] == ["create", "visits", "update"]
    assert trail[-1]["what"] == "fields: notes" and trail[-1]["username"] == "dr-who"
    assert "edited" not in str(registry.audit())  # values never in the audit


def test_passwords_and_roles(registry: Registry) -> None:
    doctor = clinician(registry)
    registry.create_user("ana", "research only!", "researcher")
    researcher = registry.login("ana", "research only!")
    assert researcher == Account("ana", "researcher")
    assert registry.login("ana", "wrong password") is None
    patient = example("lgmd-label-never-tested")
    registry.save_patient(patient, doctor)
    with pytest.raises(Forbidden):
        registry.save_patient(patient, researcher)
    seen = registry.patient(patient.id, researcher)
    assert seen.id.startswith("subject-") and seen.id != patient.id
    assert seen.birth_date is None and seen.notes is None
    assert seen.age_years is not None and abs(seen.age_years - 11.7) < 0.1
    assert seen.ck[0].date is not None and seen.ck[0].date.day == 1  # cut to the month
    assessment = registry.record_assessment(patient.id, researcher)
    assert assessment["patient_id"] == seen.id
    assert registry.counts()["assessments"] == 1


def test_reimporting_a_bundle_never_duplicates(registry: Registry) -> None:
    doctor = clinician(registry)
    bundle = to_bundle(example("seronegative-imnm-cardiac"))
    assert registry.import_bundle(bundle, doctor) == ("example-seronegative", True)
    assert registry.import_bundle(bundle, doctor) == ("example-seronegative", False)
    counts = registry.counts()
    assert counts["patients"] == 1 and counts["imports"] == 1


def test_a_failure_mid_import_leaves_nothing_half_written(registry: Registry) -> None:
    doctor = clinician(registry)
    bundle = to_bundle(example("case-series-2025-patient-1-course"))

    def fail() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        registry.import_bundle(bundle, doctor, _between=fail)
    counts = registry.counts()
    assert (counts["patients"], counts["visits"], counts["imports"]) == (0, 0, 0)
    assert registry.import_bundle(bundle, doctor)[1] is True  # the retry works
    assert registry.counts()["visits"] == 5


KILLED_IMPORT = """
import json, sys, time
from imnm.registry import Registry
from imnm.fhir import to_bundle
from imnm import load_patient
registry = Registry(sys.argv[1])
account = registry.login("dr-who", "correct horse battery")
bundle = to_bundle(load_patient(open(sys.argv[2]).read()))
def pause():
    print("writing", flush=True)
    time.sleep(60)
registry.import_bundle(bundle, account, _between=pause)
"""


def test_a_killed_import_leaves_nothing_and_the_retry_works(registry: Registry, url: str
                                                            ) -> None:
    doctor = clinician(registry)
    path = EXAMPLES / "case-series-2025-patient-1-course.json"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, url, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"  # inside the transaction now
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    time.sleep(0.2)
    counts = registry.counts()
    assert (counts["patients"], counts["visits"], counts["imports"]) == (0, 0, 0)
    registry.import_bundle(to_bundle(load_patient(path.read_text())), doctor)
    assert registry.counts()["patients"] == 1


def test_migrations_are_idempotent(url: str) -> None:
    migrate(url)
    migrate(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert version == "0002" == SCHEMA_HEAD  # the newest migration, which imnm checks for


CONCURRENT_VISITS = """
import sys, datetime as dt
from imnm.registry import Registry
from imnm.patient import Visit
registry = Registry(sys.argv[1])
account = registry.login("dr-who", "correct horse battery")
worker = int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
for i in range(10):
    day = dt.date(2024, 1, 1) + dt.timedelta(days=worker * 10 + i)
    registry.add_visit("example-seronegative", Visit(date=day, mmt8=40 + i), account)
"""


def _together(script: str, url: str, args: list[list[str]]) -> None:
    """Start one process per argument list, let them all go at once, and check each ended
    without an error."""
    procs = [subprocess.Popen([sys.executable, "-c", script, url, *a], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a in args]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]


def test_concurrent_writers_never_lose_a_visit(registry: Registry, url: str) -> None:
    """Issue 12: four processes adding ten visits each to one child kept 10-15 of 40."""
    doctor = clinician(registry)
    patient = example("seronegative-imnm-cardiac")
    registry.save_patient(patient.model_copy(update={"visits": []}), doctor)
    _together(CONCURRENT_VISITS, url, [[str(w)] for w in range(4)])
    stored = registry.patient("example-seronegative", doctor)
    assert len(stored.visits) == 40
    assert len({v.date for v in stored.visits}) == 40
    writes = [e for e in registry.audit("example-seronegative") if e["action"] == "visits"]
    assert len(writes) == 40  # the audit trail matches what is stored


CONCURRENT_IMPORTS = """
import json, sys
from imnm.registry import Registry
registry = Registry(sys.argv[1])
account = registry.login("dr-who", "correct horse battery")
bundles = [json.loads(line) for line in open(sys.argv[2])]
print("ready", flush=True)
sys.stdin.readline()
for bundle in bundles:
    registry.import_bundle(bundle, account)
"""


def test_concurrent_imports_of_one_bundle_write_it_once(registry: Registry, url: str,
                                                        tmp_path: Path) -> None:
    """Issue 12: concurrent imports of the same Bundle raised IntegrityError 3-5 times in 160."""
    import json

    clinician(registry)
    names = ["seronegative-imnm-cardiac", "case-series-2025-patient-1-course"]
    bundles = tmp_path / "bundles.ndjson"
    bundles.write_text("".join(json.dumps(to_bundle(example(n))) + "\n" for n in names) * 10,
                       encoding="utf-8")
    _together(CONCURRENT_IMPORTS, url, [[str(bundles)]] * 4)
    counts = registry.counts()
    assert (counts["patients"], counts["imports"]) == (2, 2)
    assert counts["visits"] == 5
    imports = [e for e in registry.audit() if e["action"] == "import"]
    assert len(imports) == 2


def _text_fields(model: type, prefix: str = "") -> list[str]:
    """Every text field of the patient model, by path (lists as [], mappings as {})."""
    import types
    import typing

    from pydantic import BaseModel

    def walk(annotation: object, path: str) -> list[str]:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            return walk(args[0], path)
        if origin in (typing.Union, types.UnionType):
            return [p for a in args for p in walk(a, path)]
        if origin in (list, tuple):
            return walk(args[0], path + "[]")
        if origin is dict:
            return walk(args[1], path + "{}")
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return _text_fields(annotation, path + ".")
        return [path] if annotation is str else []

    return [p for name, f in model.model_fields.items()  # type: ignore[attr-defined]
            for p in walk(f.annotation, prefix + name)]


FREE_TEXT = {  # every free-text field, each holding a marker a researcher must never see
    "ck[].lab": "SECRET-lab", "other_enzymes[].lab": "SECRET-lab2",
    "mri.oedema_regions[]": "SECRET region", "mri.fatty_replacement_regions[]": "SECRET r2",
    "family_history.details": "SECRET uncle", "genetic_testing.genes[]": "SECRET gene",
    "genetic_testing.diagnosis": "SECRET dx", "extramuscular.skin.other[]": "SECRET skin",
    "exposures.statin_name": "SECRET statin", "preceding_infection.description": "SECRET flu",
    "diagnoses[].label": "SECRET limb-girdle muscular dystrophy",
    "treatments[].name": "SECRET drug", "treatments[].frequency": "SECRET weekly",
    "visits[].ck.lab": "SECRET-lab3", "visits[].note": "SECRET note", "notes": "SECRET notes",
}
CODED_TEXT = {"id", "weight.unit", "height.unit", "ck[].unit", "other_enzymes[].unit",
              "diagnoses[].code", "treatments[].dose.unit", "visits[].ck.unit"}


def test_researchers_never_see_free_text(tmp_path: Path) -> None:
    """Issue 12: deidentify() kept family-history details, infection, statin name, treatment
    names, lab names, diagnosis labels. The model's text fields are found by type, so a new one
    fails this test until it is either withheld or shown to be coded."""
    from imnm.patient import Patient

    assert set(_text_fields(Patient)) == set(FREE_TEXT) | CODED_TEXT
    base = example("case-series-2025-patient-1-course").model_dump(mode="json",
                                                                   exclude_none=True)
    data = base | {
        "notes": FREE_TEXT["notes"],
        "ck": [{"value": 9000, "unit": "U/L", "upper_limit": 200, "date": "2024-01-10",
                "lab": FREE_TEXT["ck[].lab"]}],
        "other_enzymes": [{"analyte": "ast", "value": 300, "unit": "U/L", "upper_limit": 40,
                           "lab": FREE_TEXT["other_enzymes[].lab"]}],
        "mri": {"oedema": True, "oedema_regions": ["hamstrings", FREE_TEXT[
            "mri.oedema_regions[]"]], "fatty_replacement_regions": [FREE_TEXT[
                "mri.fatty_replacement_regions[]"]]},
        "family_history": {"neuromuscular_disease": True,
                           "details": FREE_TEXT["family_history.details"]},
        "genetic_testing": {"done": True, "result": "negative",
                            "genes": ["DMD", FREE_TEXT["genetic_testing.genes[]"]],
                            "diagnosis": FREE_TEXT["genetic_testing.diagnosis"]},
        "extramuscular": {"skin": {"other": [FREE_TEXT["extramuscular.skin.other[]"]]}},
        "exposures": {"statin": True, "statin_name": FREE_TEXT["exposures.statin_name"]},
        "preceding_infection": {"present": True,
                                "description": FREE_TEXT["preceding_infection.description"]},
        "diagnoses": [{"label": FREE_TEXT["diagnoses[].label"]},
                      {"label": "SECRET coded", "system": "icd10cm", "code": "G71.0"}],
        "treatments": [*base.get("treatments", []),
                       {"drug": "other", "name": FREE_TEXT["treatments[].name"],
                        "frequency": FREE_TEXT["treatments[].frequency"]}],
        "visits": [v | {"note": FREE_TEXT["visits[].note"],
                        "ck": {"value": 5000, "unit": "U/L", "lab": FREE_TEXT[
                            "visits[].ck.lab"]}} for v in base["visits"]],
    }
    patient = load_patient(data)
    registry = Registry(f"sqlite:///{tmp_path / 'r.db'}", secret="k")  # noqa: S106
    seen = registry.deidentify(patient)
    text = seen.model_dump_json()
    assert "SECRET" not in text
    # What is coded or categorised stays, so the researcher's assessment reads the same.
    assert [d.label for d in seen.diagnoses] == [
        "muscular dystrophy (free text withheld)",
        "Muscular dystrophy (WHO ICD-10 / any G71.0x code)"]  # the code's display
    assert seen.diagnoses[1].code == "G71.0"
    assert seen.genetic_testing is not None and seen.genetic_testing.genes == ["DMD"]
    assert seen.mri is not None and seen.mri.oedema_regions == ["hamstrings"]
    assert seen.extramuscular.skin.any_skin_lesion is True
    assert seen.exposures.statin is True and seen.family_history is not None
    assert seen.treatments[-1].name == "other (free text withheld)"
    from imnm import assess

    clinician_view, researcher_view = assess(patient), assess(seen)
    assert (researcher_view.classification.enmc_2017.cls
            == clinician_view.classification.enmc_2017.cls)
    assert (researcher_view.suspicion.review_dystrophy_label
            == clinician_view.suspicion.review_dystrophy_label)
