"""The screen's code sets as OHDSI ATLAS concept-set expressions.

Each file holds ``{"items": [...]}``, one item per code: ``concept`` (CONCEPT_ID, CONCEPT_CODE,
VOCABULARY_ID, CONCEPT_NAME, ...), ``isExcluded`` false, ``includeDescendants`` true (the
screen expands every code set by CONCEPT_ANCESTOR, as OHDSI does) and ``includeMapped``
false. An analyst loads them in ATLAS to inspect the phenotype's building blocks.

imnm's knowledge base holds codes, not OMOP concept ids (code_sets.toml: the ids are local to
a vocabulary release and were not taken from a published source), except the drug products of
results.toml. So the ids come from the site's own vocabulary (``--vocab``): each code is looked
up by vocabulary and code, and a prefix entry (G71.0: every code that starts with it) becomes
every concept it matches. Without a vocabulary, or for a code the vocabulary lacks, CONCEPT_ID
is null and ``index.json`` lists the code as unresolved: ATLAS cannot import an item without
an id, so the command says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imnm.codes import CodeSystem
from imnm.knowledge import Knowledge
from imnm.screen.definition import LABEL_AND_TEST_SETS, OMOP_VOCABULARIES

SCREEN_SETS = (*LABEL_AND_TEST_SETS, "drug")
SPLIT_BY_CONCEPT = ("antibody_test", "drug")  # the screen tells these sets' concepts apart
VOCABULARY_ID = {system: vocabulary for vocabulary, system in OMOP_VOCABULARIES.items()}
CONCEPT_COLUMNS = ("concept_id", "concept_name", "domain_id", "vocabulary_id",
                   "concept_class_id", "standard_concept", "concept_code", "invalid_reason")


class ConceptSetError(ValueError):
    """A concept-set file or the vocabulary cannot be read (names it)."""


@dataclass(frozen=True)
class Wanted:
    """One knowledge entry to express: a code (or prefix) of a vocabulary."""

    vocabulary_id: str
    code: str
    prefix: bool
    name: str
    concept_id: int | None = None


@dataclass
class Exported:
    """What was written, and which codes have no concept id."""

    directory: Path
    files: list[str] = field(default_factory=list)
    items: int = 0
    unresolved: list[str] = field(default_factory=list)
    unreadable: dict[str, int] = field(default_factory=dict)  # vocabulary values not read


def _groups(kb: Knowledge) -> dict[tuple[str, str | None], list[Wanted]]:
    groups: dict[tuple[str, str | None], list[Wanted]] = {}
    for entry in kb.codes:
        if entry.set not in SCREEN_SETS:
            continue
        concept = entry.concept if entry.set in SPLIT_BY_CONCEPT else None
        groups.setdefault((entry.set, concept), []).append(Wanted(
            VOCABULARY_ID[entry.system], entry.code, entry.match == "prefix", entry.display))
    ingredients = {c.code: c.concept for c in kb.codes_in("drug")}
    for product in kb.products:
        concept = ingredients.get(product.ingredient)
        if concept is None:
            continue
        groups.setdefault(("drug", concept), []).append(Wanted(
            VOCABULARY_ID[CodeSystem.rxnorm], product.rxcui, False, product.name,
            product.omop_concept_id))
    return groups


class _Vocabulary:
    """CONCEPT from a site's vocabulary (a DuckDB file or a folder of CSV/Parquet)."""

    def __init__(self, location: str) -> None:
        from imnm.screen.engines import DuckDBEngine, InputUnusable
        from imnm.screen.sources import OMOP_TABLES

        self.engine = DuckDBEngine()
        try:
            found = self.engine.register_vocabulary(location)
        except InputUnusable as exc:
            raise ConceptSetError(str(exc).replace("--omop", "--vocab")) from None
        except Exception as exc:
            from imnm.screen.run import _engine_error, _engine_message

            if not _engine_error(exc):
                raise
            raise ConceptSetError(f"--vocab: {_engine_message(exc)}") from None
        if "concept" not in found:
            raise ConceptSetError(f"--vocab: got {location!r}; it holds no CONCEPT table")
        need = next(t for t in OMOP_TABLES if t.name == "concept")
        missing = [c for c, _ in need.required if c not in self.engine.columns("concept")]
        if missing:
            raise ConceptSetError(f"--vocab: CONCEPT lacks columns {', '.join(missing)}")
        # values present but unreadable (an id that is not a number): said, never dropped
        self.unreadable = {f"CONCEPT.{column}": n for column, n in
                           self.engine.conform(need).items()}
        have = self.engine.columns("concept")
        self.columns = [c for c in CONCEPT_COLUMNS if c in have]

    def find(self, wanted: Wanted) -> list[dict[str, Any]]:
        select = ", ".join(self.columns)
        if wanted.concept_id is not None:
            where, args = "concept_id = CAST(? AS BIGINT)", [str(wanted.concept_id)]
        elif wanted.prefix:
            where, args = "vocabulary_id = ? AND starts_with(concept_code, ?)", [
                wanted.vocabulary_id, wanted.code]
        else:
            where, args = "vocabulary_id = ? AND concept_code = ?", [wanted.vocabulary_id,
                                                                       wanted.code]
        cursor = self.engine.con.execute(
            f"SELECT {select} FROM concept WHERE ({where}) AND concept_id IS NOT NULL "  # noqa: S608
            "ORDER BY concept_code",
            args)
        return [dict(zip(self.columns, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.engine.close()


def _item(wanted: Wanted, row: dict[str, Any] | None) -> dict[str, Any]:
    row = row or {}
    standard = row.get("standard_concept") or None
    invalid = row.get("invalid_reason") or None
    concept_id = row.get("concept_id", wanted.concept_id)
    return {"concept": {
        "CONCEPT_ID": None if concept_id is None else int(concept_id),
        "CONCEPT_NAME": row.get("concept_name") or wanted.name,
        "STANDARD_CONCEPT": standard,
        # unknown (None) until the concept is found in a vocabulary
        "STANDARD_CONCEPT_CAPTION": {"S": "Standard", "C": "Classification"}.get(
            standard or "", "Non-Standard") if row else None,
        "INVALID_REASON": (invalid or "V") if row else None,
        "INVALID_REASON_CAPTION": ("Valid" if not invalid else "Invalid") if row else None,
        "CONCEPT_CODE": str(row.get("concept_code") or wanted.code),
        "DOMAIN_ID": row.get("domain_id"),
        "VOCABULARY_ID": row.get("vocabulary_id") or wanted.vocabulary_id,
        "CONCEPT_CLASS_ID": row.get("concept_class_id"),
    }, "isExcluded": False, "includeDescendants": True, "includeMapped": False}


def export(kb: Knowledge, directory: Path, vocabulary: str | None = None) -> Exported:
    """Write one ATLAS concept-set file per screen code set (per concept where the screen
    tells them apart) and ``index.json``; return what was written and what is unresolved."""
    from imnm import __version__

    vocab = _Vocabulary(vocabulary) if vocabulary is not None else None
    done = Exported(directory, unreadable=vocab.unreadable if vocab is not None else {})
    index: list[dict[str, Any]] = []
    directory.mkdir(parents=True, exist_ok=True)
    try:
        for (set_name, concept), wanted in _groups(kb).items():
            items, unresolved = [], []
            for want in wanted:
                rows = vocab.find(want) if vocab is not None else []
                if rows:
                    items += [_item(want, row) for row in rows]
                    continue
                items.append(_item(want, None))
                if want.concept_id is None:
                    unresolved.append(f"{want.vocabulary_id} {want.code}"
                                      + (" (prefix)" if want.prefix else ""))
            name = set_name + (f"-{concept}" if concept else "")
            file = f"{name}.json"
            (directory / file).write_text(json.dumps({"items": items}, indent=2,
                                                     ensure_ascii=False) + "\n",
                                          encoding="utf-8")
            label = kb.label("drug", concept) if set_name == "drug" and concept else (
                concept or set_name).replace("_", " ")
            index.append({"file": file, "set": set_name, "concept": concept, "label": label,
                          "items": len(items), "unresolved": unresolved})
            done.files.append(file)
            done.items += len(items)
            done.unresolved += [f"{name}: {u}" for u in unresolved]
    finally:
        if vocab is not None:
            vocab.close()
    (directory / "index.json").write_text(json.dumps({
        "imnm_version": __version__, "knowledge_version": kb.digest,
        "vocabulary": vocabulary,
        "vocabulary_values_unreadable": done.unreadable,
        "note": "includeDescendants is true throughout, as the screen expands every code set "
                "by CONCEPT_ANCESTOR; ICD10CM codes are non-standard, so a cohort in ATLAS "
                "should match them on condition_source_concept_id. An item with CONCEPT_ID "
                "null is not in the vocabulary given (or none was given).",
        "sets": index}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return done


def read_concept_set(path: Path) -> set[tuple[str, str]]:
    """(VOCABULARY_ID, CONCEPT_CODE) of every item of an ATLAS concept-set file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {(str(i["concept"]["VOCABULARY_ID"]), str(i["concept"]["CONCEPT_CODE"]))
                for i in data["items"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConceptSetError(f"{path}: not an ATLAS concept-set expression "
                              f"({type(exc).__name__})") from None
