"""The screen's code sets as OHDSI ATLAS concept-set JSON: re-read to the same codes, with
concept ids from a real vocabulary (Synthea27Nj's Athena subset) and from the synthetic one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imnm.knowledge import load_knowledge
from imnm.screen import synth
from imnm.screen.concept_sets import (
    SCREEN_SETS,
    VOCABULARY_ID,
    ConceptSetError,
    export,
    read_concept_set,
)
from tests.realworld import SYNTHEA27NJ

KB = load_knowledge()


def knowledge_codes() -> dict[str, set[tuple[str, str]]]:
    """Per file name, the (vocabulary, code) pairs the knowledge base puts in it."""
    out: dict[str, set[tuple[str, str]]] = {}
    for entry in KB.codes:
        if entry.set in SCREEN_SETS:
            name = entry.set + (f"-{entry.concept}" if entry.set in ("antibody_test", "drug")
                                else "")
            out.setdefault(f"{name}.json", set()).add((VOCABULARY_ID[entry.system], entry.code))
    ingredients = {c.code: c.concept for c in KB.codes_in("drug")}
    for product in KB.products:
        if product.ingredient in ingredients:
            out.setdefault(f"drug-{ingredients[product.ingredient]}.json", set()).add(
                ("RxNorm", product.rxcui))
    return out


def test_without_a_vocabulary_the_files_re_read_to_the_knowledge_codes(tmp_path: Path) -> None:
    done = export(KB, tmp_path)
    wanted = knowledge_codes()
    assert sorted(done.files) == sorted(wanted)
    for file, codes in wanted.items():
        assert read_concept_set(tmp_path / file) == codes, file
        for item in json.loads((tmp_path / file).read_text(encoding="utf-8"))["items"]:
            assert item["includeDescendants"] is True and item["isExcluded"] is False
            assert item["includeMapped"] is False
    index = json.loads((tmp_path / "index.json").read_text(encoding="utf-8"))
    assert index["knowledge_version"] == KB.digest
    # only results.toml's products carry an OMOP id without a vocabulary; the rest are
    # listed as unresolved, never given an invented id
    with_id = {(i["concept"]["VOCABULARY_ID"], i["concept"]["CONCEPT_CODE"])
               for file in wanted for i in json.loads(
                   (tmp_path / file).read_text(encoding="utf-8"))["items"]
               if i["concept"]["CONCEPT_ID"] is not None}
    assert with_id == {("RxNorm", p.rxcui) for p in KB.products if p.omop_concept_id}
    assert len(done.unresolved) == sum(len(s["unresolved"]) for s in index["sets"]) > 50


def test_a_real_vocabulary_gives_the_athena_ids(tmp_path: Path) -> None:
    """Synthea27Nj ships a subset of Athena: LOINC 2157-6 is concept 3007220 there."""
    export(KB, tmp_path, str(SYNTHEA27NJ))
    ck = json.loads((tmp_path / "ck.json").read_text(encoding="utf-8"))["items"]
    assert [(i["concept"]["CONCEPT_ID"], i["concept"]["VOCABULARY_ID"],
             i["concept"]["CONCEPT_CODE"], i["concept"]["STANDARD_CONCEPT"],
             i["concept"]["DOMAIN_ID"]) for i in ck] == [
        (3007220, "LOINC", "2157-6", "S", "Measurement")]
    for file, codes in knowledge_codes().items():
        assert read_concept_set(tmp_path / file) >= codes - {
            ("ICD10CM", e.code) for e in KB.codes if e.match == "prefix"}, file


def test_prefix_codes_become_every_concept_they_match(tmp_path: Path) -> None:
    """In the synthetic vocabulary (Athena ids where synth knows them), the ICD-10-CM prefix
    G71.0 becomes the G71.0x concepts it holds, each with its id."""
    database = tmp_path / "omop.duckdb"
    synth.write_omop(synth.population(400, 3), database)
    export(KB, tmp_path / "sets", str(database))
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    ids = dict(con.execute("SELECT vocabulary_id || ' ' || concept_code, concept_id "
                           "FROM concept").fetchall())
    con.close()
    items = json.loads((tmp_path / "sets" / "dystrophy.json").read_text(
        encoding="utf-8"))["items"]
    resolved = {f"{i['concept']['VOCABULARY_ID']} {i['concept']['CONCEPT_CODE']}":
                i["concept"]["CONCEPT_ID"] for i in items if i["concept"]["CONCEPT_ID"]}
    in_vocabulary = {k: v for k, v in ids.items() if k.startswith("ICD10CM G71.0")}
    assert in_vocabulary and all(resolved[k] == v for k, v in in_vocabulary.items())


def test_the_command_and_its_errors(tmp_path: Path) -> None:
    out = tmp_path / "sets"
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "knowledge",
                          "--export-concept-sets", str(out)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "ATLAS concept sets" in run.stdout and "give the site's vocabulary" in run.stdout
    assert (out / "index.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "imnm.cli", "knowledge",
                          "--export-concept-sets", str(tmp_path / "x"), "--vocab",
                          str(SYNTHEA27NJ / "LICENSE")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--vocab" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(ConceptSetError, match="not an ATLAS concept-set expression"):
        (tmp_path / "junk.json").write_text('{"rows": []}', encoding="utf-8")
        read_concept_set(tmp_path / "junk.json")


def test_unreadable_vocabulary_rows_are_said_not_dropped(tmp_path: Path) -> None:
    """A CONCEPT row whose id is not a number cannot give an id: the command says how many."""
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "CONCEPT.csv").write_text(
        "concept_id,concept_name,domain_id,vocabulary_id,concept_class_id,standard_concept,"
        "concept_code,invalid_reason\n"
        "3007220,Creatine kinase,Measurement,LOINC,Lab Test,S,2157-6,\n"
        "x3007221,Broken row,Measurement,LOINC,Lab Test,S,93493-5,\n", encoding="utf-8")
    done = export(KB, tmp_path / "sets", str(vocab))
    assert done.unreadable == {"CONCEPT.concept_id": 1}
    index = json.loads((tmp_path / "sets" / "index.json").read_text(encoding="utf-8"))
    assert index["vocabulary_values_unreadable"] == {"CONCEPT.concept_id": 1}
    assert "LOINC 93493-5" in " ".join(done.unresolved)
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "knowledge",
                          "--export-concept-sets", str(tmp_path / "again"), "--vocab",
                          str(vocab)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "1 values of CONCEPT.concept_id in the vocabulary could not be read" in run.stdout
