"""The imnm command end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from imnm import assess, load_patient
from tests.conftest import EXAMPLES


def imnm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imnm.cli", *args], capture_output=True,
                          text=True, check=False)


def test_assess_json_has_the_documented_shape() -> None:
    run = imnm("assess", str(EXAMPLES / "lgmd-label-never-tested.json"), "--format", "json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["schema"] == "imnm.assessment/1"
    assert doc["classification"]["enmc_2017"]["class"] == "insufficient_data"
    assert isinstance(doc["classification"]["enmc_2017"]["missing"], list)
    assert doc["suspicion"]["test_for_imnm_antibodies"] is True
    assert all({"rule_id", "source", "conclusion", "facts", "missing", "status", "kind"}
               <= set(f) for f in doc["findings"])
    assert set(doc["sources"]) >= {f["source"] for f in doc["findings"]}


def test_cli_and_python_api_agree() -> None:
    path = EXAMPLES / "case-series-2025-patient-2.json"
    run = imnm("assess", str(path), "--format", "json")
    in_process = assess(load_patient(path.read_text(encoding="utf-8"))).to_dict()
    assert json.loads(run.stdout) == in_process


def test_many_files_give_a_json_array() -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.json"))
    run = imnm("assess", *files, "--format", "json")
    assert run.returncode == 0, run.stderr
    docs = json.loads(run.stdout)
    assert [d["patient_id"] for d in docs] == [
        json.loads(Path(f).read_text(encoding="utf-8"))["id"] for f in files]


def test_text_report_sections() -> None:
    run = imnm("assess", str(EXAMPLES / "case-series-2025-patient-1.json"))
    assert run.returncode == 0
    for heading in ("Could this be IMNM?", "Which subtype?", "What else could it be?",
                    "What to test next", "Red flags and cautions", "Sources"):
        assert f"\n{heading}\n" in run.stdout
    assert "ENMC 2017: anti-HMGCR IMNM" in run.stdout
    assert "Review the dystrophy label" in run.stdout


def test_markdown_report() -> None:
    run = imnm("assess", str(EXAMPLES / "anti-srp-line-blot.json"), "--format", "markdown")
    assert run.stdout.startswith("# Patient example-anti-srp")
    assert "## Which subtype?" in run.stdout
    assert "RED FLAG: Cardiac evaluation" in run.stdout


def test_knowledge_lists_sources_and_what_they_support() -> None:
    run = imnm("knowledge")
    assert run.returncode == 0
    assert "wang_liang_2023  (seed;" in run.stdout
    assert "10.3389/fneur.2023.1123380" in run.stdout
    doc = json.loads(imnm("knowledge", "--format", "json").stdout)
    enmc = next(s for s in doc if s["id"] == "enmc_224_2018")
    assert "unconfirmed" in enmc["statuses"]
    assert any(x.startswith("enmc_2017: anti_srp_imnm") for x in enmc["supports"])


def test_missing_file_is_bad_input() -> None:
    run = imnm("assess", "no-such-file.json")
    assert run.returncode == 2
    assert "no-such-file.json: (file)" in run.stderr and "Traceback" not in run.stderr


def test_add_user_reads_the_password_from_stdin_and_checks_the_schema(tmp_path: Path) -> None:
    from imnm.registry import Registry

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "imnm.cli", *args], input=stdin,
                              capture_output=True, text=True, check=False, timeout=120)

    db = tmp_path / "registry.db"
    url = f"sqlite:///{db}"
    never = cli("registry", "add-user", "--url", url, "dr-lee", "--password-stdin",
                stdin="long enough password\n")
    assert never.returncode == 2 and "Traceback" not in never.stderr
    assert f"run `imnm registry init --url {url}`" in never.stderr
    assert not db.exists()  # nothing half-made
    served = cli("serve", "--insecure-development", "--registry", url, "--port", "1")
    assert served.returncode == 2 and "imnm registry init" in served.stderr
    assert cli("registry", "init", "--url", url).returncode == 0
    no_terminal = cli("registry", "add-user", "--url", url, "dr-lee")
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr
    added = cli("registry", "add-user", "--url", url, "dr-lee", "--password-stdin",
                stdin="long enough password\n")
    assert added.returncode == 0, added.stderr
    registry = Registry(url)
    assert registry.login("dr-lee", "long enough password") is not None
    registry.close()


def test_rough_edges_of_the_command_line(tmp_path: Path) -> None:
    """Issue 13: load_patient given a path, Synthea notes flooding stderr, gzip'd Bundles,
    evidence summary without headers."""
    import gzip

    import pytest

    from imnm import InputError
    from tests.conftest import FIXTURES

    path = EXAMPLES / "jdm-classic.json"
    assert load_patient(path).id == load_patient(path.read_text()).id  # a Path is read
    with pytest.raises(InputError, match="not a file name"):
        load_patient(str(path))
    bundle = sorted((FIXTURES / "external" / "smart-synthea-r4-pediatric" / "bundles").glob(
        "*.json.gz"))[0]
    plain = tmp_path / "child.json"
    plain.write_bytes(gzip.decompress(bundle.read_bytes()))
    for given in (bundle, plain):
        run = imnm("assess", str(given))
        assert run.returncode == 0, run.stderr
        notes = run.stderr.splitlines()
        assert 1 <= len(notes) <= 15, len(notes)  # summarised, about 150 before
        assert any("Immunization not used" in n for n in notes)
    summary = imnm("evidence", "summary").stdout
    assert summary.splitlines()[2].split()[:4] == ["figure", "published", "recomputed", "agrees"]


def test_what_clinicians_read_is_in_words() -> None:
    """Issue 13: assess, plan and course for every example, with no machine id in the text
    (rule and source ids are references, and allowed)."""
    import re

    from imnm.knowledge import load_knowledge
    from imnm.report import render_markdown, render_text
    from imnm.report.treatment import render_course, render_plan
    from imnm.rules.response import evaluate
    from imnm.rules.treatment import build_plan
    from tests.test_web import assert_in_words

    kb = load_knowledge()
    for path in sorted(EXAMPLES.glob("*.json")):
        patient = load_patient(path.read_text(encoding="utf-8"))
        result = assess(patient)
        enmc = result.classification.enmc_2017
        text = "\n".join([render_text(result), render_markdown(result),
                          render_plan(build_plan(patient, kb, enmc.cls, enmc.caveats)),
                          render_course(evaluate(patient, kb, enmc.cls))])
        outside_brackets = re.sub(r"\[[^\]]*\]", "", text)
        assert_in_words(outside_brackets)
        ids = set(re.findall(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b", outside_brackets))
        assert ids <= set(kb.sources), (path.name, sorted(ids - set(kb.sources)))


PLUGIN_PROBE = """
import json, sys
sys.argv = ["imnm", "assess", sys.argv[1], "--format", "json"]
import imnm.cli
try:
    imnm.cli.main()
except SystemExit:
    pass
loader = sys.modules["pydantic.plugin._loader"]
print(json.dumps([getattr(loader, "__file__", None) is not None, list(loader.get_plugins()),
                  "importlib.metadata" in sys.modules]), file=sys.stderr)
"""


def test_pydantics_plugin_loader_is_stood_in_for_only_while_plugins_are_off() -> None:
    """imnm.cli replaces pydantic's plugin loader (which imports importlib.metadata) only when
    PYDANTIC_DISABLE_PLUGINS turns every plugin off; the assessment is the same either way."""
    import os

    example = str(EXAMPLES / "case-series-2025-patient-1.json")
    runs = {}
    for setting in (None, ""):
        env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
        if setting is not None:
            env["PYDANTIC_DISABLE_PLUGINS"] = setting
        run = subprocess.run([sys.executable, "-c", PLUGIN_PROBE, example], env=env,
                             capture_output=True, text=True, check=True)
        runs[setting] = (json.loads(run.stderr.strip().splitlines()[-1]), run.stdout)
    (real, plugins, metadata), stood_in_output = runs[None]
    assert (real, plugins, metadata) == (False, [], False)  # the stand-in; no importlib.metadata
    (real, _plugins, _metadata), own_output = runs[""]
    assert real  # plugins wanted: pydantic's own loader
    assert json.loads(stood_in_output) == json.loads(own_output)
    assert json.loads(own_output)["patient_id"]
