"""The clinic's web pages, server-rendered: log in, enter or upload a child, see the assessment,
the plan with doses and the course chart, add visits, download a PDF report.

Clinicians read and write; researchers read de-identified records only.

Security, as SECURITY.md promises:

- The session cookie holds a random token; the session lives in the registry (so logging out
  ends it everywhere, for every worker) and expires after :data:`SESSION_SECONDS`. The cookie
  is HttpOnly, SameSite=Strict, and Secure when the service's base URL is https.
- Every state-changing request (POST) must come from the service's own origin (the Origin
  header, when the browser sends one) and carry the session's CSRF token; the login form carries
  a login-CSRF token of its own (double-submit cookie). Logout is a POST.
- Logins are limited per account (lockout in the registry) and per address
  (:data:`ADDRESS_FAILURES` wrong logins in :data:`ADDRESS_WINDOW_SECONDS`).
"""

from __future__ import annotations

import base64
import hmac
import io
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from imnm.assessment import Assessment, assess
from imnm.errors import InputError, Problem
from imnm.fhir import is_bundle
from imnm.jsonio import parse_json
from imnm.knowledge import load_knowledge
from imnm.patient import Antibody, Drug, Patient, Visit, load_patient
from imnm.patient.reading import _problem_from_pydantic
from imnm.registry import (
    LOCK_AFTER_FAILURES,
    LOCK_SECONDS,
    Account,
    Forbidden,
    Registry,
    RegistryError,
)
from imnm.report.view import child_view

LOG = logging.getLogger("imnm.service.web")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
COOKIE = "imnm_session"
LOGIN_COOKIE = "imnm_login"
SESSION_SECONDS = 8 * 3600
"""A working day; operational."""
ADDRESS_FAILURES = 20
"""Wrong logins from one address that make it wait (operational)."""
ADDRESS_WINDOW_SECONDS = 15 * 60
"""The window those failures are counted in, and the wait."""
TRI = {"yes": True, "no": False}


class Throttle:
    """Failures per key (a client address) in a sliding window, in this process."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] < now - self.window:
            times.popleft()
        return times

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key, time.time())) >= self.limit

    def failed(self, key: str) -> None:
        with self._lock:
            now = time.time()
            self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bounded: forget the quietest addresses
                for stale in [k for k, v in self._failures.items() if not v][:50_000]:
                    del self._failures[stale]


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _number(value: str) -> float | None:
    value = value.strip()
    return float(value) if value else None


def form_to_patient(form: dict[str, str]) -> dict[str, Any]:
    """Turn the entry form's fields into a patient file (empty fields left out)."""
    def text(name: str) -> str:
        return form.get(name, "").strip()

    data: dict[str, Any] = {"id": text("id")}
    for name in ("sex", "birth_date", "as_of", "notes"):
        if text(name):
            data[name] = text(name)
    if text("age_years"):
        data["age_years"] = text("age_years")
    for name in ("weight", "height"):
        if text(f"{name}_value"):
            data[name] = {"value": text(f"{name}_value"), "unit": text(f"{name}_unit")}
    onset = {k: text(f"onset_{k}") for k in ("date", "age_years", "presentation_date",
                                             "pattern") if text(f"onset_{k}")}
    if onset:
        data["onset"] = onset
    weakness: dict[str, Any] = {k: text(f"w_{k}") for k in (
        "proximal_upper", "proximal_lower", "distal_upper", "distal_lower", "neck_flexors",
        "neck_extensors") if text(f"w_{k}")}
    for k in ("symmetric", "neck_flexors_weaker_than_extensors", "proximal_weakness"):
        if text(f"w_{k}") in TRI:
            weakness[k] = TRI[text(f"w_{k}")]
    if weakness:
        data["weakness"] = weakness
    if text("ck_value") or text("ck_interpretation"):
        ck = {"unit": text("ck_unit") or "U/L"}
        for k in ("value", "upper_limit", "date", "interpretation"):
            if text(f"ck_{k}"):
                ck[k] = text(f"ck_{k}")
        data["ck"] = [ck]
    antibodies = {a.value: text(f"ab_{a.name}") for a in Antibody if text(f"ab_{a.name}")}
    if antibodies:
        data["antibodies"] = antibodies
    biopsy: dict[str, Any] = {k: text(f"b_{k}") for k in ("conclusion", "mac", "p62")
                              if text(f"b_{k}")}
    for k in ("necrosis", "perifascicular_atrophy", "rimmed_vacuoles", "fatty_replacement"):
        if text(f"b_{k}") in TRI:
            biopsy[k] = TRI[text(f"b_{k}")]
    if biopsy:
        data["biopsy"] = biopsy
    if text("genetic_result"):
        data["genetic_testing"] = {"done": True, "result": text("genetic_result"),
                                   "genes": [g.strip() for g in text("genetic_genes").split(",")
                                             if g.strip()]}
    if text("family_nmd") in TRI:
        data["family_history"] = {"neuromuscular_disease": TRI[text("family_nmd")]}
    extra: dict[str, Any] = {k: TRI[text(f"x_{k}")] for k in (
        "dysphagia", "interstitial_lung_disease", "cardiac") if text(f"x_{k}") in TRI}
    skin = {k: TRI[text(f"s_{k}")] for k in ("any_skin_lesion", "heliotrope_rash",
                                            "gottron_papules") if text(f"s_{k}") in TRI}
    if skin:
        extra["skin"] = skin
    if extra:
        data["extramuscular"] = extra
    exposures = {k: TRI[text(f"e_{k}")] for k in ("statin", "red_yeast_rice", "mushrooms",
                                                   "pu_erh_tea") if text(f"e_{k}") in TRI}
    if exposures:
        data["exposures"] = exposures
    if text("oe_analyte") and text("oe_value"):
        enzyme = {"analyte": text("oe_analyte"), "value": text("oe_value"),
                  "unit": text("oe_unit") or "U/L"}
        if text("oe_upper_limit"):
            enzyme["upper_limit"] = text("oe_upper_limit")
        data["other_enzymes"] = [enzyme]
    mri: dict[str, Any] = {k: TRI[text(f"mri_{k}")] for k in (
        "oedema", "fatty_replacement", "fascial_oedema", "symmetric") if text(f"mri_{k}") in TRI}
    if mri or text("mri_date"):
        data["mri"] = mri | ({"date": text("mri_date")} if text("mri_date") else {})
    if text("inf_present") in TRI:
        data["preceding_infection"] = {"present": TRI[text("inf_present")]} | (
            {"weeks_before_onset": text("inf_weeks_before_onset")}
            if text("inf_weeks_before_onset") else {})
    treatments = [t for i in (1, 2) if (t := form_to_treatment(form, f"t{i}_"))]
    if treatments:
        data["treatments"] = treatments
    visits = [v for i in (1, 2, 3) if (v := form_to_visit(form, f"v{i}_"))]
    if visits:
        data["visits"] = visits
    if text("dx_label"):
        diagnosis = {"label": text("dx_label")}
        if text("dx_system") and text("dx_code"):
            diagnosis |= {"system": text("dx_system"), "code": text("dx_code")}
        data["diagnoses"] = [diagnosis]
    return data


def form_to_treatment(form: dict[str, str], prefix: str) -> dict[str, Any] | None:
    """One treatment from fields named ``prefix`` + drug, dose_value, ... (None for a row
    left empty). A row with a dose, dates or a route but no drug is refused, never dropped."""
    def text(name: str) -> str:
        return form.get(prefix + name, "").strip()

    if not text("drug"):
        labels = {"dose_value": "dose", "start": "start date", "end": "end date",
                  "name": "product name", "route": "route", "frequency": "frequency"}
        filled = [label for n, label in labels.items() if text(n)]
        if filled:
            raise InputError([Problem(f"{prefix}drug", "(none)",
                                      f"a drug chosen: this treatment row has "
                                      f"{', '.join(filled)} filled in")])
        return None
    treatment: dict[str, Any] = {"drug": text("drug")}
    for name in ("name", "route", "frequency", "start", "end"):
        if text(name):
            treatment[name] = text(name)
    if text("dose_value"):
        treatment["dose"] = {"value": text("dose_value"), "unit": text("dose_unit") or "mg"}
    return treatment


def form_to_visit(form: dict[str, str], prefix: str = "") -> dict[str, Any] | None:
    """One visit from fields named ``prefix`` + date, ck_value, mmt8, ... (None if no date
    and nothing else)."""
    def text(name: str) -> str:
        return form.get(prefix + name, "").strip()

    visit: dict[str, Any] = {k: text(k) for k in ("date", "mmt8", "cmas", "mrc_proximal",
                                                   "mrs", "chaq") if text(k)}
    if text("ck_value"):
        visit["ck"] = {"value": text("ck_value"), "unit": text("ck_unit") or "U/L"}
        if text("ck_upper_limit"):
            visit["ck"]["upper_limit"] = text("ck_upper_limit")
    return visit or None


class _NotSaved(Exception):
    """A record the page's form could not make (the message says what to enter)."""


def _visit_problems(exc: ValidationError) -> list[Problem]:
    return [_problem_from_pydantic(e) for e in exc.errors(include_url=False)]


def chart_png(patient: Patient, result: Assessment | None = None) -> bytes | None:
    """The course chart as PNG (None without visits); ``result``, when the caller has the
    child's assessment already, spares assessing again."""
    if not patient.visits:  # no course to draw: never an empty chart on a made-up axis
        return None
    import tempfile

    from imnm.report.plot import plot_course
    from imnm.rules.response import evaluate

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "course.png"
        since = None
        if len(patient.visits) >= 2:
            cls = (result or assess(patient)).classification.enmc_2017.cls
            since = evaluate(patient, load_knowledge(), cls).refractory_since
        plot_course(patient, path, refractory_since=since)
        return path.read_bytes()


def _view(patient: Patient, result: Assessment) -> dict[str, Any]:
    return {"patient": patient, "view": child_view(patient, result)}


def _choices() -> dict[str, Any]:
    """The drop-down lists of the forms, in words."""
    kb = load_knowledge()
    return {"drugs": [(d.value, kb.label("drug", d.value)) for d in Drug],
            "routes": [(r, kb.label("route", r)) for r in ("oral", "iv", "sc", "im")],
            "antibodies": list(Antibody)}


def report_html(patient: Patient, result: Assessment, chart: bytes | None) -> str:
    """The report as one HTML page: the PDF's source, and what a CDS card's link opens."""
    image = f"data:image/png;base64,{base64.b64encode(chart).decode()}" if chart else None
    return TEMPLATES.get_template("report.html").render(chart=image, **_view(patient, result))


def mount_web(app: FastAPI, registry: Registry, *, base_url: str | None = None) -> None:
    """Add the web pages to ``app``. ``base_url`` is the origin forms must come from (by
    default the request's own); an https one makes the cookies Secure."""
    router = APIRouter(include_in_schema=False)
    secure = bool(base_url and base_url.startswith("https://"))
    throttle = Throttle(ADDRESS_FAILURES, ADDRESS_WINDOW_SECONDS)

    def origin_of(request: Request) -> str:
        if base_url:
            parts = urlsplit(base_url)
            return f"{parts.scheme}://{parts.netloc}"
        return f"{request.url.scheme}://{request.url.netloc}"

    def current(request: Request) -> tuple[Account, str] | None:
        """The request's session, looked up in the registry once per request."""
        if not hasattr(request.state, "imnm_session"):
            request.state.imnm_session = registry.session(request.cookies.get(COOKIE, ""))
        found: tuple[Account, str] | None = request.state.imnm_session
        return found

    def account(request: Request) -> Account | None:
        found = current(request)
        return found[0] if found else None

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        found = current(request)
        return TEMPLATES.TemplateResponse(request, name, {
            "user": found[0] if found else None, "csrf": found[1] if found else "",
            **context}, status_code=status)

    def login_required(request: Request) -> Account | RedirectResponse:
        user = account(request)
        return user if user is not None else RedirectResponse("/login", status_code=303)

    def cross_site(request: Request) -> bool:
        origin = request.headers.get("origin")
        return origin is not None and origin != origin_of(request)

    async def checked_form(request: Request) -> tuple[Account, Any] | Response:
        """The form of a state-changing request from a logged-in user, or the refusal: not
        logged in, from another origin, or without the session's CSRF token."""
        found = current(request)
        if found is None:
            return RedirectResponse("/login", status_code=303)
        if cross_site(request):
            LOG.warning("refused a cross-origin POST to %s", request.url.path)
            return page(request, "error.html", 403, message="Refused: this form was not sent "
                        "from this site.")
        form = await request.form()
        if not _same(str(form.get("csrf", "")), found[1]):
            await form.close()
            LOG.warning("refused a POST to %s without the session's CSRF token",
                        request.url.path)
            return page(request, "error.html", 403, message="Refused: the form has expired "
                        "or was not sent from this site. Go back, reload and send it again.")
        return found[0], form

    def lookup(user: Account, key_: str) -> str:
        if user.role == "clinician":
            return key_
        for record_id in registry.record_ids():
            if registry.pseudonym(record_id) == key_:
                return record_id
        raise RegistryError("record: not found")

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return RedirectResponse("/patients" if account(request) else "/login", status_code=303)

    def login_page(request: Request, status: int = 200, error: str | None = None
                   ) -> Response:
        token = secrets.token_urlsafe(32)
        response = page(request, "login.html", status, login_csrf=token, error=error)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                            secure=secure, max_age=3600)
        return response

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return login_page(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        address = request.client.host if request.client else "?"
        form = await request.form()
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if cross_site(request) or not expected or not _same(str(form.get("csrf", "")),
                                                            expected):
            LOG.warning("refused a login form not sent from this site")
            return login_page(request, 403, "The login form has expired or was not sent from "
                              "this site: try again.")
        if throttle.blocked(address):
            LOG.warning("refused a login from %s: too many failures", address)
            return login_page(request, 429, "Too many failed logins from this address: wait "
                              f"{ADDRESS_WINDOW_SECONDS // 60} minutes.")
        username = str(form.get("username", ""))[:64]
        user = registry.login(username, str(form.get("password", ""))[:1024])
        if user is None:
            throttle.failed(address)
            LOG.warning("failed login from %s", address)
            return login_page(request, 401, "Unknown user or wrong password (after "
                              f"{LOCK_AFTER_FAILURES} failures an account waits "
                              f"{LOCK_SECONDS // 60} minutes).")
        token, _csrf = registry.open_session(user, SESSION_SECONDS)
        response = RedirectResponse("/patients", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure,
                            max_age=SESSION_SECONDS)
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        checked = await checked_form(request)
        if isinstance(checked, Response):
            return checked
        registry.close_session(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @router.get("/patients", response_class=HTMLResponse)
    def patients(request: Request) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        rows = []
        for patient in registry.patients(user):
            result = assess(patient)
            rows.append({"id": patient.id, "enmc": load_knowledge().label(
                "enmc_class", result.classification.enmc_2017.cls),
                         "test": result.suspicion.test_for_imnm_antibodies,
                         "review": result.suspicion.review_dystrophy_label})
        return page(request, "patients.html", rows=rows)

    @router.get("/patients/new", response_class=HTMLResponse)
    def new_patient(request: Request) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        if user.role != "clinician":
            return page(request, "error.html", 403, message="Researchers cannot add records.")
        return page(request, "form.html", values={}, problems=[],
                    **_choices())

    @router.post("/patients/new", response_class=HTMLResponse)
    async def create_patient(request: Request) -> Response:
        checked = await checked_form(request)
        if isinstance(checked, Response):
            return checked
        user = checked[0]
        form = {k: str(v) for k, v in checked[1].items() if k != "csrf"}
        try:
            patient = load_patient(form_to_patient(form))
            registry.save_patient(patient, user)
        except InputError as exc:
            return page(request, "form.html", 422, values=form, problems=exc.problems,
                        **_choices())
        except Forbidden:
            return page(request, "error.html", 403, message="Researchers cannot add records.")
        return RedirectResponse(f"/patients/{patient.id}", status_code=303)

    @router.post("/patients/upload", response_class=HTMLResponse)
    async def upload(request: Request) -> Response:
        checked = await checked_form(request)
        if isinstance(checked, Response):
            return checked
        user, form = checked
        file = form.get("file")
        raw = await file.read() if isinstance(file, StarletteUpload) else b""
        await form.close()  # the upload's temporary file, closed at once
        try:
            data = parse_json(raw, "(uploaded file)")
            if is_bundle(data):
                record_id, _ = registry.import_bundle(data, user)
            else:
                patient = load_patient(data)
                registry.save_patient(patient, user)
                record_id = patient.id
        except InputError as exc:
            return page(request, "form.html", 422, values={}, problems=exc.problems,
                        **_choices())
        except Forbidden:
            return page(request, "error.html", 403, message="Researchers cannot add records.")
        return RedirectResponse(f"/patients/{record_id}", status_code=303)

    @router.get("/patients/{key_}", response_class=HTMLResponse)
    def show(request: Request, key_: str) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        try:
            patient = registry.patient(lookup(user, key_), user)
        except RegistryError:
            return page(request, "error.html", 404, message="No such record.")
        result = assess(patient)
        audit = [e | {"at": e["at"][:16].replace("T", " ")}
                 for e in (registry.audit(patient.id) if user.role == "clinician" else [])]
        chart_url = f"/patients/{key_}/course.png" if patient.visits else None
        return page(request, "patient.html", audit=audit, key=key_, chart=chart_url,
                    values={}, **_choices(), **_view(patient, result))

    async def record(request: Request, key_: str, what: str,
                     save: Callable[[Account, str, dict[str, str]], object]) -> Response:
        """Save a visit or a treatment from the page's form (under the child's row lock);
        a refusal or an error comes back as a page naming the field and what was expected."""
        checked = await checked_form(request)
        if isinstance(checked, Response):
            return checked
        user, raw = checked
        form = {k: str(v).strip() for k, v in raw.items()}
        try:
            save(user, key_, form)
        except Forbidden:
            return page(request, "error.html", 403, message=f"Researchers cannot add {what}s.")
        except RegistryError:
            return page(request, "error.html", 404, message="No such record.")
        except _NotSaved as exc:
            return page(request, "error.html", 422,
                        message=f"{what.capitalize()} not saved: {exc}.")
        except ValidationError as exc:
            message = "; ".join(str(p) for p in _visit_problems(exc))
            return page(request, "error.html", 422,
                        message=f"{what.capitalize()} not saved: {message}")
        except InputError as exc:
            message = "; ".join(str(p) for p in exc.problems)[:500]
            return page(request, "error.html", 422,
                        message=f"{what.capitalize()} not saved: {message}")
        return RedirectResponse(f"/patients/{key_}", status_code=303)

    def save_visit(user: Account, key_: str, form: dict[str, str]) -> None:
        visit = Visit.model_validate(form_to_visit(form) or {})
        registry.add_visit(lookup(user, key_), visit, user)

    def save_treatment(user: Account, key_: str, form: dict[str, str]) -> None:
        treatment = form_to_treatment(form, "t_")
        if treatment is None:
            raise _NotSaved("choose a drug")
        registry.add_treatment(lookup(user, key_), treatment, user)

    @router.post("/patients/{key_}/visits", response_class=HTMLResponse)
    async def add_visit(request: Request, key_: str) -> Response:
        return await record(request, key_, "visit", save_visit)

    @router.post("/patients/{key_}/treatments", response_class=HTMLResponse)
    async def add_treatment(request: Request, key_: str) -> Response:
        return await record(request, key_, "treatment", save_treatment)

    @router.get("/patients/{key_}/course.png")
    def chart(request: Request, key_: str) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        try:
            image = chart_png(registry.patient(lookup(user, key_), user))
        except RegistryError:
            return Response(status_code=404)
        if image is None:
            return Response(status_code=404)
        return Response(image, media_type="image/png")

    @router.get("/patients/{key_}/report.pdf")
    def pdf(request: Request, key_: str) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        from weasyprint import HTML

        try:
            patient = registry.patient(lookup(user, key_), user)
        except RegistryError:
            return page(request, "error.html", 404, message="No such record.")
        result = assess(patient)
        html = report_html(patient, result, chart_png(patient, result))
        buffer = io.BytesIO()
        HTML(string=html).write_pdf(buffer)
        return Response(buffer.getvalue(), media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="imnm-{patient.id}.pdf"'})

    app.include_router(router)
