"""The rules, one clinical question at a time, on children built for each test."""

from __future__ import annotations

import pytest

from imnm import assess, load_patient
from imnm.knowledge import load_knowledge
from imnm.report.treatment import render_plan
from imnm.rules import differential
from imnm.rules.treatment import build_plan
from imnm.testing import a_child
from tests.conftest import EXAMPLES

KB = load_knowledge()

LGMD = ("Limb girdle muscular dystrophy, unspecified", "icd10cm", "G71.039")


def unconfirmed_lgmd_child():  # type: ignore[no-untyped-def]
    return (a_child(age_years=11).with_label(*LGMD).with_ck(9400, upper_limit=391)
            .with_proximal_weakness(4).with_genetics("negative")
            .with_(family_history={"neuromuscular_disease": False}))


def rule_ids(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.rule_id for f in result.findings]


# ------------------------------------------------------------------ suspicion

def test_central_warning_fires() -> None:
    result = assess(unconfirmed_lgmd_child().build())
    assert result.suspicion.test_for_imnm_antibodies is True
    finding = next(f for f in result.findings
                   if f.rule_id == "suspicion.dystrophy_label_unconfirmed")
    assert finding.source == "wang_liang_2023"
    assert "anti-HMGCR and anti-SRP" in finding.conclusion
    assert {f.field for f in finding.facts} >= {"labels", "peak_ck", "proximal_weakness"}
    assert "24.0 x ULN 391" in dict((f.field, f.value) for f in finding.facts)["peak_ck"]


@pytest.mark.parametrize(("change", "why"), [
    (lambda b: b.with_genetics("diagnostic", ["CAPN3"], "LGMD R1"), "genetic confirmation"),
    (lambda b: b.with_(family_history={"neuromuscular_disease": True}), "family history"),
    (lambda b: b.with_antibody("HMGCR", "negative").with_antibody("SRP", "negative"), "tested"),
    (lambda b: b.with_(ck=[{"value": 300, "upper_limit": 391}]), "CK normal"),
    (lambda b: b.with_proximal_weakness(5), "strength normal"),
    (lambda b: b.with_(diagnoses=[]), "no label"),
])
def test_central_warning_does_not_fire(change, why) -> None:  # type: ignore[no-untyped-def]
    result = assess(change(unconfirmed_lgmd_child()).build())
    assert result.suspicion.test_for_imnm_antibodies is False, why


def test_one_antibody_tested_is_not_enough() -> None:
    result = assess(unconfirmed_lgmd_child().with_antibody("HMGCR", "negative").build())
    assert result.suspicion.test_for_imnm_antibodies is True
    finding = next(f for f in result.findings if f.rule_id.startswith("suspicion.dystrophy"))
    assert finding.conclusion.startswith("Not yet tested: anti-SRP.")


def test_free_text_label_counts_and_myositis_label_does_not() -> None:
    base = (a_child().with_ck(5000, upper_limit=391).with_proximal_weakness(3))
    assert assess(base.with_label("suspected LGMD").build()).suspicion.test_for_imnm_antibodies
    assert not assess(base.with_label("necrotizing myopathy").build()
                      ).suspicion.test_for_imnm_antibodies
    resolved = base.with_label("muscular dystrophy", status="refuted").build()
    assert not assess(resolved).suspicion.test_for_imnm_antibodies


def test_missing_weakness_is_undetermined_not_no() -> None:
    child = a_child().with_label(*LGMD).with_ck(9400, upper_limit=391).build()
    result = assess(child)
    assert result.suspicion.test_for_imnm_antibodies is False
    assert result.suspicion.undetermined == ("proximal muscle strength (MRC grades)",)
    assert "suspicion.undetermined" in rule_ids(result)


def test_parameters_change_the_threshold_and_weakness_requirement() -> None:
    child = unconfirmed_lgmd_child().build()  # CK 24 x ULN
    assert not assess(child, parameters={"suspicion_min_ck_multiple_of_uln": 30}
                      ).suspicion.test_for_imnm_antibodies
    no_exam = a_child().with_label(*LGMD).with_ck(9400, upper_limit=391).build()
    result = assess(no_exam, parameters={"suspicion_require_proximal_weakness": False})
    assert result.suspicion.test_for_imnm_antibodies is True
    with pytest.raises(KeyError, match="unknown parameter"):
        assess(child, parameters={"no_such": 1})


def test_ck_fallback_limit_is_named() -> None:
    child = (a_child(age_years=9, sex="female").with_label(*LGMD).with_ck(900)
             .with_proximal_weakness(4).build())
    result = assess(child)
    # Mayo older catalogue, girls 6-14 y: ULN 391 U/L -> 900/391 = 2.3 x ULN.
    assert "2.3 x ULN 391 U/L, fallback: mayo_ck female 6-15 y" in result.summary.peak_ck
    assert result.suspicion.test_for_imnm_antibodies


def test_antibody_positive_with_dystrophy_label() -> None:
    child = unconfirmed_lgmd_child().with_antibody("SRP", "positive").build()
    result = assess(child)
    assert result.suspicion.review_dystrophy_label is True
    assert "suspicion.antibody_positive_with_dystrophy_label" in rule_ids(result)


# ------------------------------------------------------------------ ENMC 2017

def imnm_picture(age: float = 10):  # type: ignore[no-untyped-def]
    return a_child(age_years=age).with_ck(8000, upper_limit=391).with_proximal_weakness(3)


def enmc(builder):  # type: ignore[no-untyped-def]
    return assess(builder.build()).classification.enmc_2017


def test_enmc_anti_hmgcr() -> None:
    result = enmc(imnm_picture().with_antibody("HMGCR", "positive"))
    assert result.cls == "anti_hmgcr_imnm" and result.missing == ()
    assert result.status.value == "secondary"


def test_enmc_anti_srp_with_line_blot_caveat() -> None:
    result = enmc(imnm_picture().with_antibody("SRP", "positive", method="line_blot"))
    assert result.cls == "anti_srp_imnm"
    assert result.status.value == "unconfirmed"
    assert any("line-blot" in c for c in result.caveats)


def test_enmc_seronegative_needs_a_necrotizing_biopsy() -> None:
    negative = imnm_picture().with_antibody("HMGCR", "negative").with_antibody("SRP", "negative")
    no_biopsy = enmc(negative)
    assert no_biopsy.cls == "insufficient_data"
    assert any("muscle biopsy" in m for m in no_biopsy.missing)
    assert not any(m.startswith("if anti-HMGCR") for m in no_biopsy.missing)
    with_biopsy = enmc(negative.with_biopsy(necrosis=True, perifascicular_atrophy=False,
                                            rimmed_vacuoles=False, cd8_invasion=False)
                       .with_genetics("negative"))
    assert with_biopsy.cls == "seronegative_imnm" and with_biopsy.caveats == ()
    dm_biopsy = enmc(negative.with_biopsy(necrosis=True, perifascicular_atrophy=True))
    assert dm_biopsy.cls == "not_imnm"


def test_enmc_seronegative_without_genetics_carries_a_caveat() -> None:
    result = enmc(imnm_picture().with_antibody("HMGCR", "negative")
                  .with_antibody("SRP", "negative").with_biopsy(conclusion="necrotizing_myopathy"))
    assert result.cls == "seronegative_imnm"
    assert result.caveats and "genetic testing" in result.caveats[0]


def test_enmc_insufficient_names_what_is_missing() -> None:
    result = enmc(a_child().with_ck(8000, upper_limit=391))
    assert result.cls == "insufficient_data"
    assert result.missing[0].startswith("strength of proximal muscles")
    assert "anti-HMGCR antibody test" in result.missing
    assert "anti-SRP antibody test" in result.missing
    assert any(m.startswith("if anti-HMGCR and anti-SRP are negative: a muscle biopsy")
               for m in result.missing)


def test_enmc_not_imnm_when_an_element_is_absent() -> None:
    normal_ck = a_child().with_ck(200, upper_limit=391).with_proximal_weakness(3) \
        .with_antibody("HMGCR", "positive")
    assert enmc(normal_ck).cls == "not_imnm"


def test_enmc_genetic_dystrophy_is_not_imnm_and_gene_is_not_antibody() -> None:
    child = (imnm_picture().with_genetics("diagnostic", ["HMGCR"], "LGMD R28")
             .with_label("limb-girdle muscular dystrophy R28"))
    result = assess(child.build())
    assert result.classification.enmc_2017.cls == "not_imnm"
    assert result.summary.anti_hmgcr == "not reported"
    assert "caution.hmgcr_gene_not_antibody" in rule_ids(result)
    assert result.suspicion.test_for_imnm_antibodies is False


def test_enmc_double_positive_needs_confirmation() -> None:
    result = enmc(imnm_picture().with_antibody("HMGCR", "positive")
                  .with_antibody("SRP", "positive"))
    assert result.cls == "insufficient_data"
    assert "both reported positive" in result.missing[0]


# ------------------------------------------------------------------ EULAR/ACR 2017

def test_eular_hand_computed_jdm_with_biopsy() -> None:
    child = (a_child(age_years=7).with_(onset={"age_years": 7})
             .with_proximal_weakness(4, symmetric=True).with_ck(1200, upper_limit=391)
             .with_(extramuscular={"dysphagia": False, "skin": {
                 "heliotrope_rash": True, "gottron_papules": True, "gottron_sign": False}})
             .with_antibody("Jo-1", "negative")
             .with_biopsy(perifascicular_atrophy=True, perimysial_perivascular_infiltrate=True,
                          endomysial_infiltrate_not_invading=False, rimmed_vacuoles=False))
    e = assess(child.build()).classification.eular_acr_2017
    # With biopsy: upper 0.7 + lower 0.5 + heliotrope 3.2 + Gottron papules 2.7
    # + enzymes 1.4 + perifascicular atrophy 1.9 + perimysial 1.2 = 11.6
    assert e.with_biopsy and e.score == pytest.approx(11.6)
    assert e.category == "definite_iim"
    assert e.subgroup == "juvenile_dermatomyositis"
    # Unknown: neck flexors (1.6) and legs proximal>distal (1.2) -> max 14.4
    assert set(e.unknown_items) == {"neck_flexor_predominance", "legs_proximal_predominance"}
    assert e.max_score_if_unknown_present == pytest.approx(14.4)
    # P = 1/(1+exp(6.49-11.6)) = 0.994
    assert e.probability == pytest.approx(0.994, abs=0.001)


def test_eular_child_with_imnm_scores_low_and_says_why() -> None:
    child = (a_child(age_years=9).with_(onset={"age_years": 8})
             .with_weakness(proximal_upper=3, proximal_lower=3, symmetric=True,
                            neck_flexors=3, neck_extensors=4, distal_lower=5)
             .with_ck(9000, upper_limit=391).with_antibody("HMGCR", "positive")
             .with_antibody("Jo-1", "negative")
             .with_(extramuscular={"dysphagia": False, "skin": {"any_skin_lesion": False}}))
    result = assess(child.build())
    e = result.classification.eular_acr_2017
    # Without biopsy: 0.7 + 0.8 + 1.9 + 0.9 + 1.3 = 5.6 (research note's worked example)
    assert e.score == pytest.approx(5.6)
    assert e.category == "probable_iim" and e.unknown_items == ()
    assert e.subgroup == "juvenile_myositis_other_than_jdm"
    assert "no anti-HMGCR or anti-SRP item" in e.note
    assert result.classification.enmc_2017.cls == "anti_hmgcr_imnm"


def test_eular_without_neck_item_falls_to_not_iim() -> None:
    child = (a_child(age_years=9).with_(onset={"age_years": 8})
             .with_weakness(proximal_upper=3, proximal_lower=3, symmetric=True,
                            neck_flexors=4, neck_extensors=4, distal_lower=5)
             .with_ck(9000, upper_limit=391))
    e = assess(child.build()).classification.eular_acr_2017
    assert e.score == pytest.approx(3.7)  # 0.7 + 0.8 + 0.9 + 1.3
    assert e.category == "not_iim"


def test_eular_adult_age_points() -> None:
    child = a_child(age_years=22).with_(onset={"age_years": 19})
    e = assess(child.build()).classification.eular_acr_2017
    assert e.items["age_18_to_40"] is True and e.score == pytest.approx(1.3)


# ------------------------------------------------------------------ differential, work-up

def test_atypical_antibody_said_plainly() -> None:
    child = (imnm_picture().with_antibody("HMGCR", "negative").with_antibody("SRP", "negative")
             .with_antibody("Mi-2", "positive").with_biopsy(conclusion="necrotizing_myopathy"))
    result = assess(child.build())
    finding = next(f for f in result.findings if f.rule_id == "differential.atypical_antibody")
    assert finding.conclusion.startswith("Anti-Mi-2 points to dermatomyositis")
    assert finding.source == "dang_le_2025"
    assert result.differential["dm"].supports
    assert result.classification.enmc_2017.cls == "seronegative_imnm"


def test_pathology_pattern_matching() -> None:
    child = imnm_picture().with_biopsy(necrosis=True, mhc_ii="absent", mac="sarcolemmal",
                                       p62="fine_granular", cd8_invasion=False)
    diff = assess(child.build()).differential
    # necrosis, sarcolemmal MAC and fine granular p62 support; the absent features
    # (MHC-II, CD8 invasion) are consistent but not listed as support.
    assert len(diff["imnm"].supports) == 3 and diff["imnm"].against == ()
    assert not any("CD8" in x or "MHC class II" in x for x in diff["imnm"].supports)
    assert any("p62" in x for x in diff["ibm"].against)
    assert any("MHC class II" in x for x in diff["ass"].against)


def test_red_flags_for_anti_srp() -> None:
    child = imnm_picture().with_antibody("SRP", "positive").with_(
        extramuscular={"dysphagia": True})
    ids = rule_ids(assess(child.build()))
    assert "redflag.cardiac_evaluation" in ids and "redflag.lung_and_swallowing" in ids
    assert "redflag.cancer_screening" not in ids


def test_exposures_and_infection() -> None:
    child = imnm_picture().with_antibody("HMGCR", "positive").with_(
        exposures={"statin": True, "statin_name": "atorvastatin", "mushrooms": True},
        preceding_infection={"present": True, "weeks_before_onset": 2})
    ids = rule_ids(assess(child.build()))
    assert {"redflag.statin_exposure", "redflag.food_statin_exposure",
            "redflag.preceding_infection", "workup.ask_statin_exposure"} <= set(ids)
    none = imnm_picture().with_antibody("HMGCR", "positive").with_(exposures={
        "statin": False, "red_yeast_rice": False, "mushrooms": False, "pu_erh_tea": False})
    assert not any(i.endswith("statin_exposure") for i in rule_ids(assess(none.build())))


def test_every_finding_has_a_resolvable_source_and_dotted_id() -> None:
    from imnm.knowledge import load_knowledge

    sources = load_knowledge().sources
    result = assess(unconfirmed_lgmd_child().with_antibody("SRP", "positive", method="line_blot")
                    .with_biopsy(necrosis=True, fatty_replacement=True).build())
    for finding in result.findings:
        assert finding.source in sources
        assert "." in finding.rule_id
        assert finding.conclusion


def test_ck_without_limit_or_age_uses_a_conservative_bound() -> None:
    # Highest fallback limit in ck_reference.toml is 499 U/L (Mayo, boys 6-17 y).
    high = a_child(age_years=None).with_ck(7842, "IU/L").with_proximal_weakness(3) \
        .with_antibody("HMGCR", "positive").build()
    result = assess(high)
    assert result.summary.ck_elevated is True
    assert "highest limit in mayo_ck (age unknown; conservative)" in result.summary.peak_ck
    assert result.classification.enmc_2017.cls == "anti_hmgcr_imnm"
    low = a_child(age_years=None).with_ck(450).build()
    assert assess(low).summary.ck_elevated is None  # below the bound: undecided, not normal


def test_a_ck_below_a_fallback_limit_is_unknown_not_normal() -> None:
    # Issue 11 item 7: a 17-year-old boy, CK 450 U/L, no laboratory limit. The cited fallback
    # for his age is higher, but his laboratory's limit may be lower (200 here): below a
    # fallback bound, elevation is unknown, and the laboratory limit is named as missing.
    child = (a_child(age_years=17, sex="male").with_proximal_weakness(3)
             .with_antibody("HMGCR", "negative").with_antibody("SRP", "negative"))
    unknown = assess(child.with_ck(450).build())
    enmc = unknown.classification.enmc_2017
    assert enmc.cls == "insufficient_data"
    assert enmc.elements["ck_elevated"] is None
    with_limit = assess(child.with_ck(450, upper_limit=200).build())
    assert with_limit.classification.enmc_2017.elements["ck_elevated"] is True
    # Above the fallback it is elevated whatever the laboratory's limit.
    above = assess(child.with_ck(5000).build())
    assert above.classification.enmc_2017.elements["ck_elevated"] is True


def test_unreported_biopsy_features_are_unknown_not_absent() -> None:
    # Issue 11 item 4: necrosis with perifascicular atrophy, rimmed vacuoles and CD8 invasion
    # not reported is not "without features of another inflammatory myopathy".
    negative = imnm_picture().with_antibody("HMGCR", "negative").with_antibody("SRP", "negative")
    result = enmc(negative.with_biopsy(necrosis=True).with_genetics("negative"))
    assert result.cls == "insufficient_data"
    assert result.elements["necrotizing_biopsy"] is None
    named = " ".join(result.missing)
    assert all(f in named for f in ("perifascicular atrophy", "rimmed vacuoles", "cd8 invasion"))


def test_a_dystrophic_biopsy_is_not_seronegative_imnm_and_gets_no_plan() -> None:
    # Issue 11 item 1: a 6-year-old boy, CK 22,000 U/L, both antibodies negative, biopsy
    # concluded "dystrophic" with necrosis and regeneration, no genetic testing.
    boy = (a_child(age_years=6, sex="male").with_ck(22000).with_proximal_weakness(3)
           .with_antibody("HMGCR", "negative").with_antibody("SRP", "negative")
           .with_biopsy(conclusion="dystrophic", necrosis=True, regeneration=True)
           .with_(weight={"value": 21, "unit": "kg"}).build())
    result = assess(boy)
    assert result.classification.enmc_2017.cls != "seronegative_imnm"
    plan = build_plan(boy, KB, result.classification.enmc_2017.cls,
                      result.classification.enmc_2017.caveats)
    assert all(not step.doses for step in plan.steps)
    # Genetic testing is in the work-up even without a dystrophy label.
    assert any("genetic" in f.conclusion.lower() for f in result.findings
               if f.rule_id.startswith("workup."))


def test_a_provisional_class_says_confirm_first_before_any_dose() -> None:
    # Issue 11 items 1 and 2: seronegative without genetic exclusion, and a line-blot anti-SRP:
    # the class's caveats come first in the plan, as a red flag, before the doses.
    seronegative = (imnm_picture().with_antibody("HMGCR", "negative")
                    .with_antibody("SRP", "negative")
                    .with_biopsy(conclusion="necrotizing_myopathy")
                    .with_(weight={"value": 30, "unit": "kg"}).build())
    line_blot = (imnm_picture().with_antibody("SRP", "positive", method="line_blot")
                 .with_(weight={"value": 30, "unit": "kg"}).build())
    for child in (seronegative, line_blot):
        enmc_result = assess(child).classification.enmc_2017
        assert enmc_result.caveats
        plan = build_plan(child, KB, enmc_result.cls, enmc_result.caveats)
        first = plan.findings[0]
        assert first.rule_id == "treatment.confirm_first" and first.kind.value == "red_flag"
        assert "confirm before treating" in first.conclusion
        text = render_plan(plan)
        assert text.index("confirm before treating") < text.index(" mg")


def test_gene_and_antibody_in_conflict_are_named_and_get_no_plan() -> None:
    # Issue 11 item 5: biallelic HMGCR variants (LGMD R28) and a positive anti-HMGCR.
    child = (imnm_picture().with_antibody("HMGCR", "positive")
             .with_genetics("diagnostic", genes=["HMGCR"],
                            diagnosis="limb-girdle muscular dystrophy R28")
             .with_(weight={"value": 30, "unit": "kg"}).build())
    result = assess(child).classification.enmc_2017
    assert result.cls == "insufficient_data"
    assert any("conflict" in m and "second assay" in m for m in result.missing)
    plan = build_plan(child, KB, result.cls, result.caveats)
    assert all(not step.doses for step in plan.steps)


def test_unknown_heart_and_swallowing_in_anti_hmgcr_disease_are_asked_for() -> None:
    # Issue 11 item 8: the review reports cardiac abnormality in anti-HMGCR children too.
    child = imnm_picture().with_antibody("HMGCR", "positive")
    unknown = {f.rule_id for f in assess(child.build()).findings}
    assert {"redflag.cardiac_status_unknown", "redflag.swallowing_status_unknown"} <= unknown
    recorded = {f.rule_id for f in assess(child.with_(
        extramuscular={"cardiac": False, "dysphagia": False}).build()).findings}
    assert not {"redflag.cardiac_status_unknown", "redflag.swallowing_status_unknown"} & recorded


# ------------------------------------------------------------------ the cards' subset

@pytest.mark.parametrize("example", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_triage_is_the_assessment_a_card_reads(example: str) -> None:
    # The CDS Hooks service runs triage() instead of assess(): the same rules, without the
    # EULAR/ACR score, the differential and the summary, which no card shows.
    from imnm.assessment import triage

    patient = load_patient((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))
    full, part = assess(patient), triage(patient)
    assert part.suspicion == full.suspicion
    assert (part.enmc_class, part.enmc_source) == (full.classification.enmc_2017.cls,
                                                   full.classification.enmc_2017.source)
    eular = ("classification.eular_acr_2017", "caution.eular_score_blind_to_imnm")
    diff = differential.evaluate(patient, KB).findings
    assert part.findings == tuple(f for f in full.findings if f.rule_id not in eular
                                  and f not in diff)


def test_what_triage_leaves_out_holds_no_red_flag() -> None:
    # The ENMC card lists the red flags among triage's findings: no rule triage skips may
    # give one (their kinds are in recommendations.toml, which may change).
    import re
    from pathlib import Path

    import imnm.rules.classification as classification_rules

    sources = [Path(differential.__file__).read_text(encoding="utf-8"),
               Path(classification_rules.__file__).read_text(encoding="utf-8")]
    ids = {i for text in sources for i in re.findall(
        r'recommended\(\s*knowledge,\s*"([a-z_.]+)"', text)}
    assert {"caution.high_ck_not_specific", "caution.eular_score_blind_to_imnm"} <= ids
    assert {i: KB.recommendation(i).kind for i in ids if KB.recommendation(i).kind
            == "red_flag"} == {}
