"""The README's Quick start and .ci/run stay in step, and the README's examples run."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == quick_start_commands()[1]


def test_readme_python_example_runs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.+?)\n```", text, re.S)
    assert code is not None
    program = code.group(1) + (
        "\nprint(result.suspicion.test_for_imnm_antibodies,"
        " result.classification.enmc_2017.cls)"
    )
    run = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "True insufficient_data"


def test_readme_cli_examples_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    course = "examples/case-series-2025-patient-1-course.json"
    for args in (["assess", "examples/jdm-classic.json", "--format", "markdown"],
                 ["schema"], ["knowledge"], ["plan", course],
                 ["dose", "methotrexate", "--weight", "25", "--height", "125"],
                 ["course", course, "--plot", str(tmp_path / "course.png")],
                 ["evidence", "summary", "--with-cases", "--store", str(tmp_path / "store")],
                 ["evidence", "compare", "--figure", str(tmp_path / "compare.png")]):
        run = subprocess.run([sys.executable, "-m", "imnm.cli", *args], cwd=ROOT,
                             capture_output=True, text=True, check=False)
        assert run.returncode == 0, (args, run.stderr)


def test_quick_start_demo_runs_and_says_how_to_open_the_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "demo", "--patients", "2000",
                          "--folder", str(tmp_path / "demo")], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "screened 2,000 synthetic children on DuckDB" in run.stdout
    assert ("case-series patient 1: ENMC 2017 anti-HMGCR IMNM; review the dystrophy label: yes"
            in run.stdout)
    assert "registry with 11 example children" in run.stdout
    assert "serve --insecure-development --registry sqlite:///" in run.stdout
    assert "browse http://127.0.0.1:8000/ and log in as clinician-" in run.stdout
