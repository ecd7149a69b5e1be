"""The clinic's web page in a real browser: Playwright driving Debian's Chromium against a
real uvicorn. Fill the form for the first patient of the 2025 case series, see the anti-HMGCR
classification and the plan, download the PDF; a screenshot is kept in tests/artifacts/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imnm.registry import Registry, migrate
from imnm.service.app import create_app
from tests.conftest import live_uvicorn

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'registry.db'}"
    migrate(url)
    registry = Registry(url, secret="web-test")  # noqa: S106 - test pseudonym key
    registry.create_user("doctor", "correct horse battery", "clinician")
    registry.create_user("analyst", "research only!", "researcher")
    with live_uvicorn(lambda base: create_app(development=True, registry=registry,
                                              base_url=base)) as base:
        yield base
    registry.close()


def test_case_series_patient_entered_assessed_and_reported(site: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True)
        page.goto(f"{site}/")
        page.fill("#username", "doctor")
        page.fill("#password", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"{site}/patients")
        page.click("text=new child")
        # Dang & Le 2025, case 1, at referral (weight and height illustrative, for doses).
        page.fill("#id", "dang-le-case-1-web")
        page.select_option("#sex", "female")
        page.fill("#age_years", "17")
        page.fill("#as_of", "2025-09-01")
        page.fill("#weight_value", "45")
        page.select_option("#weight_unit", "kg")
        page.fill("#height_value", "155")
        page.select_option("#height_unit", "cm")
        page.fill("#onset_age_years", "7")
        page.select_option("#onset_pattern", "insidious")
        page.fill("#w_proximal_upper", "3")
        page.fill("#w_proximal_lower", "3")
        page.select_option("#w_neck_flexors_weaker_than_extensors", "yes")
        page.select_option("#ck_interpretation", "elevated")
        page.select_option("#ab_HMGCR", "positive")
        page.select_option("#ab_SRP", "negative")
        page.select_option("#b_conclusion", "necrotizing_myopathy")
        page.select_option("#b_fatty_replacement", "yes")
        page.select_option("#x_dysphagia", "no")
        page.select_option("#s_any_skin_lesion", "no")
        page.fill("#dx_label", "muscular dystrophy")
        page.click("#save")
        page.wait_for_url(f"{site}/patients/dang-le-case-1-web")
        assert "anti-HMGCR IMNM" in page.inner_text("#enmc-class")
        body = page.inner_text("body")
        assert "review the label" in body
        plan = page.inner_text("#plan-table")
        assert "prednisolone\t45-60 mg per day (capped)" in plan
        assert "IVIg early" in body
        assert_in_words(body)
        page.screenshot(path=str(ARTIFACTS / "case-series-patient-1.png"), full_page=True)
        with page.expect_download() as download_info:
            page.click("#pdf")
        pdf = tmp_path / "report.pdf"
        download_info.value.save_as(pdf)
        browser.close()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    shutil.copy(pdf, ARTIFACTS / "case-series-patient-1.pdf")


def test_form_errors_are_shown_with_field_and_expectation(site: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{site}/login")
        page.fill("#username", "doctor")
        page.fill("#password", "correct horse battery")
        page.click("button[type=submit]")
        page.goto(f"{site}/patients/new")
        page.fill("#id", "too-old")
        page.fill("#age_years", "40")
        page.click("#save")
        problems = page.inner_text("#problems")
        assert "age_years: got 40.0; expected an age of at most 25 years" in problems
        browser.close()


MACHINE_WORDS = ("anti_hmgcr_imnm", "anti_srp_imnm", "seronegative_imnm", "not_imnm",
                 "insufficient_data", "mycophenolate_mofetil", "neck_flexor_predominance",
                 "test_for_antibodies", "review_dystrophy_label", "unknown kg", "- -")


def assert_in_words(text: str) -> None:
    """Issue 13: what a clinician reads carries no machine id."""
    found = [w for w in MACHINE_WORDS if w in text]
    assert not found, found


def csrf_of(client: Any, path: str = "/patients") -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None, f"no CSRF token on {path}"
    return found.group(1)


def login(client: Any, username: str, password: str) -> Any:
    """Log in as a browser does: fetch the form (and its login-CSRF cookie), then post it."""
    token = csrf_of(client, "/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf": token})


def test_researcher_sees_pseudonyms_and_cannot_write(site: str) -> None:
    import httpx

    with httpx.Client(base_url=site, follow_redirects=False) as client:
        response = login(client, "analyst", "research only!")
        assert response.status_code == 303
        listing = client.get("/patients").text
        assert "dang-le-case-1-web" not in listing and "subject-" in listing
        assert_in_words(listing)
        assert client.get("/patients/new").status_code == 403
        assert client.post("/patients/new", data={"id": "x", "csrf": csrf_of(client)}
                           ).status_code == 403
        assert client.get("/patients/dang-le-case-1-web").status_code == 404
    with httpx.Client(base_url=site, follow_redirects=False) as anonymous:
        assert anonymous.get("/patients").status_code == 303  # to the login page
    forged = {"imnm_session": "doctor|clinician|9999999999|forged"}
    with httpx.Client(base_url=site, follow_redirects=False, cookies=forged) as forger:
        assert forger.get("/patients").status_code == 303


def test_the_page_shows_the_class_caveat_before_the_doses(site: str) -> None:
    # Issue 11 item 2: the caveat of a provisional class travels to the clinic's page.
    import httpx

    example = (Path(__file__).parent.parent / "examples" / "anti-srp-line-blot.json")
    with httpx.Client(base_url=site, follow_redirects=False) as client:
        login(client, "doctor", "correct horse battery")
        uploaded = client.post("/patients/upload", files={"file": ("p.json", example.read_bytes())},
                               data={"csrf": csrf_of(client)})
        assert uploaded.status_code == 303, uploaded.text
        text = client.get(uploaded.headers["location"]).text
    assert "confirm before treating" in text
    assert text.index("confirm before treating") < text.index('id="plan-table"')


def test_a_treatment_and_three_visits_on_the_page_show_the_refractory_verdict(
        site: str, tmp_path: Path) -> None:
    """Issue 13: a clinician enters a child, a treatment and three visits on the page, and the
    page and the PDF show the course verdict and the escalation, as `imnm course` does."""
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 900})
        page.goto(f"{site}/login")
        page.fill("#username", "doctor")
        page.fill("#password", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"{site}/patients")
        page.click("text=new child")
        page.fill("#id", "web-course-1")
        page.select_option("#sex", "female")
        page.fill("#age_years", "12")
        page.fill("#as_of", "2024-09-01")
        page.fill("#weight_value", "40")
        page.select_option("#weight_unit", "kg")
        page.fill("#height_value", "150")
        page.select_option("#height_unit", "cm")
        page.fill("#w_proximal_upper", "3")
        page.fill("#w_proximal_lower", "3")
        page.select_option("#ab_HMGCR", "positive")
        page.fill("#ck_value", "12000")
        page.fill("#ck_upper_limit", "190")
        page.select_option("#t1_drug", "prednisolone")  # the form's own treatment fields
        page.fill("#t1_dose_value", "1")
        page.select_option("#t1_dose_unit", "mg/kg")
        page.select_option("#t1_route", "oral")
        page.select_option("#t1_frequency", "daily")
        page.fill("#t1_start", "2024-01-01")
        page.click("#save")
        page.wait_for_url(f"{site}/patients/web-course-1")
        assert "No visits recorded yet" in page.inner_text("#course ~ p")
        page.select_option("#t_drug", "methotrexate")  # a treatment added on the page
        page.fill("#t_dose_value", "15")
        page.select_option("#t_dose_unit", "mg")
        page.select_option("#t_route", "sc")
        page.select_option("#t_frequency", "weekly")
        page.fill("#t_start", "2024-01-01")
        page.click("#add-treatment")
        page.wait_for_url(f"{site}/patients/web-course-1")
        for day, ck in (("2024-01-01", "12000"), ("2024-04-01", "9000"),
                        ("2024-08-01", "8000")):
            page.fill("#visit_date", day)
            page.fill("#visit_ck_value", ck)
            page.fill("#visit_ck_upper_limit", "190")
            page.fill("#visit_mrc_proximal", "3")
            page.click("#add-visit")
            page.wait_for_url(f"{site}/patients/web-course-1")
        verdict = page.inner_text("#course-verdict")
        assert "Refractory since 2024-08-01" in verdict
        assert "Escalation: consider IVIg (not yet given)" in verdict
        rows = page.locator("#course-table tbody tr")
        assert rows.count() == 3 and "refractory" in rows.nth(2).inner_text()
        body = page.inner_text("body")
        assert_in_words(body)
        page.screenshot(path=str(ARTIFACTS / "course-on-the-page.png"), full_page=True)
        with page.expect_download() as download_info:
            page.click("#pdf")
        pdf = tmp_path / "report.pdf"
        download_info.value.save_as(pdf)
        browser.close()
    text = " ".join(p.extract_text() for p in PdfReader(str(pdf)).pages)
    text = " ".join(text.split())
    assert "Refractory since 2024-08-01" in text and "consider IVIg (not yet given)" in text
    assert "dose for this child" in text  # the plan table
    assert_in_words(text)
    shutil.copy(pdf, ARTIFACTS / "course-report.pdf")
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm:  # pages as PNG, to be looked at (tests/artifacts/course-report-N.png)
        import subprocess

        subprocess.run([pdftoppm, "-r", "60", "-png", str(pdf),
                        str(ARTIFACTS / "course-report")], check=True, timeout=60)
