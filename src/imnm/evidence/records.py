"""Literature records and the patient-level case records linked to them.

Shipped with the package: the 2025 case series (``data/cases/dang_le_2025.json``) and its two
patients. Added by users: records imported with ``imnm evidence add`` into a store folder
(``--store``, else ``$IMNM_EVIDENCE_DIR``, else ``~/.local/share/imnm/evidence``). Every write
goes to a temporary file first and is renamed into place, so an interrupted write leaves
nothing half written; importing the same DOI twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imnm.errors import InputError, Problem, shorten
from imnm.patient import Patient, load_patient

_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_RECORD_ID = r"^doi_[a-z0-9_]{1,200}$"  # what record_id() makes: safe as a file name
_POSTER_CODE = re.compile(r"^\d+P(?=[A-Z])")  # e.g. "20PRituximab ..." in conference exports


class LiteratureRecord(BaseModel):
    """A published paper, as a literature database exports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable id derived from the DOI.", pattern=_RECORD_ID)
    title: str
    title_as_exported: str
    authors: tuple[str, ...]
    doi: str
    journal: str | None
    volume: str | None = None
    pages: str | None = None
    date: dt.date | None
    abstract: str | None
    url: str | None = None

    @field_validator("doi")
    @classmethod
    def _doi(cls, value: str) -> str:
        if not _DOI.match(value):
            raise ValueError("a DOI such as 10.1016/j.nmd.2025.105484")
        return value.lower()


class CaseRecord(BaseModel):
    """One patient of a published paper, as an imnm patient file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    literature_id: str = Field(pattern=_RECORD_ID)
    initial_diagnosis: str | None = Field(
        None, description="The first diagnosis the child was given, as published.")
    patient: Patient


_Stored = TypeVar("_Stored", LiteratureRecord, CaseRecord)


def record_id(doi: str) -> str:
    """A file-safe id for a DOI."""
    return "doi_" + re.sub(r"[^a-z0-9]+", "_", doi.lower()).strip("_")


def parse_export(text: str) -> LiteratureRecord:
    """Read a literature-database export (the format of the 2025 case-series seed): a JSON
    object with title, authors, doi, journal, publicationDate and abstract, possibly followed
    by free text, which is ignored."""
    try:
        data, _end = json.JSONDecoder().raw_decode(text.lstrip())
    except json.JSONDecodeError as exc:
        raise InputError([Problem(f"(line {exc.lineno}, column {exc.colno})",
                                  "(malformed JSON)", f"a JSON export record: {exc.msg}")]
                         ) from None
    if not isinstance(data, dict):
        raise InputError([Problem("(file)", shorten(type(data).__name__), "a JSON object")])
    problems: list[Problem] = []
    title = data.get("title")
    doi = data.get("doi") or ""
    if not isinstance(title, str) or not title.strip():
        problems.append(Problem("title", shorten(title), "the paper's title"))
    if not isinstance(doi, str) or not _DOI.match(doi):
        problems.append(Problem("doi", shorten(doi), "a DOI such as 10.1016/j.nmd.2025.105484"))
    date_text = data.get("publicationDate") or data.get("EPubDate") or None
    date = None
    if date_text:
        try:
            date = dt.date.fromisoformat(str(date_text)[:10])
        except ValueError:
            problems.append(Problem("publicationDate", shorten(date_text), "a date YYYY-MM-DD"))
    if problems:
        raise InputError(problems)
    authors_raw = data.get("authors") or ""
    authors = tuple(a.strip() for a in str(authors_raw).split(",") if a.strip())
    journal_raw = data.get("journal")
    journal = journal_raw.get("name") if isinstance(journal_raw, dict) else journal_raw
    journal = journal or data.get("PeriodicalName")
    abstract = data.get("abstract")
    if isinstance(abstract, str):
        abstract = re.sub(r"<[^>]+>", "", abstract).strip() or None
    clean_title = _POSTER_CODE.sub("", str(title).strip())
    try:
        return LiteratureRecord(
            id=record_id(doi), title=clean_title, title_as_exported=str(title),
            authors=authors, doi=doi, journal=journal,
            volume=(str(journal_raw.get("volume")).strip() or None)
            if isinstance(journal_raw, dict) and journal_raw.get("volume") else None,
            pages=(str(journal_raw.get("pages")).strip() or None)
            if isinstance(journal_raw, dict) and journal_raw.get("pages") else None,
            date=date, abstract=abstract, url=data.get("ListUrlMain") or data.get("url"))
    except ValidationError as exc:
        raise InputError([Problem(".".join(str(p) for p in e["loc"]), shorten(e.get("input")),
                                  e["msg"]) for e in exc.errors(include_url=False)]) from None


def check_store(store: Path) -> Path:
    """``store`` if it can be a store folder (absent, or a folder); else InputError."""
    if store.exists() and not store.is_dir():
        raise InputError([Problem("--store", shorten(str(store)),
                                  "a folder (or a path where one can be made), not a file")])
    return store


def _inside(store: Path, path: Path) -> Path:
    """``path``, refused if it would leave ``store`` (defence in depth behind the id check)."""
    if not path.resolve().is_relative_to(store.resolve()):
        raise InputError([Problem("(record id)", shorten(path.name),
                                  "a record id that names a file inside the store")])
    return path


def _read_stored(model: type[_Stored], path: Path) -> _Stored:
    """A record from the store; a file that is not one is an InputError naming it."""
    try:
        return model.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError([Problem(str(path), f"({type(exc).__name__})",
                                  f"a {model.__name__} as imnm wrote it; move the file away "
                                  "or add the record again")]) from None


def default_store() -> Path:
    """Where added records live: ``$IMNM_EVIDENCE_DIR`` or ``~/.local/share/imnm/evidence``."""
    env = os.environ.get("IMNM_EVIDENCE_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "imnm" / "evidence"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_literature(record: LiteratureRecord, store: Path) -> tuple[Path, bool]:
    """Store ``record``; returns its path and whether anything was written."""
    check_store(store)
    path = _inside(store, store / "literature" / f"{record.id}.json")
    text = record.model_dump_json(indent=2) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path, False
    _write_atomically(path, text)
    return path, True


def add_case(case: CaseRecord, store: Path) -> tuple[Path, bool]:
    """Store a case record; its literature record must be shipped or stored already."""
    check_store(store)
    known = {r.id for r in literature(store)}
    if case.literature_id not in known:
        raise InputError([Problem("literature_id", shorten(case.literature_id),
                                  "the id of a literature record added first "
                                  "(`imnm evidence add`)")])
    path = _inside(store, store / "cases" / f"{case.literature_id}__{case.patient.id}.json")
    text = case.model_dump_json(indent=2, exclude_none=False) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path, False
    _write_atomically(path, text)
    return path, True


def _shipped() -> dict[str, Any]:
    path = Path(str(resources.files("imnm.evidence") / "data" / "cases" / "dang_le_2025.json"))
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def literature(store: Path | None = None) -> list[LiteratureRecord]:
    """Shipped literature records, then those in ``store``."""
    records = [LiteratureRecord.model_validate(_shipped()["literature"])]
    if store is not None:
        check_store(store)
    if store is not None and (store / "literature").is_dir():
        for path in sorted(check_store(store).joinpath("literature").glob("*.json")):
            records.append(_read_stored(LiteratureRecord, path))
    return records


def cases(store: Path | None = None) -> list[CaseRecord]:
    """Shipped case records, then those in ``store``."""
    shipped = _shipped()
    out = [CaseRecord(literature_id=shipped["literature"]["id"],
                      initial_diagnosis=c.get("initial_diagnosis"),
                      patient=load_patient(c["patient"]))
           for c in shipped["cases"]]
    if store is not None:
        check_store(store)
    if store is not None and (store / "cases").is_dir():
        for path in sorted(check_store(store).joinpath("cases").glob("*.json")):
            out.append(_read_stored(CaseRecord, path))
    return out
