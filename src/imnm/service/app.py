"""The imnm web service: REST assessment, knowledge, and a CDS Hooks 2.0 patient-view service.

Create it with :func:`create_app`. Authentication follows CDS Hooks: a JWT bearer token from an
allow-listed issuer on every call (discovery included) unless the app was created explicitly
in development mode, which it then says at start-up. The token is checked before the body is
read, and bodies are capped (:mod:`imnm.service.guard`). A card's link to the full report is
signed, names the user it was issued to and expires after :data:`REPORT_LINK_SECONDS`.
Nothing here logs tokens or patient data.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Body, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError

from imnm import __version__
from imnm.assessment import assess, triage
from imnm.errors import InputError, Problem, shorten
from imnm.fhir import from_bundle, is_bundle
from imnm.knowledge import load_knowledge
from imnm.patient import MAX_AGE_YEARS, load_patient
from imnm.service.cards import cards_for
from imnm.service.cdshooks import (
    Card,
    CardsResponse,
    Discovery,
    Feedback,
    HookRequest,
    PatientViewContext,
    Service,
)
from imnm.service.guard import DEFAULT_MAX_BODY_BYTES, Guard
from imnm.service.lane import FastLane
from imnm.service.security import TokenVerifier
from imnm.service.shared import SharedTable

LOG = logging.getLogger("imnm.service")
SERVICE_ID = "imnm-patient-view"
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
}
REPORT_TTL_SECONDS = 3600
REPORT_CAPACITY = 1000
REPORT_LINK_SECONDS = 600
"""How long a card's link to the full report opens it (operational): long enough to read the
card and click, short enough that a link copied out of the EHR soon stops working."""

# As in the population screen: weakness is rarely coded in an EHR, so the hook does not
# require it (parameter suspicion_require_proximal_weakness).
HOOK_PARAMETERS = {"suspicion_require_proximal_weakness": False}

FhirFetcher = Callable[[str, str, str | None], Any]


def _fetch_fhir(base: str, query: str, token: str | None) -> Any:  # pragma: no cover - network
    import httpx

    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = httpx.get(f"{base.rstrip('/')}/{query}", headers=headers, timeout=10.0)
    response.raise_for_status()
    return response.json()


@dataclass
class Reports:
    """The children behind recent cards, by an unguessable id, for the cards' links (bounded,
    expiring). The report is assessed and rendered again when its link is opened."""

    _items: OrderedDict[str, tuple[float, str]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, patient_json: str) -> str:
        key = str(uuid.uuid4())
        with self._lock:
            self._items[key] = (time.time() + REPORT_TTL_SECONDS, patient_json)
            while len(self._items) > REPORT_CAPACITY:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
        if item is None or item[0] < time.time():
            return None
        return item[1]


class SharedReports(Reports):
    """:class:`Reports` that several worker processes share, so a card's link made by one
    worker opens on any; bounded like :class:`Reports`: the newest :data:`REPORT_CAPACITY`
    children in all (each of the ``workers`` keeps its share), each for
    :data:`REPORT_TTL_SECONDS`.

    Each worker writes its own SQLite file in ``folder`` and the key names the file, so any
    worker can read it. With one file for all, every hook call of every worker queued for the
    same write lock. Measured on the 2-core machine, each process inserting 4 KB reports with
    1.3 ms of other work between them: with 4 processes an insert took p99 4.2 ms (max 8 to
    16 ms, on the event loop) with one file, against 0.7 to 0.9 ms (max 5 to 6 ms) with a file
    each; with 2, p99 1.3 against 0.9 ms and p99.9 3.0 to 3.5 against 1.6 ms (p50 about 90 µs
    either way)."""

    def __init__(self, folder: str, workers: int = 1) -> None:
        super().__init__()
        self._folder = folder
        self._capacity = -(-REPORT_CAPACITY // max(workers, 1))  # the service's bound, shared
        self._tables: dict[str, SharedTable] = {}  # by worker (process id)

    def _table(self, worker: str) -> SharedTable | None:
        """The worker's file: this process's own is opened (created) to write; another's only
        when it exists, so a key names no file into being."""
        path = os.path.join(self._folder, f"reports-{worker}.db")
        with self._lock:  # the hook (event loop) and the report page (a thread) both come here
            table = self._tables.get(worker)
            if table is None:
                if worker != str(os.getpid()) and not os.path.exists(path):
                    return None
                table = self._tables[worker] = SharedTable(path, "reports",
                                                           capacity=self._capacity)
            return table

    def put(self, patient_json: str) -> str:
        worker = str(os.getpid())
        table = self._table(worker)
        assert table is not None  # noqa: S101 - this process's own file is always opened
        key = f"{worker}-{uuid.uuid4()}"
        table.insert(key, time.time() + REPORT_TTL_SECONDS, patient_json)
        return key

    def get(self, key: str) -> str | None:
        worker, sep, _ = key.partition("-")
        table = self._table(worker) if sep and worker.isdigit() else None
        return table.get(key) if table is not None else None


def over_age_limit(patient: Mapping[str, Any], today: dt.date | None = None) -> bool:
    """True when the Patient's birth date puts them above imnm's age limit today."""
    birth_date = patient.get("birthDate")
    if not isinstance(birth_date, str):  # absent or not a date: the reader says which
        return False
    try:
        born = dt.date.fromisoformat(birth_date[:10])
    except ValueError:
        return False  # unknown age: assessed, and the assessment says what is missing
    when = today or dt.date.today()
    return (when - born).days / 365.25 > MAX_AGE_YEARS


def _cards_response(cards: list[Card]) -> Response:
    """The cards as JSON, serialised once: returning the model would have FastAPI validate it
    again against ``response_model`` (which stays for the OpenAPI description)."""
    return Response(CardsResponse(cards=cards).model_dump_json(exclude_none=True),
                    media_type="application/json")


def _problems(exc: InputError) -> list[dict[str, str]]:
    # The service never echoes submitted values: field and expectation only.
    return [{"field": p.field, "expected": p.expected} for p in exc.problems]


def _needs_token(method: str, path: str) -> bool:
    return path == "/assess" or path == "/cds-services" or path.startswith("/cds-services/")


def create_app(verifier: TokenVerifier | None = None, *, development: bool = False,
               fetch_fhir: FhirFetcher = _fetch_fhir, registry: Any = None,
               base_url: str | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               link_secret: str | None = None, reports: Reports | None = None) -> FastAPI:
    """The service. Without ``verifier`` it refuses to start unless ``development`` is set.

    ``base_url`` is the URL clients call (``https://imnm.example.org``): tokens must name it
    (plus the path) as their audience, cards link to it, and the clinic checks that forms are
    posted from it. It is required with a ``verifier``: the request's Host header is never
    trusted for it. ``reports`` keeps the children behind the cards' links: in this process
    unless given (:class:`SharedReports` for the worker processes of one service).
    """
    if verifier is None and not development:
        raise ValueError("create_app: give a TokenVerifier, or development=True to run "
                         "without authentication")
    if verifier is not None and not base_url:
        raise ValueError("create_app: give base_url, the URL clients call (tokens' audience "
                         "is built from it, never from the Host header)")
    if base_url and not base_url.startswith(("https://", "http://")):
        raise ValueError(f"create_app: base_url: got {base_url!r}; expected an http(s) URL")
    own_base = base_url.rstrip("/") if base_url else None
    link_key = (link_secret or secrets.token_hex(32)).encode()
    knowledge = load_knowledge()
    reports = reports if reports is not None else Reports()
    feedback_counts: dict[str, int] = {"accepted": 0, "overridden": 0}
    # API docs with Swagger UI's files served from the package, so /docs works without internet.
    app = FastAPIOffline(title="imnm", version=__version__,
                  description="Explained assessment of pediatric immune-mediated necrotizing "
                              "myopathy, and a CDS Hooks 2.0 patient-view service.")
    if development:
        LOG.warning("imnm service in DEVELOPMENT MODE: no authentication. Never expose it.")

    def authenticate(path: str, headers: dict[str, str]) -> dict[str, Any]:
        assert verifier is not None and own_base is not None  # noqa: S101 - checked above
        return verifier.verify(headers.get("authorization"), own_base + path)

    def sign(key: str, user: str, expires: int) -> str:
        return hmac.new(link_key, f"{key}|{user}|{expires}".encode(), hashlib.sha256
                        ).hexdigest()

    @app.exception_handler(InputError)
    async def _bad_input(_request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"problems": _problems(exc)})

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"problems": [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "expected": e.get("msg", "")}
            for e in exc.errors()]})

    @app.post("/assess", summary="Assess one child (patient JSON or FHIR R4 Bundle)")
    def post_assess(body: Annotated[dict[str, Any], Body(description="A patient file or a "
                                                         "FHIR R4 Bundle.")]) -> JSONResponse:
        report = None
        if is_bundle(body):
            patient, report = from_bundle(body)
        else:
            patient = load_patient(body)
        result = assess(patient).to_dict()
        if report is not None:
            result["import_report"] = {"ignored": report.ignored,
                                       "unrecognised_codes": report.unrecognised_codes,
                                       "notes": report.notes}
        return JSONResponse(result)

    @app.get("/knowledge", summary="The sources imnm rests on")
    def get_knowledge() -> list[dict[str, Any]]:
        return [{"id": s.id, "citation": s.citation, "doi": s.doi, "url": s.url,
                 "kind": s.kind} for s in knowledge.sources.values()]

    @app.get("/cds-services", response_model=Discovery, response_model_exclude_none=True,
             summary="CDS Hooks discovery")
    def discovery() -> Discovery:
        return Discovery(services=[Service(
            hook="patient-view", id=SERVICE_ID, title="imnm: pediatric IMNM",
            description="Flags children with an unconfirmed muscular-dystrophy label and a "
                        "raised CK for anti-HMGCR and anti-SRP testing, and reviews IMNM "
                        "classification and red flags.", prefetch=PREFETCH)])

    @app.post(f"/cds-services/{SERVICE_ID}", response_model=CardsResponse,
              response_model_exclude_none=True, summary="CDS Hooks patient-view service",
              responses={412: {"description": "No prefetch and no FHIR server to call"}})
    async def patient_view(request: Request, call: HookRequest) -> Response:
        # async, so the call runs on the event loop: reading and triage take about 1 ms of
        # CPU, and handing a sync endpoint to a thread cost more than that (GIL hand-over;
        # 4.9 ms against 2.2 ms per call, measured in process). Only the FHIR server, when
        # the EHR sent no prefetch, is awaited in a thread.
        if call.hook != "patient-view":
            raise InputError([Problem("hook", "", "patient-view")])
        try:
            context = PatientViewContext.model_validate(call.context)
        except ValidationError:
            raise InputError([Problem("context", "", "userId, and patientId (and encounterId) "
                                      "as FHIR ids: letters, digits, '-' and '.', at most 64")
                              ]) from None
        # null is "no data" (CDS Hooks: "If the CDS Client has no data to populate a template
        # prefetch key, the prefetch template key MUST have a value of null"): nothing to read,
        # not something missing. Any other value that is not a JSON object cannot be a resource
        # or a Bundle: refused by name, never dropped (a list of conditions is not "none").
        prefetch = dict(call.prefetch or {})
        wrong = [Problem(f"prefetch.{k}", shorten(v), "a FHIR resource or Bundle (a JSON "
                         "object), or null for no data") for k, v in prefetch.items()
                 if k in PREFETCH and v is not None and not isinstance(v, Mapping)]
        if wrong:
            raise InputError(wrong)
        # A prefetch the EHR failed to fill can arrive as an OperationOutcome (CDS Hooks 2.0):
        # that is missing data, never "no conditions".
        for key in [k for k, v in prefetch.items() if k in PREFETCH and isinstance(v, Mapping)
                    and v.get("resourceType") == "OperationOutcome"]:
            del prefetch[key]
        token = call.fhirAuthorization.access_token if call.fhirAuthorization else None
        missing = [k for k in PREFETCH if k not in prefetch]
        if missing and call.fhirServer:
            for key in missing:
                query = PREFETCH[key].replace("{{context.patientId}}", context.patientId)
                try:
                    fetched = await run_in_threadpool(fetch_fhir, call.fhirServer, query, token)
                except Exception:
                    LOG.info("FHIR server did not answer the %s query", key)
                    continue
                if isinstance(fetched, Mapping) and fetched.get("resourceType") not in (
                        None, "OperationOutcome"):
                    prefetch[key] = fetched
                else:
                    LOG.info("FHIR server answered the %s query with no resource", key)
            missing = [k for k in PREFETCH if k not in prefetch]
        # Whatever imnm could not get, by prefetch or from the server (a key the EHR left out,
        # as it must when its own fetch failed, or answered with an OperationOutcome), is said
        # (on a card of its own when no other card speaks), never read as an empty record.
        # What the server gave instead is not missing.
        unreadable = sorted(missing)
        if "patient" in missing or not prefetch.get("patient"):
            return JSONResponse(status_code=412, content={
                "problems": [{"field": "prefetch.patient", "expected": "prefetch or a FHIR "
                              "server imnm may call"}]})
        bundle = {"resourceType": "Bundle", "type": "collection",
                  "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "entry": [{"resource": v} for k, v in prefetch.items()
                            if k in PREFETCH and isinstance(v, Mapping)]}
        if over_age_limit(prefetch["patient"]):
            # patient-view fires for every patient: one outside imnm's age range gets no card.
            return _cards_response([])
        patient, report = from_bundle(bundle, validate="read")  # only what imnm reads

        def report_link() -> str:
            # The child is kept only when a card links to the report, and assessed in full
            # again when the link is opened.
            key = reports.put(patient.model_dump_json())
            base = own_base or str(request.base_url).rstrip("/")
            expires = int(time.time()) + REPORT_LINK_SECONDS
            return (f"{base}/reports/{key}?" + urlencode({
                "user": context.userId, "expires": expires,
                "signature": sign(key, context.userId, expires)}))

        return _cards_response(cards_for(
            triage(patient, knowledge=knowledge, parameters=HOOK_PARAMETERS), knowledge,
            patient_ref=f"Patient/{context.patientId}", report_link=report_link,
            missing_inputs=missing, unreadable_inputs=unreadable, not_read=report.ignored))

    @app.post(f"/cds-services/{SERVICE_ID}/feedback", summary="CDS Hooks feedback")
    def feedback(body: Feedback) -> dict[str, Any]:
        for item in body.feedback:
            feedback_counts[item.outcome] += 1
        return {}

    @app.get("/reports/{key}", response_class=HTMLResponse,
             summary="A full assessment linked from a card: the same page as the clinic's "
                     "PDF (assessment, plan table, course). The link is signed, names the "
                     f"user it was issued to and expires after {REPORT_LINK_SECONDS} s.",
             responses={403: {"description": "Unsigned, altered or expired link"},
                        404: {"description": "Unknown or expired report"}})
    def get_report(key: str, user: Annotated[str, Query(max_length=200)] = "",
                   expires: Annotated[int, Query()] = 0,
                   signature: Annotated[str, Query(max_length=128)] = "") -> Response:
        if not hmac.compare_digest(signature.encode(), sign(key, user, expires).encode()):
            LOG.warning("refused a report link: bad signature")
            return PlainTextResponse("this link is not valid", status_code=403)
        if expires < time.time():
            return PlainTextResponse("this link has expired: open the card again",
                                     status_code=403)
        item = reports.get(key)
        if item is None:
            return PlainTextResponse("not found", status_code=404)
        from imnm.service.web import chart_png, report_html

        patient = load_patient(item)
        result = assess(patient, parameters=HOOK_PARAMETERS)
        LOG.info("report opened by a link issued to %s", user)
        return HTMLResponse(report_html(patient, result, chart_png(patient, result)))

    app.state.feedback_counts = feedback_counts
    # The hook's well-formed calls skip FastAPI's machinery (imnm.service.lane); the Guard
    # (added last, so outermost) checks the token and caps the body of every request first.
    app.add_middleware(FastLane, path=f"/cds-services/{SERVICE_ID}", model=HookRequest,
                       endpoint=patient_view, problems=_problems)
    app.add_middleware(Guard, max_body_bytes=max_body_bytes,
                       needs_token=_needs_token,
                       authenticate=authenticate if verifier is not None else None)
    if registry is not None:
        from imnm.service.web import mount_web

        mount_web(app, registry, base_url=own_base)
    return app


def settle_for_serving() -> None:
    """Leave what exists once the service is built out of later garbage collections.

    The imported modules, the knowledge and the service hold about 70,000 objects that live
    as long as the process. Python's full collections walked them all: one took 58 ms under
    load, stalling every call in flight (a p99 matter). After ``gc.freeze`` the same
    collection took 8 ms. Called once per serving process, after the app is built.
    """
    gc.collect()
    gc.freeze()


SERVE_ENVIRONMENT = "IMNM_SERVE"
"""How `imnm serve --workers N` hands its configuration to each worker process (JSON)."""


def app_from_environment() -> FastAPI:
    """The service as `imnm serve` configured it, for each of several worker processes
    (uvicorn's factory): the same issuers, base URL, registry, body cap and card-link secret,
    and one replay cache shared by all workers."""
    import json
    import os

    from imnm.service.security import SharedReplayCache

    config = json.loads(os.environ[SERVE_ENVIRONMENT])
    verifier = None
    if config.get("issuers"):
        verifier = TokenVerifier(config["issuers"],
                                 replay=SharedReplayCache(config["replay_path"]))
    registry = None
    if config.get("registry"):
        from imnm.registry import Registry

        registry = Registry(config["registry"])
    app = create_app(verifier, development=bool(config.get("development")),
                     registry=registry, base_url=config["base_url"],
                     max_body_bytes=int(config["max_body_bytes"]),
                     link_secret=config["link_secret"],
                     reports=SharedReports(config["reports_folder"],
                                           workers=int(config.get("workers", 1))))
    settle_for_serving()
    return app
