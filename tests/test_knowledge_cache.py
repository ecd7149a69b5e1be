"""The knowledge cache only ever saves time: what it returns equals a load from the files, a
change to a file or to imnm's code is never served an old object, and a cache that is
corrupt, foreign, switched off or unwritable changes nothing but the time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imnm.errors import KnowledgeError
from imnm.knowledge import _cache, _loader, load_from, load_knowledge

DATA = Path(load_knowledge().directory)


def _fresh_load(directory: Path) -> object:
    """What load_knowledge does in a new process (its per-process memo bypassed)."""
    return _loader.load_knowledge.__wrapped__(str(directory))


def _never_from_files(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("loaded from the files: the cache was not used")

    monkeypatch.setattr(_loader, "load_from", refuse)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(_cache.ENV, str(folder))
    return folder


@pytest.fixture
def data(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    return copy


def test_a_second_load_comes_from_the_cache_and_equals_the_files(
        cache: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _fresh_load(data)
    files = list(cache.glob("knowledge-*.pickle"))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o077 == 0  # private to this user
    _never_from_files(monkeypatch)
    second = _fresh_load(data)
    assert second == first == load_from(data)
    assert second is not first


def test_a_changed_file_is_loaded_again_not_served_from_the_cache(
        cache: Path, data: Path) -> None:
    before = _fresh_load(data)
    parameters = data / "parameters.toml"
    text = parameters.read_text(encoding="utf-8")
    assert 'id = "input_max_age_years"' in text
    parameters.write_text(text.replace("# ", "#  ", 1), encoding="utf-8")
    after = _fresh_load(data)
    assert after.digest != before.digest  # type: ignore[attr-defined]
    assert after.digest == load_from(data).digest  # type: ignore[attr-defined]
    assert len(list(cache.glob("knowledge-*.pickle"))) == 2


def test_a_change_to_imnms_code_changes_the_key(data: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    files = _loader.read_files(data)
    key = _cache.key(data, files)
    models = sys.modules["imnm.knowledge._models"]
    edited = tmp_path / "_models.py"
    edited.write_bytes(Path(str(models.__file__)).read_bytes() + b"\n# edited\n")
    monkeypatch.setattr(models, "__file__", str(edited))
    assert _cache.key(data, files) != key


def test_a_corrupt_cache_file_is_ignored_and_replaced(cache: Path, data: Path) -> None:
    expected = _fresh_load(data)
    (path,) = cache.glob("knowledge-*.pickle")
    path.write_bytes(b"not a pickle")
    assert _fresh_load(data) == expected
    assert path.read_bytes() != b"not a pickle"


def test_a_cache_file_others_can_write_is_not_trusted(
        cache: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh_load(data)
    (path,) = cache.glob("knowledge-*.pickle")
    path.chmod(0o666)
    loads = []
    real = _loader.load_from
    monkeypatch.setattr(_loader, "load_from", lambda *a: loads.append(a) or real(*a))
    _fresh_load(data)
    assert len(loads) == 1


def test_an_empty_setting_turns_the_cache_off(
        tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_cache.ENV, "")
    monkeypatch.chdir(tmp_path)
    _fresh_load(data)
    assert _cache.folder() is None
    assert not list(tmp_path.rglob("knowledge-*.pickle"))


def test_an_unwritable_cache_folder_is_skipped(
        tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv(_cache.ENV, str(blocker / "cache"))
    assert _fresh_load(data) == load_from(data)


def test_a_knowledge_base_with_a_problem_is_never_cached(cache: Path, data: Path) -> None:
    (data / "sources.toml").unlink()
    with pytest.raises(KnowledgeError):
        _fresh_load(data)
    assert not cache.exists() or not list(cache.glob("knowledge-*.pickle"))


def test_a_cold_start_from_the_cache_builds_no_knowledge_validator(tmp_path: Path) -> None:
    """What the cache is for: a second process takes the knowledge without building the
    knowledge models' validators (pydantic builds them on first validation)."""
    script = ("import imnm.knowledge._models as m, imnm\n"
              "kb = imnm.load_knowledge()\n"
              "print(kb.parameters['input_max_age_years'].value, "
              "m.Parameter.__pydantic_complete__)\n")
    env = {**os.environ, _cache.ENV: str(tmp_path / "cache")}
    run = [sys.executable, "-c", script]
    cold = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    warm = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    value = load_knowledge().parameters["input_max_age_years"].value
    assert cold.split() == [str(value), "True"]  # loaded from the files: validators built
    assert warm.split() == [str(value), "False"]  # from the cache: none built


def test_importing_the_cli_or_the_fhir_reader_imports_no_more_than_it_needs() -> None:
    script = ("import sys, imnm.cli\n"
              "print('imnm.assessment' in sys.modules, 'imnm.knowledge' in sys.modules)\n"
              "from imnm.fhir import load_any\n"
              "print('imnm.fhir.write' in sys.modules)\n"
              "import imnm\n"
              "print(imnm.assess.__module__, sorted(set(imnm.__all__) - set(dir(imnm))))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:3] == ["False False", "False", "imnm.assessment []"]
