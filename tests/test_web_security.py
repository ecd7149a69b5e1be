"""The clinic under attack (issue 12): cross-site writes, login CSRF, password guessing,
sessions after logout, hardening headers, unknown ids and hostile uploads. Each test replays
an attack the issue reports and checks it is refused without a 5xx."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import imnm.registry as registry_module
from imnm.registry import LOCK_AFTER_FAILURES, Registry, migrate
from imnm.service.app import create_app
from imnm.service.web import ADDRESS_FAILURES
from tests.conftest import EXAMPLES
from tests.test_web import csrf_of, login

DOCTOR = ("doctor", "correct horse battery")
ANALYST = ("analyst", "research only!")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    migrate(url)
    store = Registry(url)
    store.create_user(*DOCTOR, "clinician")
    store.create_user(*ANALYST, "researcher")
    yield store
    store.close()


def _client(registry: Registry, base: str = "http://testserver") -> TestClient:
    app = create_app(development=True, registry=registry, base_url=base)
    return TestClient(app, base_url=base, follow_redirects=False)


@pytest.fixture
def doctor(registry: Registry) -> TestClient:
    client = _client(registry)
    assert login(client, *DOCTOR).status_code == 303
    return client


def _upload(client: TestClient, content: bytes, csrf: str | None = None,
            headers: dict[str, str] | None = None) -> Any:
    return client.post("/patients/upload", files={"file": ("p.json", content)},
                       data={"csrf": csrf if csrf is not None else csrf_of(client)},
                       headers=headers or {})


EXAMPLE = (EXAMPLES / "seronegative-imnm-cardiac.json").read_bytes()


def test_cross_site_writes_are_refused(doctor: TestClient, registry: Registry) -> None:
    token = csrf_of(doctor)
    evil = {"Origin": "http://evil.example"}
    # The browser sends the session cookie along; the Origin gives the site away.
    assert doctor.post("/patients/new", data={"id": "x1", "csrf": token},
                       headers=evil).status_code == 403
    assert _upload(doctor, EXAMPLE, token, evil).status_code == 403
    # A page on another site cannot read the token, so it posts without one.
    assert doctor.post("/patients/new", data={"id": "x2"}).status_code == 403
    assert doctor.post("/patients/new", data={"id": "x3", "csrf": "guess"}).status_code == 403
    assert _upload(doctor, EXAMPLE, "").status_code == 403
    assert registry.record_ids() == []
    assert _upload(doctor, EXAMPLE).status_code == 303  # the real form works
    record = registry.record_ids()[0]
    assert doctor.post(f"/patients/{record}/visits", data={
        "date": "2024-05-01", "mmt8": "60", "csrf": token}, headers=evil).status_code == 403
    assert doctor.post(f"/patients/{record}/visits", data={
        "date": "2024-05-01", "mmt8": "60"}).status_code == 403
    before = len(registry.patient(record, registry.login(*DOCTOR)).visits)  # type: ignore[arg-type]
    assert doctor.post(f"/patients/{record}/visits", data={
        "date": "2024-05-01", "mmt8": "60", "csrf": token}).status_code == 303
    after = len(registry.patient(record, registry.login(*DOCTOR)).visits)  # type: ignore[arg-type]
    assert after == before + 1


def test_login_csrf_is_refused(registry: Registry) -> None:
    client = _client(registry)
    # A login forged from another site has neither the login cookie nor its token.
    forged = client.post("/login", data={"username": "analyst", "password": ANALYST[1]})
    assert forged.status_code == 403 and "imnm_session" not in forged.headers.get(
        "set-cookie", "")
    token = csrf_of(client, "/login")
    cross = client.post("/login", data={"username": ANALYST[0], "password": ANALYST[1],
                                        "csrf": token}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403


def test_logout_is_a_post_and_ends_the_session(doctor: TestClient) -> None:
    cookie = doctor.cookies.get("imnm_session")
    assert cookie and doctor.get("/patients").status_code == 200
    assert doctor.get("/logout").status_code == 405
    assert doctor.post("/logout", data={"csrf": csrf_of(doctor)}).status_code == 303
    replay = TestClient(doctor.app, follow_redirects=False)
    replay.cookies.set("imnm_session", cookie)  # the stolen cookie, after logout
    assert replay.get("/patients").status_code == 303  # to the login page


def test_accounts_lock_after_wrong_passwords(registry: Registry) -> None:
    client = _client(registry)
    for _ in range(LOCK_AFTER_FAILURES):
        assert login(client, DOCTOR[0], "wrong password").status_code == 401
    assert login(client, *DOCTOR).status_code == 401  # locked: the right password too
    assert any(e["action"] == "lock" for e in registry.audit())
    assert login(client, *ANALYST).status_code == 303  # other accounts unaffected


def test_addresses_are_throttled(registry: Registry) -> None:
    client = _client(registry)
    for i in range(ADDRESS_FAILURES):  # spread over many names: no account locks
        assert login(client, f"nobody-{i}", "guess").status_code == 401
    assert login(client, *ANALYST).status_code == 429


def test_unknown_users_cost_one_password_hash(registry: Registry,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = registry_module._check_password

    def counted(password: str, stored: str) -> bool:
        calls.append(stored)
        return real(password, stored)

    monkeypatch.setattr(registry_module, "_check_password", counted)
    assert registry.login("no-such-user", "whatever") is None
    assert registry.login(DOCTOR[0], "wrong") is None
    assert len(calls) == 2  # the same scrypt whether or not the name exists


def test_cookies_are_secure_behind_https(registry: Registry) -> None:
    client = _client(registry, "https://imnm.example.org")
    form = client.get("/login")
    assert "secure" in form.headers["set-cookie"].lower()
    response = login(client, *DOCTOR)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_patient_pages_carry_hardening_headers(doctor: TestClient) -> None:
    assert _upload(doctor, EXAMPLE).status_code == 303
    for path in ("/patients", "/patients/example-seronegative", "/login"):
        headers = doctor.get(path).headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"


def test_unknown_ids_are_404_not_500(doctor: TestClient) -> None:
    for path in ("/patients/nobody/report.pdf", "/patients/nobody/course.png",
                 "/patients/nobody"):
        assert doctor.get(path).status_code == 404, path
    visit = doctor.post("/patients/nobody/visits", data={"date": "2024-01-01",
                                                         "csrf": csrf_of(doctor)})
    assert visit.status_code == 404


@pytest.mark.parametrize(("content", "expected"), [
    (b"\xff\xfe{\x00bad", "UTF-8"),
    (b"[" * 5000 + b"]" * 5000, "nested"),
    (json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Spaceship"}}]}).encode(), "FHIR R4 resource type"),
    (json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": 5}}]}).encode(), "FHIR R4 resource type"),
    (b"{not json", "valid JSON"),
], ids=["not-utf8", "nested", "unknown-resource", "numeric-resource", "malformed"])
def test_hostile_uploads_get_422(doctor: TestClient, content: bytes, expected: str) -> None:
    response = _upload(doctor, content)
    assert response.status_code == 422
    assert expected in response.text


def test_a_visit_with_bad_values_is_422_naming_the_field(doctor: TestClient) -> None:
    assert _upload(doctor, EXAMPLE).status_code == 303
    response = doctor.post("/patients/example-seronegative/visits", data={
        "date": "2024-13-45", "mmt8": "900", "csrf": csrf_of(doctor)})
    assert response.status_code == 422
    assert "date" in response.text and "mmt8" in response.text


def test_the_researcher_sees_no_free_text_on_the_page_or_in_the_pdf(
        registry: Registry) -> None:
    from pypdf import PdfReader

    patient = json.loads(EXAMPLE) | {
        "notes": "SECRET note", "diagnoses": [{"label": "SECRET limb-girdle muscular dystrophy"}],
        "family_history": {"neuromuscular_disease": True, "details": "SECRET uncle"}}
    doctor = _client(registry)
    login(doctor, *DOCTOR)
    assert _upload(doctor, json.dumps(patient).encode()).status_code == 303
    assert "SECRET" in doctor.get("/patients/example-seronegative").text  # the clinician's
    analyst = _client(registry)
    login(analyst, *ANALYST)
    key = registry.pseudonym("example-seronegative")
    page = analyst.get(f"/patients/{key}")
    assert page.status_code == 200 and "SECRET" not in page.text
    assert "muscular dystrophy (free text withheld)" in page.text
    pdf = analyst.get(f"/patients/{key}/report.pdf")
    assert pdf.status_code == 200
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "SECRET" not in text and "withheld" in text


def test_pseudonyms_are_stable_across_restarts(registry: Registry) -> None:
    # Issue 13 asked it too: the key is kept in the registry, not made at each start.
    again = Registry(registry.url)
    assert again.pseudonym("abc") == registry.pseudonym("abc")
    again.close()


def test_a_treatment_row_without_a_drug_is_refused_not_dropped(doctor: TestClient,
                                                               registry: Registry) -> None:
    """Noticed in issue 13's review: on the new-child form, a treatment row with a dose and a
    start date but no drug was ignored without a word."""
    form = {"id": "no-drug", "sex": "female", "birth_date": "2012-03-01",
            "t1_dose_value": "20", "t1_dose_unit": "mg", "t1_start": "2024-01-10",
            "csrf": csrf_of(doctor)}
    answer = doctor.post("/patients/new", data=form)
    assert answer.status_code == 422
    problems = answer.text[answer.text.find("Please correct"):][:600]
    assert "t1_drug" in problems and "dose, start date filled in" in problems, problems
    assert registry.record_ids() == []
    assert doctor.post("/patients/new", data=form | {"t1_drug": "prednisolone"}
                       ).status_code == 303
    record = registry.record_ids()[0]
    refused = doctor.post(f"/patients/{record}/treatments", data={
        "t_dose_value": "15", "csrf": csrf_of(doctor)})
    assert refused.status_code == 422 and "t_drug" in refused.text
    empty = doctor.post(f"/patients/{record}/treatments", data={"csrf": csrf_of(doctor)})
    assert empty.status_code == 422 and "choose a drug" in empty.text
