"""The web service and the CDS Hooks patient-view service: request shapes from the CDS Hooks
2.0 specification, tokens refused for each reason, a real uvicorn on loopback, and
schemathesis over the OpenAPI document."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from imnm import load_patient
from imnm.fhir import to_bundle
from imnm.service.app import SERVICE_ID, Reports, create_app
from imnm.service.logs import QUERY_NOT_LOGGED, NoQueryStrings, serve_log_config
from imnm.service.security import TokenVerifier
from tests.conftest import EXAMPLES, live_uvicorn

ISSUER = "https://ehr.example.org"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks() -> dict[str, Any]:
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
    return {"keys": [rsa_jwk | {"kid": "rsa1", "alg": "RS384"},
                     ec_jwk | {"kid": "ec1", "alg": "ES384"}]}


def token(audience: str, *, key: Any = RSA_KEY, alg: str = "RS384", kid: str = "rsa1",
          **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300,
               "jti": str(uuid.uuid4())} | claims
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


SERVICE_URL = f"http://testserver/cds-services/{SERVICE_ID}"
HMAC_SECRET = "a-shared-secret-that-is-long-enough-for-hs384-signing-48b"  # noqa: S105 - test key


@pytest.fixture
def secured() -> TestClient:
    return TestClient(create_app(TokenVerifier({ISSUER: jwks()}), base_url="http://testserver"))


@pytest.fixture
def dev() -> TestClient:
    return TestClient(create_app(development=True))


def prefetch_for(example: str) -> dict[str, Any]:
    patient = load_patient((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))
    resources = [e["resource"] for e in to_bundle(patient)["entry"]]

    def searchset(kind: str) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": r} for r in resources if r["resourceType"] == kind]}

    return {"patient": next(r for r in resources if r["resourceType"] == "Patient"),
            "conditions": searchset("Condition"), "observations": searchset("Observation"),
            "medications": None}


def hook_call(example: str = "lgmd-label-never-tested", **changes: Any) -> dict[str, Any]:
    # The shape of the CDS Hooks 2.0 patient-view example request.
    prefetch = prefetch_for(example)
    body = {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "fhirServer": "https://fhir.example.org", "hook": "patient-view",
            "context": {"userId": "Practitioner/example",
                        "patientId": prefetch["patient"]["id"]},
            "prefetch": prefetch}
    body.update(changes)
    return body


def test_discovery_lists_the_patient_view_service(dev: TestClient) -> None:
    services = dev.get("/cds-services").json()["services"]
    assert [s["id"] for s in services] == [SERVICE_ID]
    assert services[0]["hook"] == "patient-view"
    assert services[0]["prefetch"]["patient"] == "Patient/{{context.patientId}}"


def test_card_for_an_unconfirmed_dystrophy_label(dev: TestClient) -> None:
    response = dev.post(f"/cds-services/{SERVICE_ID}", json=hook_call())
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "warning" and len(card["summary"]) < 140
    assert card["source"]["url"] == "https://doi.org/10.3389/fneur.2023.1123380"
    assert "suspicion.dystrophy_label_unconfirmed" in card["detail"]
    assert card["selectionBehavior"] == "any"
    actions = card["suggestions"][0]["actions"]
    assert [a["resource"]["resourceType"] for a in actions] == ["ServiceRequest"] * 2
    assert {a["resource"]["code"]["coding"][0]["code"] for a in actions} == {"93493-5",
                                                                            "33921-8"}
    assert "null" not in json.dumps(cards)  # optional elements omitted, never null
    report = dev.get(card["links"][0]["url"].replace("http://testserver", ""))
    assert report.status_code == 200 and "Could this be IMNM?" in report.text


def test_confirmed_dystrophy_gets_no_card(dev: TestClient) -> None:
    response = dev.post(f"/cds-services/{SERVICE_ID}",
                        json=hook_call("duchenne-genetically-confirmed"))
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_antibody_positive_dystrophy_label_is_critical(dev: TestClient) -> None:
    cards = dev.post(f"/cds-services/{SERVICE_ID}",
                     json=hook_call("case-series-2025-patient-1")).json()["cards"]
    assert [c["indicator"] for c in cards] == ["critical", "warning"]


def test_no_prefetch_and_no_fhir_server_is_412(dev: TestClient) -> None:
    call = hook_call()
    del call["prefetch"], call["fhirServer"]
    assert dev.post(f"/cds-services/{SERVICE_ID}", json=call).status_code == 412


def test_missing_prefetch_is_fetched_from_the_fhir_server() -> None:
    prefetch = prefetch_for("lgmd-label-never-tested")
    asked: list[tuple[str, str | None]] = []

    def fake_server(base: str, query: str, token_: str | None) -> Any:
        asked.append((query, token_))
        key = {"Patient": "patient", "Condition": "conditions", "Observation": "observations",
               "MedicationRequest": "medications"}[query.split("/")[0].split("?")[0]]
        return prefetch[key]

    client = TestClient(create_app(development=True, fetch_fhir=fake_server))
    call = hook_call()
    del call["prefetch"]
    call["fhirAuthorization"] = {"access_token": "secret-token", "token_type": "Bearer",
                                 "expires_in": 300, "scope": "patient/*.read",
                                 "subject": "imnm"}
    response = client.post(f"/cds-services/{SERVICE_ID}", json=call)
    assert response.status_code == 200 and len(response.json()["cards"]) == 1
    assert asked[0] == (f"Patient/{prefetch['patient']['id']}", "secret-token")


def test_feedback_endpoint(dev: TestClient) -> None:
    body = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted",
                          "acceptedSuggestions": [{"id": str(uuid.uuid4())}],
                          "outcomeTimestamp": "2025-03-01T10:00:00Z"}]}
    assert dev.post(f"/cds-services/{SERVICE_ID}/feedback", json=body).status_code == 200
    assert dev.app.state.feedback_counts["accepted"] == 1  # type: ignore[attr-defined]


def test_rest_assess_accepts_patient_json_and_bundles(dev: TestClient) -> None:
    patient = json.loads((EXAMPLES / "jdm-classic.json").read_text(encoding="utf-8"))
    doc = dev.post("/assess", json=patient).json()
    assert doc["classification"]["enmc_2017"]["class"] == "not_imnm"
    bundle = to_bundle(load_patient(patient))
    doc = dev.post("/assess", json=bundle).json()
    assert doc["classification"]["eular_acr_2017"]["subgroup"] == "juvenile_dermatomyositis"
    assert doc["import_report"] == {"ignored": [], "unrecognised_codes": [], "notes": []}
    bad = dev.post("/assess", json={"id": "x", "age_years": 40, "notes": "SECRET"})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["field"] == "age_years"
    assert "40" not in bad.text and "SECRET" not in bad.text
    assert dev.get("/knowledge").status_code == 200


def test_valid_tokens_rs384_and_es384(secured: TestClient) -> None:
    for key, alg, kid in ((RSA_KEY, "RS384", "rsa1"), (EC_KEY, "ES384", "ec1")):
        headers = {"Authorization": f"Bearer {token(SERVICE_URL, key=key, alg=alg, kid=kid)}"}
        response = secured.post(f"/cds-services/{SERVICE_ID}", json=hook_call(),
                                headers=headers)
        assert response.status_code == 200, alg
    discovery_url = "http://testserver/cds-services"
    ok = secured.get("/cds-services",
                     headers={"Authorization": f"Bearer {token(discovery_url)}"})
    assert ok.status_code == 200
    assert secured.get("/cds-services").status_code == 401


def _segments(header: Any, claims: Any = None, signature: str = "c2ln") -> str:
    """A token of two JSON segments (valid claims unless given) and a made-up signature."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": SERVICE_URL, "iat": now, "exp": now + 300,
              "jti": str(uuid.uuid4())} if claims is None else claims
    parts = [jwt.utils.base64url_encode(json.dumps(x).encode()).decode()
             for x in (header, claims)]
    return ".".join([*parts, signature])


def _none_token() -> str:
    return _segments({"alg": "none", "kid": "rsa1"}, signature="")


@pytest.mark.parametrize("make", [
    pytest.param(lambda: token(SERVICE_URL, key=OTHER_KEY), id="forged"),
    pytest.param(lambda: token(SERVICE_URL, exp=int(time.time()) - 600,
                               iat=int(time.time()) - 900), id="expired"),
    pytest.param(lambda: token("https://other.example.org/cds-services/x"), id="wrong-audience"),
    pytest.param(_none_token, id="alg-none"),
    pytest.param(lambda: jwt.encode({"iss": ISSUER, "aud": SERVICE_URL,
                                     "iat": int(time.time()), "exp": int(time.time()) + 300,
                                     "jti": "x"}, HMAC_SECRET,
                                    algorithm="HS384", headers={"kid": "rsa1"}), id="hmac"),
    pytest.param(lambda: token(SERVICE_URL, iss="https://evil.example.org"), id="issuer"),
    pytest.param(lambda: token(SERVICE_URL, kid="unknown"), id="unknown-kid"),
    pytest.param(lambda: "not-a-token", id="malformed"),
    *(pytest.param(lambda bad=bad: bad, id=f"malformed-{i}") for i, bad in enumerate((
        "a.b", "!!!.e30.x", "e30.e30", "W10.e30.x", "bm90IGpzb24.e30.x", "/w.e30.x",
        _segments({"alg": ["RS384"], "kid": "rsa1"}), _segments({"alg": "RS384", "kid": {}}),
        _segments({"alg": "RS384", "kid": "rsa1"}, []), _segments({"alg": "RS384"})))),
    pytest.param(lambda: token(SERVICE_URL, jti=""), id="empty-jti"),  # issue 12
    pytest.param(lambda: token(SERVICE_URL, jti="   "), id="blank-jti"),
])
def test_refused_tokens_get_a_bare_401(secured: TestClient, make: Any) -> None:
    response = secured.post(f"/cds-services/{SERVICE_ID}", json=hook_call(),
                            headers={"Authorization": f"Bearer {make()}"})
    assert response.status_code == 401
    assert response.content == b""


def test_replayed_jti_is_refused(secured: TestClient) -> None:
    headers = {"Authorization": f"Bearer {token(SERVICE_URL)}"}
    first = secured.post(f"/cds-services/{SERVICE_ID}", json=hook_call(), headers=headers)
    again = secured.post(f"/cds-services/{SERVICE_ID}", json=hook_call(), headers=headers)
    assert (first.status_code, again.status_code) == (200, 401)


def test_tokens_and_patient_data_are_never_logged(secured: TestClient,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # Issue 12: refusals left no trace at the default level; now a warning names the reason.
    caplog.set_level("WARNING")
    bad = token(SERVICE_URL, key=OTHER_KEY)
    secured.post(f"/cds-services/{SERVICE_ID}", json=hook_call(),
                 headers={"Authorization": f"Bearer {bad}"})
    good = token(SERVICE_URL)
    secured.post(f"/cds-services/{SERVICE_ID}", json=hook_call(),
                 headers={"Authorization": f"Bearer {good}"})
    text = caplog.text
    assert bad not in text and good not in text
    assert "example-lgmd-unconfirmed" not in text and "9400" not in text
    assert ("refused a request to /cds-services/imnm-patient-view from testclient: "
            "invalid token") in text


def test_service_refuses_to_start_without_authentication_unless_told() -> None:
    with pytest.raises(ValueError, match="development=True"):
        create_app()


@pytest.fixture
def live_server() -> Iterator[str]:
    with live_uvicorn(lambda base: create_app(TokenVerifier({ISSUER: jwks()}),
                                              base_url=base)) as base:
        yield base


def test_real_uvicorn_on_loopback(live_server: str) -> None:
    url = f"{live_server}/cds-services/{SERVICE_ID}"
    response = httpx.post(url, json=hook_call(),
                          headers={"Authorization": f"Bearer {token(url)}"}, timeout=10)
    assert response.status_code == 200
    assert response.json()["cards"][0]["indicator"] == "warning"
    assert httpx.post(url, json=hook_call(), timeout=10).status_code == 401


def test_openapi_has_no_5xx_under_schemathesis() -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    app = create_app(development=True)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    calls: list[int] = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=25, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case: Any) -> None:
            response = case.call()
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        check()
    assert failures == []
    assert len(calls) >= 50 and {200, 422} <= set(calls)


def test_patient_over_the_age_limit_gets_200_and_no_card(dev: TestClient) -> None:
    # patient-view fires for every patient: an adult is not an error.
    call = hook_call()
    call["prefetch"]["patient"]["birthDate"] = "1960-05-01"
    response = dev.post(f"/cds-services/{SERVICE_ID}", json=call)
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_operation_outcome_prefetch_is_missing_data_not_an_empty_record(
        dev: TestClient) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "timeout", "diagnostics": "search timed out"}]}
    call = hook_call("duchenne-genetically-confirmed")
    call["prefetch"]["conditions"] = outcome
    del call["fhirServer"]
    cards = dev.post(f"/cds-services/{SERVICE_ID}", json=call).json()["cards"]
    assert len(cards) == 1 and cards[0]["indicator"] == "info"
    assert "did not return conditions" in cards[0]["summary"]
    # With the conditions there, the same child gets no card at all.
    assert dev.post(f"/cds-services/{SERVICE_ID}",
                    json=hook_call("duchenne-genetically-confirmed")).json() == {"cards": []}


def test_the_card_carries_the_class_caveat(dev: TestClient) -> None:
    # Issue 11 item 2: a line-blot anti-SRP is a class to confirm before treating; the card
    # says so, as the plan, the page and the PDF do.
    cards = dev.post(f"/cds-services/{SERVICE_ID}",
                     json=hook_call("anti-srp-line-blot")).json()["cards"]
    enmc = next(c for c in cards if c["summary"].startswith("ENMC 2017"))
    assert "Caveat:" in enmc["detail"] and "line blot" in enmc["detail"]



@pytest.mark.parametrize("patient_id", ["../../../secret?steal=", "a/b", "x" * 65, ""])
def test_ids_that_are_not_fhir_ids_never_reach_the_fhir_server(patient_id: str) -> None:
    # Issue 12: a patientId was pasted into FHIR URLs, so '../../../secret?steal=' made the
    # service call /secret on the FHIR server with its access token.
    asked: list[str] = []

    def fetch(base: str, query: str, token: str | None) -> Any:
        asked.append(query)
        return {}

    client = TestClient(create_app(development=True, fetch_fhir=fetch))
    call = hook_call()
    del call["prefetch"]
    call["context"]["patientId"] = patient_id
    response = client.post(f"/cds-services/{SERVICE_ID}", json=call)
    assert response.status_code == 422 and asked == []
    assert "FHIR ids" in response.text


# ---------------------------------------------------------------- issue 12: the service


def _auth(url: str = SERVICE_URL) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(url)}"}


def test_unauthenticated_requests_get_401_before_their_body_is_read() -> None:
    read: list[int] = []
    app = create_app(TokenVerifier({ISSUER: jwks()}), base_url="http://testserver")

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        async def wrapped() -> Any:
            message = await receive()
            read.append(len(message.get("body", b"")))
            return message
        await app(scope, wrapped, send)

    client = TestClient(counting)
    junk = b"{" * 5_000_000  # neither JSON nor small, and never looked at
    response = client.post(f"/cds-services/{SERVICE_ID}", content=junk,
                           headers={"content-type": "application/json"})
    assert response.status_code == 401 and read == []
    assert client.post("/assess", content=junk).status_code == 401 and read == []


def test_request_bodies_are_capped() -> None:
    app = create_app(TokenVerifier({ISSUER: jwks()}), base_url="http://testserver",
                     max_body_bytes=50_000)
    client = TestClient(app)
    big = json.dumps(hook_call() | {"padding": "x" * 60_000})
    response = client.post(f"/cds-services/{SERVICE_ID}", content=big, headers={
        "content-type": "application/json"} | _auth())
    assert response.status_code == 413 and "50000 bytes" in response.text
    # Without a token, 401 comes first, whatever the size.
    assert client.post(f"/cds-services/{SERVICE_ID}", content=big).status_code == 401

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 10_000
    response = client.post(f"/cds-services/{SERVICE_ID}", content=chunks(), headers={
        "content-type": "application/json"} | _auth())
    assert response.status_code == 413
    ok = client.post(f"/cds-services/{SERVICE_ID}", json=hook_call(), headers=_auth())
    assert ok.status_code == 200


def test_the_audience_is_the_configured_url_not_the_host_header(secured: TestClient) -> None:
    evil = f"http://evil.example/cds-services/{SERVICE_ID}"
    response = secured.post(f"/cds-services/{SERVICE_ID}", json=hook_call(),
                            headers=_auth(evil) | {"Host": "evil.example"})
    assert response.status_code == 401
    good = secured.post(f"/cds-services/{SERVICE_ID}", json=hook_call(),
                        headers=_auth() | {"Host": "evil.example"})
    assert good.status_code == 200


def test_a_service_with_tokens_needs_its_own_base_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        create_app(TokenVerifier({ISSUER: jwks()}))


class FakeIssuer:
    """A JWKS URL whose keys can rotate, fail or be garbage; counts fetches."""

    def __init__(self) -> None:
        self.document: Any = jwks()
        self.fetches = 0
        self.now = 1000.0

    def fetch(self, url: str) -> Any:
        self.fetches += 1
        if isinstance(self.document, Exception):
            raise self.document
        return self.document


def _jwks_client(issuer: FakeIssuer) -> TestClient:
    verifier = TokenVerifier({ISSUER: "https://ehr.example.org/jwks"}, fetch=issuer.fetch,
                             clock=lambda: issuer.now)
    return TestClient(create_app(verifier, base_url="http://testserver"))


def test_rotated_keys_are_fetched_again_once_on_an_unknown_kid() -> None:
    issuer = FakeIssuer()
    client = _jwks_client(issuer)
    path = f"/cds-services/{SERVICE_ID}"
    assert client.post(path, json=hook_call(), headers=_auth()).status_code == 200
    assert client.post(path, json=hook_call(), headers=_auth()).status_code == 200
    assert issuer.fetches == 1  # cached
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.document = {"keys": [json.loads(RSAAlgorithm.to_jwk(new_key.public_key()))
                                | {"kid": "rsa2", "alg": "RS384"}]}
    issuer.now += 31  # past the refetch interval
    rotated = {"Authorization": f"Bearer {token(SERVICE_URL, key=new_key, kid='rsa2')}"}
    assert client.post(path, json=hook_call(), headers=rotated).status_code == 200
    assert issuer.fetches == 2
    # A flood of unknown kids does not make the service hammer the issuer.
    for _ in range(5):
        unknown = {"Authorization": f"Bearer {token(SERVICE_URL, kid='nope')}"}
        assert client.post(path, json=hook_call(), headers=unknown).status_code == 401
    assert issuer.fetches == 2
    issuer.now += 3601  # and keys are fetched again when they are old
    client.post(path, json=hook_call(), headers=rotated)
    assert issuer.fetches == 3


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), {"no": "keys"}],
                         ids=["unreachable", "not-a-jwks"])
def test_unobtainable_keys_give_503_and_are_not_refetched_per_request(failure: Any) -> None:
    issuer = FakeIssuer()
    issuer.document = failure
    client = _jwks_client(issuer)
    for _ in range(3):
        response = client.post(f"/cds-services/{SERVICE_ID}", json=hook_call(),
                               headers=_auth())
        assert response.status_code == 503 and "Traceback" not in response.text
        assert response.headers["retry-after"] == "30"
    assert issuer.fetches == 1
    issuer.document = jwks()  # the issuer recovers
    issuer.now += 31
    ok = client.post(f"/cds-services/{SERVICE_ID}", json=hook_call(), headers=_auth())
    assert ok.status_code == 200


def _report_link(client: TestClient, headers: dict[str, str] | None = None) -> str:
    cards = client.post(f"/cds-services/{SERVICE_ID}", json=hook_call(),
                        headers=headers or {}).json()["cards"]
    link = cards[0]["links"][0]["url"]
    assert link.startswith("http://testserver/reports/")
    return link.removeprefix("http://testserver")


def test_report_links_are_signed_bound_to_the_user_and_expire(
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(create_app(development=True, base_url="http://testserver"))
    link = _report_link(client)
    assert "user=Practitioner%2Fexample" in link
    opened = client.get(link)
    assert opened.status_code == 200 and "ENMC 2017 class" in opened.text
    assert opened.headers["cache-control"] == "no-store"
    # Issue 13: the link opens the clinic's report page (the PDF's content), in words.
    assert opened.headers["content-type"].startswith("text/html")
    assert 'id="plan"' in opened.text and 'id="course"' in opened.text
    from tests.test_web import assert_in_words

    assert_in_words(opened.text)
    bare = link.split("?", 1)[0]
    assert client.get(bare).status_code == 403  # the uuid alone opens nothing
    other_user = link.replace("Practitioner%2Fexample", "Practitioner%2Fmallory")
    assert client.get(other_user).status_code == 403
    later = time.time() + 601
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get(link).status_code == 403


def test_prefetch_that_is_not_fhir_gets_422_not_500(dev: TestClient) -> None:
    call = hook_call()
    call["prefetch"]["conditions"] = {"resourceType": "Bundle", "type": "searchset",
                                      "entry": [{"resource": {"resourceType": "Spaceship"}}]}
    response = dev.post(f"/cds-services/{SERVICE_ID}", json=call)
    assert response.status_code == 422
    assert "a FHIR R4 resource type" in response.text
    call["prefetch"]["conditions"]["entry"][0]["resource"]["resourceType"] = 5
    assert dev.post(f"/cds-services/{SERVICE_ID}", json=call).status_code == 422
    nested: dict[str, Any] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    for _ in range(300):
        nested = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": nested}]}
    call = hook_call()
    call["prefetch"]["observations"] = nested
    response = dev.post(f"/cds-services/{SERVICE_ID}", content=json.dumps(call),
                        headers={"content-type": "application/json"})
    assert response.status_code == 422 and "nested" in response.text
    assert dev.post("/assess", content=json.dumps(nested),
                    headers={"content-type": "application/json"}).status_code == 422


def _with_nested(call: dict[str, Any], depth: int) -> str:
    """The call as JSON text, its value "DEEP" replaced by arrays and objects nested ``depth``
    deep (written as text: the standard encoder cannot go that deep)."""
    text = json.dumps(call)
    opening = "".join('{"a": ' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    assert text.count('"DEEP"') == 1
    return text.replace('"DEEP"', opening + '"x"' + closing)


def test_a_value_nested_deep_in_a_field_imnm_does_not_read_is_not_walked(
        dev: TestClient) -> None:
    """The light check walks only the fields imnm reads: a value nested deep (up to what the
    JSON parser takes) where imnm does not look leaves the card as it was; the same value in
    a field imnm reads is refused by name; none of it is ever a 500."""
    url = f"/cds-services/{SERVICE_ID}"
    plain = dev.post(url, json=hook_call()).json()["cards"]
    assert plain and plain[0]["summary"].startswith("Test for anti-HMGCR")
    for depth in (100, 900, 1000, 1020):
        for put in ("patient.extension", "patient.name", "condition.note",
                    "observation.note", "observation.valueQuantity.extension"):
            call = hook_call()
            kind, *path = put.split(".")
            node = call["prefetch"]["patient"] if kind == "patient" else call["prefetch"][
                f"{kind}s"]["entry"][0]["resource"]
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = "DEEP"
            response = dev.post(url, content=_with_nested(call, depth),
                                headers={"content-type": "application/json"})
            assert response.status_code in (200, 400), (depth, put, response.status_code)
            if response.status_code == 200:
                assert [c["summary"] for c in response.json()["cards"]] == [
                    c["summary"] for c in plain], (depth, put)
        for put in ("birthDate", "gender"):
            call = hook_call()
            call["prefetch"]["patient"][put] = "DEEP"
            response = dev.post(url, content=_with_nested(call, depth),
                                headers={"content-type": "application/json"})
            assert response.status_code in (422, 400), (depth, put, response.status_code)
            if response.status_code == 422:
                assert any(p["field"].endswith(put) for p in response.json()["problems"])


def test_bundles_nested_to_the_limit_are_read_and_one_deeper_is_refused(
        dev: TestClient) -> None:
    from imnm.fhir.common import MAX_BUNDLE_NESTING

    def wrapped(levels: int) -> dict[str, Any]:
        # the call's own collection is the first level; these are the rest
        bundle = hook_call()["prefetch"]["observations"]
        for _ in range(levels - 2):
            bundle = {"resourceType": "Bundle", "type": "searchset",
                      "entry": [{"resource": bundle}]}
        call = hook_call()
        call["prefetch"]["observations"] = bundle
        return call

    url = f"/cds-services/{SERVICE_ID}"
    ok = dev.post(url, json=wrapped(MAX_BUNDLE_NESTING))
    assert ok.status_code == 200 and ok.json()["cards"][0]["summary"].startswith("Test for")
    refused = dev.post(url, json=wrapped(MAX_BUNDLE_NESTING + 1))
    assert refused.status_code == 422
    assert f"Bundles nested at most {MAX_BUNDLE_NESTING} deep" in refused.text


def test_what_orjson_refuses_the_route_still_reads_as_before(dev: TestClient) -> None:
    """NaN is not JSON, but the standard library (FastAPI's parser) reads it: such a call goes
    from the lane to the route and gets the same card as before."""
    url = f"/cds-services/{SERVICE_ID}"
    call = hook_call()
    call["prefetch"]["observations"]["entry"][0]["resource"]["meta"] = {"score": float("nan")}
    body = json.dumps(call)
    assert "NaN" in body
    response = dev.post(url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["cards"][0]["summary"].startswith("Test for anti-HMGCR")


def test_a_prefetch_that_is_not_a_json_object_or_null_is_refused_by_name(
        dev: TestClient) -> None:
    url = f"/cds-services/{SERVICE_ID}"
    for key, value in (("patient", [1]), ("patient", "Patient/1"), ("conditions", 5),
                       ("observations", [{"resourceType": "Observation"}])):
        call = hook_call(fhirServer=None)
        call["prefetch"][key] = value
        response = dev.post(url, json=call)
        assert response.status_code == 422, (key, value, response.text)
        assert [p["field"] for p in response.json()["problems"]] == [f"prefetch.{key}"]


def test_prefetch_imnm_could_not_get_is_said_never_read_as_an_empty_record(
        dev: TestClient) -> None:
    """Conditions left out with no FHIR server to ask, or asked of a server that fails or
    answers with no resource: the card says imnm could not screen, as for an OperationOutcome.
    Conditions sent as null are "no data" (CDS Hooks 2.0): the child has none, no card."""
    url = f"/cds-services/{SERVICE_ID}"
    child = "duchenne-genetically-confirmed"
    assert dev.post(url, json=hook_call(child)).json() == {"cards": []}

    def said(response: Any) -> bool:
        cards = response.json()["cards"]
        return (response.status_code == 200 and len(cards) == 1
                and "did not return conditions" in cards[0]["summary"])

    call = hook_call(child, fhirServer=None)
    call["prefetch"]["conditions"] = None
    assert dev.post(url, json=call).json() == {"cards": []}
    call = hook_call("lgmd-label-never-tested", fhirServer=None)
    call["prefetch"]["conditions"] = None  # no label, so nothing to flag
    assert dev.post(url, json=call).json() == {"cards": []}
    call = hook_call(child, fhirServer=None)
    del call["prefetch"]["conditions"]
    assert said(dev.post(url, json=call))
    prefetch = prefetch_for(child)
    for answer in (RuntimeError("timed out"), [], {"resourceType": "OperationOutcome"}):
        def server(base: str, query: str, token_: str | None, answer: Any = answer) -> Any:
            if query.startswith("Condition"):
                if isinstance(answer, Exception):
                    raise answer
                return answer
            raise AssertionError(query)  # only the conditions are missing

        client = TestClient(create_app(development=True, fetch_fhir=server))
        call = hook_call(child)
        del call["prefetch"]["conditions"]
        assert said(client.post(url, json=call)), answer
    # An OperationOutcome in the prefetch, then the conditions from the server: not missing.
    client = TestClient(create_app(development=True,
                                   fetch_fhir=lambda *a: prefetch["conditions"]))
    call = hook_call(child)
    call["prefetch"]["conditions"] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "timeout"}]}
    assert client.post(url, json=call).json() == {"cards": []}
    empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    client = TestClient(create_app(development=True, fetch_fhir=lambda *a: empty))
    call = hook_call(child)
    del call["prefetch"]["conditions"]
    assert client.post(url, json=call).json() == {"cards": []}  # fetched: really none
    assert prefetch["conditions"]["entry"]  # (the child does have conditions)


def test_a_birth_date_that_is_not_text_is_refused_not_taken_as_an_age(dev: TestClient) -> None:
    call = hook_call()
    call["prefetch"]["patient"]["birthDate"] = 19630101  # a number Python would read as a date
    response = dev.post(f"/cds-services/{SERVICE_ID}", json=call)
    assert response.status_code == 422
    assert any(p["field"].endswith("birthDate") for p in response.json()["problems"])


def test_every_response_carries_hardening_headers(dev: TestClient) -> None:
    response = dev.get("/knowledge")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


def test_the_api_docs_work_without_internet(dev: TestClient) -> None:
    # Issue 13: /docs was blank without internet (Swagger UI from a CDN).
    page = dev.get("/docs")
    assert page.status_code == 200
    assert "cdn.jsdelivr" not in page.text
    assert "/static-offline-docs/swagger-ui-bundle.js" in page.text
    asset = dev.get("/static-offline-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000


def test_cards_speak_in_words(dev: TestClient) -> None:
    from tests.test_web import assert_in_words

    for example in ("lgmd-label-never-tested", "anti-srp-line-blot",
                    "case-series-2025-patient-1"):
        cards = dev.post(f"/cds-services/{SERVICE_ID}", json=hook_call(example)).json()
        assert_in_words(json.dumps([{k: c.get(k) for k in ("summary", "detail")}
                                    for c in cards["cards"]]))


def test_serve_with_workers_shares_the_replay_cache_and_the_link_secret(
        tmp_path: Any) -> None:
    """Issue 14: `imnm serve --workers N`. Several processes answer on one port; a token
    replayed to another worker is still refused, a card's link made by one opens on any, new
    connections are dealt to the workers in turn, and a worker killed is replaced without a
    call lost."""
    import contextlib
    import os
    import signal
    import socket
    import subprocess
    import sys

    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks()), encoding="utf-8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    access_log = (tmp_path / "access.log").open("w+", encoding="utf-8")
    opened = 0  # report links opened
    server = subprocess.Popen(
        [sys.executable, "-m", "imnm.cli", "serve", "--port", str(port), "--workers", "2",
         "--issuer", f"{ISSUER}={jwks_file}"], stdout=access_log,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/knowledge", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        url = f"{base}/cds-services/{SERVICE_ID}"

        def maker(link: str) -> str:
            """The process id of the worker that kept a report (its key starts with it)."""
            return link.split("/reports/")[1].split("-")[0]

        def called_worker() -> str:
            """A call on a new connection; the worker that answered it."""
            with httpx.Client(timeout=10) as client:
                answer = client.post(url, json=hook_call(),
                                     headers={"Authorization": f"Bearer {token(url)}"})
            assert answer.status_code == 200, answer.text
            return maker(answer.json()["cards"][0]["links"][0]["url"])

        links = []
        for _ in range(12):  # new connections, each to the next worker: the replay to the other
            with httpx.Client(timeout=10) as client:
                headers = {"Authorization": f"Bearer {token(url)}"}
                first = client.post(url, json=hook_call(), headers=headers)
                assert first.status_code == 200, first.text
                links.append(first.json()["cards"][0]["links"][0]["url"])
            with httpx.Client(timeout=10) as other:
                assert other.post(url, json=hook_call(), headers=headers).status_code == 401
        for link in links[:4]:
            assert httpx.get(link, timeout=10).status_code == 200
            opened += 1
        # New connections go to the workers in turn: six calls, three on each (a report's key
        # starts with the process id of the worker that made it).
        makers = [called_worker() for _ in range(6)]
        assert sorted(makers.count(pid) for pid in set(makers)) == [3, 3], makers
        # A worker that dies is replaced, and no call is lost: the dead one's connections are
        # not dealt it, and its replacement joins the turn once it serves.
        # (the worker that made the first links, so that their reports outlive it)
        dead = maker(links[0])
        (survivor,) = set(makers) - {dead}
        os.kill(int(dead), signal.SIGKILL)
        # Calls from the moment it has died (a call handed to it while it was dying would be
        # lost with it, as it would be in a real crash): gone, or a zombie until reaped.
        stat = f"/proc/{dead}/stat"
        gone_by = time.time() + 10
        while os.path.exists(stat) and time.time() < gone_by:
            with contextlib.suppress(OSError), open(stat, encoding="ascii") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        after: list[str] = []
        deadline = time.time() + 60
        while time.time() < deadline and len(set(after) - {survivor}) == 0:
            after.append(called_worker())
            time.sleep(0.05)
        assert dead not in after, after
        replacement = set(after) - {survivor}
        assert len(replacement) == 1, after
        turn = [called_worker() for _ in range(4)]  # the two are dealt connections in turn
        assert sorted(turn) == sorted([survivor, *replacement] * 2), turn
        # The reports the dead worker kept still open, from the workers that remain.
        kept_by_dead = [link for link in links if maker(link) == dead]
        assert kept_by_dead
        for link in kept_by_dead:
            assert httpx.get(link, timeout=10).status_code == 200
            opened += 1
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stderr is not None
        err = server.stderr.read()
        server.stderr.close()
    assert "Traceback" not in err
    assert err.count("Started server process") >= 2  # two workers answered
    # The access log names each report opened, never its link's credential (query string).
    access_log.seek(0)
    lines = access_log.read()
    access_log.close()
    assert lines.count('"GET /reports/') == opened, lines[-2000:]
    assert lines.count(f"{QUERY_NOT_LOGGED} HTTP/1.1") == opened
    for link in links:
        query = link.split("?", 1)[1]
        assert query not in lines and query.split("signature=")[1] not in lines + err


def test_the_supervisor_deals_connections_to_the_workers_in_turn() -> None:
    """`imnm serve --workers N`: the kernel's hash split 50 keep-alive connections as unevenly
    as 31/19, and the busier worker's clients waited the longer. The supervisor now accepts
    and hands each connection (its descriptor, over a worker's Unix socket) to the next worker
    that has said it serves (a starting one only while none has): an even split, TCP_NODELAY on
    each, a worker that has gone skipped, and a connection no worker can take closed rather
    than left hanging."""
    import select
    import socket
    import threading

    from imnm.service.workers import READY, Dealer, listening_socket

    listener = listening_socket("127.0.0.1", 0)
    listener.listen(64)
    port = listener.getsockname()[1]
    stop = threading.Event()
    dealer = Dealer(listener, stop)
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(3)]
    for mine, _ in pairs:
        dealer.add(mine)
    worker_ends = [theirs for _, theirs in pairs]
    for end in worker_ends:
        end.settimeout(10)
    thread = threading.Thread(target=dealer.run, daemon=True)
    thread.start()

    def handed(end: socket.socket, count: int) -> list[socket.socket]:
        got = []
        for _ in range(count):
            _, fds, _, _ = socket.recv_fds(end, 16, 16)
            assert len(fds) == 1
            got.append(socket.socket(fileno=fds[0]))
        return got

    clients: list[socket.socket] = []
    try:
        # No worker ready yet (the service starting): a connection waits on a starting one.
        clients.append(socket.create_connection(("127.0.0.1", port)))
        # (one wait on the three: waiting on each in turn for 5 s spent 10 s on the two that
        # are dealt nothing)
        early = select.select(worker_ends, [], [], 5)[0]
        assert len(early) == 1
        for conn in handed(early[0], 1):
            conn.close()
        # Two workers say they serve; the third is still starting and is dealt nothing.
        worker_ends[0].send(READY)
        worker_ends[1].send(READY)
        clients += [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        first, second = handed(worker_ends[0], 5), handed(worker_ends[1], 5)
        assert select.select([worker_ends[2]], [], [], 0.2)[0] == []
        served = first + second
        # Each handed descriptor is one of the clients' connections, each handed once.
        for i, client in enumerate(clients[1:]):
            client.sendall(f"call {i}".encode())
        assert sorted(conn.recv(16).decode() for conn in served) == sorted(
            f"call {i}" for i in range(10))
        assert all(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for conn in served)
        for conn in served:
            conn.close()

        worker_ends[1].close()  # the second worker dies: the first takes every connection
        clients += [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        for conn in handed(worker_ends[0], 4):
            conn.close()
        assert len(dealer.channels) == 1
        worker_ends[2].close()  # the third dies before it said it was ready: dropped too
        clients.append(socket.create_connection(("127.0.0.1", port)))
        for conn in handed(worker_ends[0], 1):
            conn.close()
        assert dealer.starting == []

        worker_ends[0].close()  # no worker left: the connection is closed, not left waiting
        lonely = socket.create_connection(("127.0.0.1", port))
        clients.append(lonely)
        lonely.settimeout(10)
        assert lonely.recv(16) == b""
        assert dealer.channels == []
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for client in clients:
            client.close()
    assert not thread.is_alive()


def test_a_serving_process_leaves_its_long_lived_objects_out_of_collections(
        tmp_path: Any) -> None:
    """Each worker of `imnm serve --workers N` freezes what exists once the app is built, so
    a full garbage collection under load no longer walks the modules and the knowledge (58 ms
    against 8 ms measured); the app still answers."""
    import os
    import subprocess
    import sys

    from imnm.service.app import SERVE_ENVIRONMENT

    config = {"development": True, "base_url": "http://127.0.0.1:1", "link_secret": "s" * 64,
              "max_body_bytes": 1 << 20, "replay_path": str(tmp_path / "replay.db"),
              "reports_folder": str(tmp_path)}
    script = ("import gc\n"
              "from fastapi.testclient import TestClient\n"
              "from imnm.service.app import app_from_environment\n"
              "before = gc.get_freeze_count()\n"
              "app = app_from_environment()\n"
              "print(before, gc.get_freeze_count(),\n"
              "      TestClient(app).get('/knowledge').status_code)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={**os.environ, SERVE_ENVIRONMENT: json.dumps(config)})
    before, frozen, status = (int(x) for x in out.stdout.split())
    assert before == 0 and frozen > 10_000 and status == 200


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_names_the_asyncio_loop_and_the_httptools_parser_in_both_modes(
        monkeypatch: pytest.MonkeyPatch, workers: str) -> None:
    """uvloop, which uvicorn picks when installed, starved a few of 50 connections (p99 1.28 s
    against 123 ms with asyncio, measured), and httptools costs less CPU per call than h11:
    `imnm serve` names both, with one worker and with several."""
    import uvicorn
    from typer.testing import CliRunner

    import imnm.service.app
    import imnm.service.workers
    from imnm.cli import app as cli

    asked: dict[str, Any] = {}

    class Supervisor:
        def run(self) -> None:
            pass

    def supervisor(config: Any, host: str, port: int) -> Supervisor:
        asked["loop"], asked["http"] = config.loop, config.http
        asked["log_config"] = config.log_config
        return Supervisor()

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: asked.update(kw))
    monkeypatch.setattr(imnm.service.workers, "supervisor", supervisor)
    monkeypatch.setattr(imnm.service.app, "settle_for_serving", lambda: None)
    monkeypatch.setenv(imnm.service.app.SERVE_ENVIRONMENT, "{}")  # restored after the test
    result = CliRunner().invoke(cli, ["serve", "--insecure-development", "--port", "8999",
                                      "--workers", workers])
    assert result.exit_code == 0, result.output
    assert asked["loop"] == "asyncio"
    assert asked["http"] == "httptools"
    assert asked["log_config"]["handlers"]["access"]["filters"] == ["no_query_strings"]


def test_access_lines_keep_the_path_and_drop_the_query_string() -> None:
    """A card's report link carries its credential in the query string; uvicorn's access log
    wrote it whole, so whoever read the log could open the child's report. The line is built
    here as uvicorn builds it (its format, its formatter, its arguments) through the filter
    `imnm serve` configures."""
    import logging
    import logging.config

    import uvicorn.logging

    config = serve_log_config()
    access = config["handlers"]["access"]
    assert config["filters"][access["filters"][0]]["()"] == "imnm.service.logs.NoQueryStrings"
    formatter = uvicorn.logging.AccessFormatter(
        config["formatters"]["access"]["fmt"], use_colors=False)
    link = "/reports/5f1c?user=Practitioner%2Fdr-lee&expires=1790000000&signature=c0ffee"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5123", "GET", link, "1.1", 200), None)
    assert NoQueryStrings().filter(record) is True  # the line is kept
    line = formatter.format(record)
    assert f'"GET /reports/5f1c{QUERY_NOT_LOGGED} HTTP/1.1" 200' in line
    assert "c0ffee" not in line and "dr-lee" not in line
    assert "127.0.0.1:5123" in line
    plain = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                              '%s - "%s %s HTTP/%s" %d',
                              ("127.0.0.1:5123", "POST", "/cds-services/x", "1.1", 200), None)
    NoQueryStrings().filter(plain)
    assert '"POST /cds-services/x HTTP/1.1" 200' in formatter.format(plain)


def test_the_shared_reports_keep_the_newest_and_the_replay_cache_forgets_nothing_early(
        tmp_path: Any) -> None:
    """The table `imnm serve --workers N` keeps the cards' reports in is bounded like the
    one-worker store (it grew by every call for an hour); the replay cache has no bound, since
    forgetting a token before it expires would let it replay. Expired rows go in both."""
    import time as time_

    from imnm.service.shared import PURGE_EVERY, SharedTable

    path = str(tmp_path / "shared.db")
    first, second = SharedTable(path, "reports", capacity=10), SharedTable(path, "reports",
                                                                           capacity=10)
    later = time_.time() + 3600
    for i in range(2 * PURGE_EVERY + 1):  # two workers' writes interleaved
        (first if i % 2 else second).insert(f"k{i}", later, f"v{i}")
    kept = [i for i in range(2 * PURGE_EVERY + 1) if first.get(f"k{i}") is not None]
    assert kept[-1] == 2 * PURGE_EVERY and len(kept) <= 10 + PURGE_EVERY
    assert first.get("k0") is None and second.get(f"k{2 * PURGE_EVERY}") == f"v{2 * PURGE_EVERY}"

    replay = SharedTable(path, "seen")
    replay.insert("gone", time_.time() - 1)
    for i in range(2 * PURGE_EVERY + 1):
        replay.insert(f"jti{i}", later)
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as db:  # the expired row is gone, not only hidden
        assert db.execute("SELECT COUNT(*) FROM seen WHERE key = 'gone'").fetchone() == (0,)
    assert all(replay.get(f"jti{i}") == "" for i in range(2 * PURGE_EVERY + 1))


def test_writers_of_a_shared_table_wait_their_turn_on_its_lock_file(tmp_path: Any) -> None:
    """A worker writing the shared replay cache waits on the writers' file lock, and writes
    as soon as it is released, instead of meeting SQLite's lock and sleeping 1 to 100 ms
    between tries on its event loop. Another process's hold is stood in for by a second
    descriptor of the lock file (flock locks belong to the open file, not the process)."""
    import fcntl
    import os
    import threading
    import time as time_

    from imnm.service.shared import SharedTable

    path = str(tmp_path / "shared.db")
    table, reader = SharedTable(path, "seen"), SharedTable(path, "seen")  # two workers
    other = os.open(f"{path}.lock", os.O_WRONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        done = threading.Event()
        writer = threading.Thread(target=lambda: (table.insert("jti", time_.time() + 60),
                                                  done.set()))
        writer.start()
        assert not done.wait(0.3)  # held elsewhere: the write waits
        assert reader.get("jti") is None  # reading takes no turn
        fcntl.flock(other, fcntl.LOCK_UN)
        assert done.wait(5)  # released: the write goes through
        writer.join()
        assert reader.get("jti") == ""
        assert not table.insert("jti", time_.time() + 60)  # and stays a replay
    finally:
        os.close(other)


def test_a_card_says_what_the_ehr_sent_that_imnm_could_not_read(dev: TestClient) -> None:
    """A CK in a unit imnm does not convert is not used; the card counts and names it rather
    than resting silently on the rest."""
    import copy

    body = hook_call()
    entries = body["prefetch"]["observations"]["entry"]
    ck = next(e["resource"] for e in entries
              if e["resource"]["code"]["coding"][0]["code"] == "2157-6")
    odd = copy.deepcopy(ck) | {"id": "ck-in-mg-dl"}
    odd["valueQuantity"] = {"value": 3.1, "unit": "mg/dL"}
    entries.append({"resource": odd})
    cards = dev.post(f"/cds-services/{SERVICE_ID}", json=body).json()["cards"]
    assert len(cards) == 1
    assert "_Sent by the EHR but not read (1): Observation/ck-in-mg-dl: ck in 'mg/dL'" \
        in cards[0]["detail"]
    plain = dev.post(f"/cds-services/{SERVICE_ID}", json=hook_call()).json()["cards"]
    assert "not read" not in plain[0]["detail"]


def test_each_worker_writes_its_own_report_file_and_reads_every_other(tmp_path: Any) -> None:
    """`imnm serve --workers N`: one SQLite file for every worker's reports put every hook call
    in one queue for its write lock (4 processes: p99 4.2 ms per insert, on the event loop).
    Each worker now writes its own file, named in the key, and reads any other's; a key naming
    no worker's file finds nothing and creates nothing."""
    import os as os_

    import imnm.service.app as service_app
    from imnm.service.app import SharedReports

    first, second = SharedReports(str(tmp_path)), SharedReports(str(tmp_path))
    worker = [1001]
    real_getpid = os_.getpid
    service_app.os.getpid = lambda: worker[0]  # type: ignore[assignment]
    try:
        one = first.put('{"id": "one"}')  # worker 1001 writes
        worker[0] = 2002
        two = second.put('{"id": "two"}')  # worker 2002 writes
        assert second.get(one) == '{"id": "one"}'  # and reads 1001's file
        assert second.get(two) == '{"id": "two"}'
    finally:
        service_app.os.getpid = real_getpid  # type: ignore[assignment]
    assert one.startswith("1001-") and two.startswith("2002-")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [
        "reports-1001.db", "reports-2002.db"]
    for made_up in ("3003-0f0f", "no-worker", "1001", "../x-1"):
        assert first.get(made_up) is None
    assert not (tmp_path / "reports-3003.db").exists()


def test_the_workers_share_the_bound_on_reports_kept() -> None:
    """Split into one file per worker, the reports still keep the service's bound in all: each
    of N workers keeps the newest REPORT_CAPACITY / N (and, as before, up to PURGE_EVERY more
    between purges)."""
    import tempfile

    from imnm.service.app import REPORT_CAPACITY, SharedReports
    from imnm.service.shared import PURGE_EVERY

    workers = REPORT_CAPACITY // 25  # a share of 25 each
    with tempfile.TemporaryDirectory() as folder:
        reports = SharedReports(folder, workers=workers)
        keys = [reports.put(f'{{"n": {i}}}') for i in range(2 * PURGE_EVERY + 1)]
        kept = [i for i, key in enumerate(keys) if reports.get(key) is not None]
        assert kept[-1] == 2 * PURGE_EVERY and 25 <= len(kept) <= 25 + PURGE_EVERY
        assert reports.get(keys[0]) is None


def test_a_child_without_a_card_leaves_no_report_behind() -> None:
    # patient-view fires on every chart opened: only a child a card links to is kept (for the
    # link's report), not every child whose chart was opened.
    reports = Reports()
    client = TestClient(create_app(development=True, reports=reports))
    for example in ("duchenne-genetically-confirmed", "jdm-classic"):
        response = client.post(f"/cds-services/{SERVICE_ID}", json=hook_call(example))
        assert response.status_code == 200 and response.json() == {"cards": []}
    assert len(reports._items) == 0
    cards = client.post(f"/cds-services/{SERVICE_ID}",
                        json=hook_call("case-series-2025-patient-1")).json()["cards"]
    assert len(cards) >= 2  # several cards, one report: they share the link
    assert len({c["links"][0]["url"] for c in cards}) == 1 and len(reports._items) == 1


def _lane_call(lane: Any, body: bytes, *, method: str = "POST", path: str = "/hook",
               content_type: bytes | None = b"application/json") -> tuple[int, bytes]:
    import asyncio

    headers = [(b"content-type", content_type)] if content_type else []
    scope = {"type": "http", "method": method, "path": path, "headers": headers,
             "query_string": b"", "scheme": "http", "server": ("testserver", 80),
             "root_path": "", "http_version": "1.1"}
    chunks = [body[:3], body[3:]]
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    asyncio.run(lane(scope, receive, send))
    return out[0]["status"], b"".join(m.get("body", b"") for m in out[1:])


def test_the_fast_lane_serves_well_formed_calls_and_hands_on_everything_else() -> None:
    # imnm.service.lane: a well-formed call runs the endpoint; anything else reaches the app
    # behind, with its body intact, so FastAPI's route answers it as before.
    from pydantic import BaseModel
    from starlette.responses import PlainTextResponse

    from imnm.errors import InputError, Problem
    from imnm.service.lane import FastLane

    class Call(BaseModel):
        name: str

    passed_on: list[bytes] = []

    async def behind(scope: Any, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message["body"], message["more_body"]
        passed_on.append(body)
        await PlainTextResponse("app", status_code=299)(scope, receive, send)

    async def endpoint(request: Any, call: Any) -> Any:
        if call.name == "bad":
            raise InputError([Problem("name", "bad", "a good name")])
        return PlainTextResponse(f"lane {call.name} {request.url.path}")

    lane = FastLane(behind, path="/hook", model=Call, endpoint=endpoint,
                    problems=lambda exc: [{"field": p.field} for p in exc.problems])
    assert _lane_call(lane, b'{"name": "ok"}') == (200, b"lane ok /hook")
    assert _lane_call(lane, b'{"name": "ok"}',
                      content_type=b"Application/FHIR+JSON; charset=utf-8")[0] == 200
    assert _lane_call(lane, b'{"name": "bad"}') == (422, b'{"problems":[{"field":"name"}]}')
    assert passed_on == []
    for body, kwargs in ((b'{"name": 5}', {}), (b"{not json", {}), (b"", {}),
                         (b"[" * 5000, {}), (b'{"name": "ok"}', {"content_type": None}),
                         # orjson refuses these; the app's parser reads them as before
                         (b'{"name": "ok", "x": NaN}', {}), (b'\xef\xbb\xbf{"name": "ok"}', {}),
                         (b'{"name": "ok", "x": "\\ud800"}', {}),
                         (b'{"name": "ok"}', {"content_type": b"text/plain"}),
                         (b'{"name": "ok"}', {"path": "/other"}),
                         (b'{"name": "ok"}', {"method": "PUT"})):
        assert _lane_call(lane, body, **kwargs) == (299, b"app")
        assert passed_on[-1] == body


def test_the_hook_behind_the_guard_answers_through_the_lane_and_the_route_alike(
        dev: TestClient) -> None:
    from imnm.service.guard import Guard
    from imnm.service.lane import FastLane

    app: Any = dev.app
    assert [m.cls for m in app.user_middleware] == [Guard, FastLane]  # the Guard goes first
    url = f"/cds-services/{SERVICE_ID}"
    # Well formed, so the lane runs it: the endpoint's InputError as the app's handler says it.
    wrong = dev.post(url, json=hook_call(hook="order-select"))
    assert wrong.status_code == 422
    assert wrong.json() == {"problems": [{"field": "hook", "expected": "patient-view"}]}
    # Not the model, so FastAPI's route answers, as before the lane.
    call = hook_call()
    del call["hookInstance"]
    missing = dev.post(url, json=call)
    assert missing.status_code == 422
    assert missing.json()["problems"][0]["field"] == "body.hookInstance"
    assert dev.post(url, content=b"{", headers={"content-type": "application/json"}
                    ).status_code == 422
    assert dev.post(url, content=json.dumps(hook_call()).encode(),
                    headers={"content-type": "text/plain"}).status_code == 422


@pytest.mark.parametrize("example", ["lgmd-label-never-tested", "case-series-2025-patient-1",
                                     "anti-srp-line-blot", "duchenne-genetically-confirmed"])
def test_the_lane_and_the_fastapi_route_give_the_same_cards(example: str) -> None:
    from imnm.service.lane import FastLane

    def cards(client: TestClient, call: dict[str, Any]) -> Any:
        response = client.post(f"/cds-services/{SERVICE_ID}", json=call)
        assert response.status_code == 200
        text = response.text
        for card in response.json()["cards"]:  # fresh per call: uuids and the signed link
            for value in [card["uuid"], *(s["uuid"] for s in card.get("suggestions", [])),
                          *(link["url"] for link in card.get("links", []))]:
                text = text.replace(value, "")
        return json.loads(text)

    with_lane = create_app(development=True)
    without = create_app(development=True)
    without.user_middleware = [m for m in without.user_middleware if m.cls is not FastLane]
    call = hook_call(example)
    assert cards(TestClient(with_lane), call) == cards(TestClient(without), call)
