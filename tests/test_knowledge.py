"""Integrity of the shipped knowledge base, and the loader's error reporting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imnm import quantities
from imnm.codes import is_valid
from imnm.errors import KnowledgeError
from imnm.knowledge import FILES, Status, load_from, load_knowledge
from imnm.patient import Antibody, Biopsy, Drug

KB = load_knowledge()
DATA = Path(KB.directory)


def test_every_source_id_resolves() -> None:
    cited = list(KB.cited_entries())
    assert len(cited) > 150
    unresolved = [(f, e, c.source) for f, e, c in cited if c.source not in KB.sources]
    assert unresolved == []


def test_every_unit_parses() -> None:
    for band in KB.ck_bands:
        assert quantities.convert(band.upper_limit, band.unit, "activity") > 0


def test_every_code_fits_its_system() -> None:
    bad = [(c.system, c.code) for c in KB.codes if c.match == "exact"
           and not is_valid(c.system, c.code)]
    assert bad == []
    for prefix in (c for c in KB.codes if c.match == "prefix"):
        assert prefix.system.value == "icd10cm"


def test_every_file_explains_its_format_at_the_top() -> None:
    for name in FILES:
        head = (DATA / name).read_text(encoding="utf-8").splitlines()[:12]
        assert all(line.startswith("#") or not line for line in head), name
        text = "\n".join(head)
        assert "imnm knowledge base" in text and "Fields" in "\n".join(
            (DATA / name).read_text(encoding="utf-8").splitlines()[:40]), name


def test_every_antibody_and_drug_is_covered() -> None:
    assert set(KB.antibodies) == set(Antibody)
    coded = {c.concept for c in KB.codes_in("drug")}
    for drug in ("prednisolone", "methotrexate", "ivig", "rituximab", "cyclophosphamide",
                 "azathioprine", "mycophenolate_mofetil", "tacrolimus", "statin"):
        assert drug in coded
    assert all(c.concept in {d.value for d in Drug} | {"statin"} for c in KB.codes_in("drug"))


def test_unconfirmed_facts_keep_their_status() -> None:
    # Marked unconfirmed in the research note: they must not be promoted silently.
    enmc = {s.id: s.status for s in KB.enmc_subtypes}
    assert enmc["anti_srp_imnm"] is Status.unconfirmed
    assert enmc["seronegative_imnm"] is Status.unconfirmed
    assert enmc["anti_hmgcr_imnm"] is Status.secondary
    assert KB.eular_probability.status is Status.unconfirmed
    assert KB.lookup_code("icd10cm", "G71.038").status is Status.unconfirmed  # type: ignore[union-attr]
    assert KB.lookup_code("loinc", "1742-6").status is Status.unconfirmed  # type: ignore[union-attr]
    assert all(p.status is Status.heuristic for p in KB.parameters.values())


def test_eular_weights_match_the_published_table() -> None:
    # Read off Bottai 2017 Table 1 in the research note (section 2.1).
    table = {
        "proximal_upper_weakness": (0.7, 0.7), "proximal_lower_weakness": (0.8, 0.5),
        "neck_flexor_predominance": (1.9, 1.6), "legs_proximal_predominance": (0.9, 1.2),
        "heliotrope_rash": (3.1, 3.2), "gottron_papules": (2.1, 2.7),
        "gottron_sign": (3.3, 3.7), "dysphagia": (0.7, 0.6), "anti_jo1": (3.9, 3.8),
        "elevated_enzymes": (1.3, 1.4), "biopsy_endomysial_infiltrate": (None, 1.7),
        "biopsy_perimysial_perivascular": (None, 1.2),
        "biopsy_perifascicular_atrophy": (None, 1.9), "biopsy_rimmed_vacuoles": (None, 3.1),
        "age_18_to_40": (1.3, 1.5), "age_40_or_more": (2.1, 2.2),
    }
    got = {i.id: (i.points_without_biopsy, i.points_with_biopsy) for i in KB.eular_items.values()}
    assert got == table
    cuts = {c.id: (c.min_score_without_biopsy, c.min_score_with_biopsy)
            for c in KB.eular_categories}
    assert cuts == {"not_iim": (0, 0), "possible_iim": (5.3, 6.5),
                    "probable_iim": (5.5, 6.7), "definite_iim": (7.5, 8.7)}


def test_pathology_fields_are_biopsy_fields() -> None:
    assert {f.field for f in KB.pathology} <= set(Biopsy.model_fields)
    assert {f.subgroup for f in KB.pathology} == {"imnm", "dm", "ass", "ibm", "dystrophy"}


def test_code_lookup_by_prefix_and_unknown() -> None:
    assert KB.lookup_code("icd10cm", "G71.0341").set == "dystrophy"  # type: ignore[union-attr]
    assert KB.lookup_code("icd10cm", "M33.13").concept == "dm"  # type: ignore[union-attr]
    assert KB.lookup_code("icd10cm", "J45.909") is None


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "kb"
    shutil.copytree(DATA, target)
    return target


def test_loader_names_file_entry_and_problem(tmp_path: Path) -> None:
    kb = _copy(tmp_path)
    text = (kb / "antibodies.toml").read_text(encoding="utf-8")
    text = text.replace('source = "betteridge_mchugh_2016"', 'source = "nowhere_2099"', 1)
    (kb / "ck_reference.toml").write_text(
        (kb / "ck_reference.toml").read_text(encoding="utf-8").replace(
            'upper_limit = 308\nunit = "U/L"', 'upper_limit = 308\nunit = "furlongs"'),
        encoding="utf-8")
    (kb / "antibodies.toml").write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_from(kb)
    messages = [str(p) for p in caught.value.problems]
    assert any(m.startswith("antibodies.toml: Mi-2") and "nowhere_2099" in m for m in messages)
    assert any(m.startswith("ck_reference.toml: male 0.25") and "furlongs" in m
               for m in messages)
    assert len(messages) == 2  # every problem at once, nothing else


def test_loader_reports_bad_codes_and_unknown_fields(tmp_path: Path) -> None:
    kb = _copy(tmp_path)
    codes = (kb / "code_sets.toml").read_text(encoding="utf-8")
    codes = codes.replace('code = "2157-6"', 'code = "2157-5"')
    codes = codes.replace('code = "G71.01"\n', 'code = "G71.01"\ncolour = "red"\n')
    (kb / "code_sets.toml").write_text(codes, encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_from(kb)
    messages = "\n".join(str(p) for p in caught.value.problems)
    assert "code_sets.toml: code #" in messages and "(G71.01) field colour" in messages
    assert "code_sets.toml: 2157-5: got '2157-5'; expected a LOINC code" in messages


def test_loader_reports_unparseable_toml(tmp_path: Path) -> None:
    kb = _copy(tmp_path)
    (kb / "sources.toml").write_text("[[source]\nid = ", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"sources.toml: \(file\)"):
        load_from(kb)


def test_knowledge_is_frozen() -> None:
    from pydantic import ValidationError

    item = KB.eular_items["heliotrope_rash"]
    with pytest.raises(ValidationError):
        item.points_with_biopsy = 99  # type: ignore[misc]


def test_patient_model_limits_are_the_cited_scales() -> None:
    from imnm.errors import InputError
    from imnm.patient import Biopsy, load_patient

    scales = KB.scales
    for field, scale in (("mmt8", "mmt8"), ("cmas", "cmas"), ("chaq", "chaq"),
                         ("physician_global", "vas"), ("mrs", "mrs")):
        top = scales[scale].max
        ok = {"id": "p", "visits": [{"date": "2024-01-01", field: top}]}
        load_patient(ok)
        with pytest.raises(InputError) as caught:
            load_patient({"id": "p", "visits": [{"date": "2024-01-01", field: top + 1}]})
        assert f"{top:g}" in caught.value.problems[0].expected, field
    # Every pathology feature names a field of the Biopsy model (checked here, not by the
    # loader, which does not import the patient model).
    assert {f.field for f in KB.pathology} <= set(Biopsy.model_fields)


def test_every_id_people_read_has_a_human_label(tmp_path: Path) -> None:
    """Issue 13: every id has one human label, kept with the knowledge; the loader refuses a
    knowledge base that leaves one out."""
    assert {KB.label("drug", d.value) for d in Drug} >= {"IVIg", "mycophenolate mofetil"}
    assert all("_" not in KB.label("drug", d.value) for d in Drug)
    assert KB.label("enmc_class", "anti_hmgcr_imnm") == "anti-HMGCR IMNM"
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    text = (copy / "labels.toml").read_text(encoding="utf-8")
    (copy / "labels.toml").write_text(text.replace('ivig = "IVIg"\n', ""), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"labels.toml: drug.ivig"):
        load_from(copy)
