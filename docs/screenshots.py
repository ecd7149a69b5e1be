"""Screenshots of the clinic's main pages for the README (docs/img/*.png). Run by hand after
a change to the pages:

    .venv/bin/python docs/screenshots.py

Starts the service on loopback with a throwaway registry holding the example children, drives
Debian's Chromium with Playwright (as tests/test_web.py does), and writes: the login page, the
worklist of children, a child's assessment and plan, the course section, the entry form, and
the first page of the PDF report (with pdftoppm, when installed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "img"


def main() -> None:
    from playwright.sync_api import sync_playwright
    from tests.conftest import live_uvicorn
    from tests.test_web import CHROMIUM, CHROMIUM_ARGS

    from imnm.patient import load_patient
    from imnm.registry import Registry, migrate
    from imnm.service.app import create_app

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/registry.db"
        migrate(url)
        registry = Registry(url)
        registry.create_user("dr-lee", "correct horse battery", "clinician")
        doctor = registry.login("dr-lee", "correct horse battery")
        if doctor is None:
            raise SystemExit("could not log in to the throwaway registry")
        for path in sorted((ROOT / "examples").glob("*.json")):
            registry.save_patient(load_patient(path.read_text(encoding="utf-8")), doctor)
        with live_uvicorn(lambda base: create_app(development=True, registry=registry,
                                                  base_url=base)) as site, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900},
                                    accept_downloads=True)
            page.goto(f"{site}/login")
            page.screenshot(path=str(OUT / "login.png"))
            page.fill("#username", "dr-lee")
            page.fill("#password", "correct horse battery")
            page.click("button[type=submit]")
            page.wait_for_url(f"{site}/patients")
            page.screenshot(path=str(OUT / "patients.png"), full_page=True)
            page.goto(f"{site}/patients/dang-le-2025-case-1-course")
            page.screenshot(path=str(OUT / "child.png"))
            page.locator("#plan").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "plan.png"))
            page.locator("#course").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "course.png"))
            with page.expect_download() as download:
                page.click("#pdf")
            pdf = Path(folder) / "report.pdf"
            download.value.save_as(pdf)
            page.goto(f"{site}/patients/new")
            page.screenshot(path=str(OUT / "new-child.png"))
            browser.close()
        pdftoppm = shutil.which("pdftoppm")
        if pdftoppm:
            subprocess.run([pdftoppm,  # noqa: S603 - our own temporary file "-r", "70", "-png", "-f", "1", "-l", "1", str(pdf),
                            str(OUT / "report-page")], check=True)
        registry.close()
    for image in sorted(OUT.glob("*.png")):
        print(image.relative_to(ROOT))


if __name__ == "__main__":
    main()
