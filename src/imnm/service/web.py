"""The clinic's web pages, server-rendered: log in, enter or upload a child, see the assessment,
the plan with doses and the course chart, add visits, download a PDF report.

Clinicians read and write; researchers read de-identified records only. The session is a
signed cookie (HMAC-SHA256 with the server's secret) holding the username and an expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import UploadFile as StarletteUpload

from imnm.assessment import Assessment, assess
from imnm.errors import InputError, Problem
from imnm.fhir import is_bundle
from imnm.knowledge import load_knowledge
from imnm.patient import Antibody, Patient, Visit, load_patient
from imnm.registry import Account, Forbidden, Registry, RegistryError
from imnm.report.text import outline
from imnm.report.treatment import render_plan
from imnm.rules.treatment import build_plan

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
COOKIE = "imnm_session"
SESSION_SECONDS = 8 * 3600
TRI = {"yes": True, "no": False}


def _sign(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


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
    if text("dx_label"):
        diagnosis = {"label": text("dx_label")}
        if text("dx_system") and text("dx_code"):
            diagnosis |= {"system": text("dx_system"), "code": text("dx_code")}
        data["diagnoses"] = [diagnosis]
    return data


def _chart(patient: Patient) -> bytes | None:
    if not patient.visits and not patient.treatments:
        return None
    import tempfile

    from imnm.report.plot import plot_course
    from imnm.rules.response import evaluate

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "course.png"
        since = None
        if len(patient.visits) >= 2:
            cls = assess(patient).classification.enmc_2017.cls
            since = evaluate(patient, load_knowledge(), cls).refractory_since
        plot_course(patient, path, refractory_since=since)
        return path.read_bytes()


def _view(patient: Patient, result: Assessment) -> dict[str, Any]:
    knowledge = load_knowledge()
    enmc = result.classification.enmc_2017
    plan = build_plan(patient, knowledge, enmc.cls, enmc.caveats)
    return {"patient": patient, "assessment": result, "sections": outline(result),
            "plan_text": render_plan(plan), "enmc": result.classification.enmc_2017.cls,
            "test_flag": result.suspicion.test_for_imnm_antibodies}


def mount_web(app: FastAPI, registry: Registry, secret: str | None = None) -> None:
    """Add the web pages to ``app``."""
    key = (secret or secrets.token_hex(32)).encode()
    router = APIRouter(include_in_schema=False)

    def account(request: Request) -> Account | None:
        raw = request.cookies.get(COOKIE, "")
        try:
            username, role, expiry, signature = raw.split("|")
        except ValueError:
            return None
        if not hmac.compare_digest(signature, _sign(key, f"{username}|{role}|{expiry}")):
            return None
        if int(expiry) < time.time():
            return None
        return Account(username, role)  # type: ignore[arg-type]

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, name, {"user": account(request), **context},
                                          status_code=status)

    def login_required(request: Request) -> Account | RedirectResponse:
        user = account(request)
        return user if user is not None else RedirectResponse("/login", status_code=303)

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

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return page(request, "login.html")

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        user = registry.login(str(form.get("username", "")), str(form.get("password", "")))
        if user is None:
            return page(request, "login.html", 401, error="Unknown user or wrong password.")
        expiry = str(int(time.time()) + SESSION_SECONDS)
        value = f"{user.username}|{user.role}|{expiry}"
        response = RedirectResponse("/patients", status_code=303)
        response.set_cookie(COOKIE, f"{value}|{_sign(key, value)}", httponly=True,
                            samesite="strict", max_age=SESSION_SECONDS)
        return response

    @router.get("/logout")
    def logout() -> Response:
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
            rows.append({"id": patient.id, "enmc": result.classification.enmc_2017.cls,
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
                    antibodies=list(Antibody))

    @router.post("/patients/new", response_class=HTMLResponse)
    async def create_patient(request: Request) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        form = {k: str(v) for k, v in (await request.form()).items()}
        try:
            patient = load_patient(form_to_patient(form))
            registry.save_patient(patient, user)
        except InputError as exc:
            return page(request, "form.html", 422, values=form, problems=exc.problems,
                        antibodies=list(Antibody))
        except Forbidden:
            return page(request, "error.html", 403, message="Researchers cannot add records.")
        return RedirectResponse(f"/patients/{patient.id}", status_code=303)

    @router.post("/patients/upload", response_class=HTMLResponse)
    async def upload(request: Request) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        form = await request.form()
        file = form.get("file")
        raw = await file.read() if isinstance(file, StarletteUpload) else b""
        await form.close()  # the upload's temporary file, closed at once
        try:
            data = json.loads(raw)
            if is_bundle(data):
                record_id, _ = registry.import_bundle(data, user)
            else:
                patient = load_patient(data)
                registry.save_patient(patient, user)
                record_id = patient.id
        except json.JSONDecodeError as exc:
            problems = [Problem("(file)", "(malformed JSON)", f"valid JSON: {exc.msg}")]
            return page(request, "form.html", 422, values={}, problems=problems,
                        antibodies=list(Antibody))
        except InputError as exc:
            return page(request, "form.html", 422, values={}, problems=exc.problems,
                        antibodies=list(Antibody))
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
        audit = registry.audit(patient.id) if user.role == "clinician" else []
        return page(request, "patient.html", audit=audit, key=key_, **_view(patient, result))

    @router.post("/patients/{key_}/visits", response_class=HTMLResponse)
    async def add_visit(request: Request, key_: str) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        form = {k: str(v).strip() for k, v in (await request.form()).items()}
        visit: dict[str, Any] = {k: form[k] for k in ("date", "mmt8", "cmas", "mrc_proximal",
                                                       "mrs", "chaq") if form.get(k)}
        if form.get("ck_value"):
            visit["ck"] = {"value": form["ck_value"], "unit": form.get("ck_unit") or "U/L"}
            if form.get("ck_upper_limit"):
                visit["ck"]["upper_limit"] = form["ck_upper_limit"]
        try:
            registry.add_visit(lookup(user, key_), Visit.model_validate(visit), user)
        except Forbidden:
            return page(request, "error.html", 403, message="Researchers cannot add visits.")
        except (InputError, ValueError) as exc:
            message = str(exc).splitlines()[0][:300]
            return page(request, "error.html", 422, message=f"Visit not saved: {message}")
        return RedirectResponse(f"/patients/{key_}", status_code=303)

    @router.get("/patients/{key_}/course.png")
    def chart(request: Request, key_: str) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        image = _chart(registry.patient(lookup(user, key_), user))
        if image is None:
            return Response(status_code=404)
        return Response(image, media_type="image/png")

    @router.get("/patients/{key_}/report.pdf")
    def pdf(request: Request, key_: str) -> Response:
        user = login_required(request)
        if isinstance(user, RedirectResponse):
            return user
        from weasyprint import HTML

        patient = registry.patient(lookup(user, key_), user)
        result = assess(patient)
        image = _chart(patient)
        html = TEMPLATES.get_template("report.html").render(
            chart=base64.b64encode(image).decode() if image else None,
            sources=result.sources, **_view(patient, result))
        buffer = io.BytesIO()
        HTML(string=html).write_pdf(buffer)
        return Response(buffer.getvalue(), media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="imnm-{patient.id}.pdf"'})

    app.include_router(router)
