"""Work-up and red flags: what to test next and what to act on.

Rule ids are those of ``recommendations.toml`` (``workup.*``, ``redflag.*``, ``caution.*``);
this module decides when each applies, from the child's facts and the ENMC class.
"""

from __future__ import annotations

from imnm.findings import Finding, facts, recommended
from imnm.knowledge import Knowledge
from imnm.patient import Antibody, AntibodyStatus, BiopsyConclusion, Patient
from imnm.rules._facts import (
    antibody_status,
    classify_labels,
    line_blot_only,
    necrotizing_biopsy,
    read_ck,
)

_PANEL = tuple(a for a in Antibody if a not in (Antibody.HMGCR, Antibody.SRP))
_IHC_FIELDS = ("mhc_i", "mhc_ii", "mac", "p62")


_EXPOSURE_WORDS = {"statin": "statin", "red_yeast_rice": "red yeast rice",
                   "mushrooms": "mushrooms", "pu_erh_tea": "Pu-erh tea"}

def evaluate(patient: Patient, knowledge: Knowledge, enmc_class: str) -> tuple[Finding, ...]:
    """Work-up actions and red flags for one child."""
    out: list[Finding] = []
    ck = read_ck(patient, knowledge)
    weak = patient.weakness.has_proximal_weakness()
    labels = [lab for lab in classify_labels(patient, knowledge) if lab.set is not None]
    picture = bool(ck.elevated or weak or labels)
    hmgcr, srp = patient.antibody(Antibody.HMGCR), patient.antibody(Antibody.SRP)
    known = (AntibodyStatus.positive, AntibodyStatus.negative)
    imnm_positive = AntibodyStatus.positive in (hmgcr, srp)
    both_negative = hmgcr is AntibodyStatus.negative and srp is AntibodyStatus.negative
    genetic_confirmed = patient.genetic_testing.confirmed
    seen = facts(peak_ck=ck.describe(), proximal_weakness=weak,
                 anti_HMGCR=antibody_status(patient, Antibody.HMGCR),
                 anti_SRP=antibody_status(patient, Antibody.SRP))

    if picture and not genetic_confirmed and (hmgcr not in known or srp not in known):
        out.append(recommended(knowledge, "workup.imnm_antibodies", facts_used=seen))
    other_msa = [a for a in _PANEL if patient.antibody(a) is AntibodyStatus.positive
                 and knowledge.antibodies[a].kind == "specific"]
    open_question = picture and not genetic_confirmed and enmc_class != "not_imnm"
    if open_question and not imnm_positive and not other_msa:
        unreported = [a.value for a in _PANEL if patient.antibody(a) not in known]
        if unreported:
            out.append(recommended(knowledge, "workup.myositis_antibody_panel",
                                   facts_used=facts(not_reported=unreported)))
    if open_question and patient.mri is None:
        out.append(recommended(knowledge, "workup.muscle_mri", facts_used=facts(mri="none")))

    biopsy = patient.biopsy
    if biopsy is None and both_negative and picture:
        out.append(recommended(knowledge, "workup.biopsy_required_seronegative",
                               facts_used=seen, missing=("muscle biopsy",)))
        out.append(recommended(knowledge, "workup.muscle_biopsy"))
    elif biopsy is None and open_question and not imnm_positive:
        out.append(recommended(knowledge, "workup.muscle_biopsy", facts_used=facts(biopsy="none")))
    elif (biopsy is not None and biopsy.conclusion is None and not imnm_positive
          and necrotizing_biopsy(biopsy)[0] is not False):
        unstained = [f for f in _IHC_FIELDS if getattr(biopsy, f) is None]
        if len(unstained) >= 2:
            out.append(recommended(knowledge, "workup.muscle_biopsy",
                                   facts_used=facts(stains_not_reported=unstained),
                                   prefix="Biopsy reported without immunohistochemistry. "))

    dystrophy_like = [lab for lab in labels if lab.set in ("dystrophy", "unexplained_myopathy")]
    genetic = patient.genetic_testing
    dystrophic_biopsy = biopsy is not None and biopsy.conclusion is BiopsyConclusion.dystrophic
    # A dystrophy must be excluded before a seronegative class, label or no label.
    seronegative_question = picture and both_negative and enmc_class in (
        "seronegative_imnm", "insufficient_data")
    if (dystrophy_like or seronegative_question or dystrophic_biopsy) \
            and genetic.result is None and not imnm_positive:
        why: dict[str, object] = {}
        if dystrophy_like:
            why["labels"] = [lab.text() for lab in dystrophy_like]
        if seronegative_question:
            why["anti_HMGCR_and_anti_SRP"] = "negative"
            why["enmc_class"] = enmc_class
        if dystrophic_biopsy:
            why["biopsy_conclusion"] = "dystrophic"
        out.append(recommended(knowledge, "workup.genetic_testing", facts_used=facts(
            **why, genetic_testing="not done or not reported")))

    # ---- red flags
    extra = patient.extramuscular
    if (srp is AntibodyStatus.positive or enmc_class == "seronegative_imnm"
            or extra.cardiac is True):
        out.append(recommended(knowledge, "redflag.cardiac_evaluation", facts_used=facts(
            anti_SRP=antibody_status(patient, Antibody.SRP), enmc_class=enmc_class,
            cardiac_involvement=extra.cardiac)))
    if hmgcr is AntibodyStatus.positive and srp is not AntibodyStatus.positive:
        # Item by item: unknown heart or swallowing status in IMNM is a question to ask.
        if extra.cardiac is None:
            out.append(recommended(knowledge, "redflag.cardiac_status_unknown",
                                   facts_used=facts(anti_HMGCR="positive", cardiac="not recorded"),
                                   missing=("cardiac assessment",)))
        if extra.dysphagia is None:
            out.append(recommended(knowledge, "redflag.swallowing_status_unknown",
                                   facts_used=facts(anti_HMGCR="positive",
                                                    dysphagia="not recorded"),
                                   missing=("swallowing assessment",)))
    if (srp is AntibodyStatus.positive or extra.dysphagia is True
            or extra.interstitial_lung_disease is True):
        out.append(recommended(knowledge, "redflag.lung_and_swallowing", facts_used=facts(
            anti_SRP=antibody_status(patient, Antibody.SRP), dysphagia=extra.dysphagia,
            interstitial_lung_disease=extra.interstitial_lung_disease)))
    if enmc_class == "seronegative_imnm":
        out.append(recommended(knowledge, "redflag.cancer_screening",
                               facts_used=facts(enmc_class=enmc_class)))
    if line_blot_only(patient, Antibody.SRP):
        out.append(recommended(knowledge, "caution.srp_line_blot",
                               facts_used=facts(anti_SRP="positive by line blot")))

    exposures = patient.exposures
    if exposures.statin is True:
        out.append(recommended(knowledge, "redflag.statin_exposure",
                               facts_used=facts(statin=exposures.statin_name or True)))
    food = [_EXPOSURE_WORDS[n] for n in ("red_yeast_rice", "mushrooms", "pu_erh_tea")
            if getattr(exposures, n) is True]
    if food:
        out.append(recommended(knowledge, "redflag.food_statin_exposure",
                               facts_used=facts(food_sources=food)))
    unknown = [_EXPOSURE_WORDS[n] for n in ("statin", "red_yeast_rice", "mushrooms",
                                            "pu_erh_tea") if getattr(exposures, n) is None]
    if unknown and not genetic_confirmed and (
            hmgcr is AntibodyStatus.positive or (picture and hmgcr not in known)):
        out.append(recommended(knowledge, "workup.ask_statin_exposure",
                               facts_used=facts(not_recorded=unknown),
                               missing=tuple(unknown)))
    infection = patient.preceding_infection
    if infection.present is True:
        out.append(recommended(knowledge, "redflag.preceding_infection", facts_used=facts(
            infection=infection.description or True,
            weeks_before_onset=infection.weeks_before_onset)))
    fatty = [where for where, flag in (
        ("MRI", patient.mri.fatty_replacement if patient.mri else None),
        ("biopsy", biopsy.fatty_replacement if biopsy else None)) if flag is True]
    if fatty and not genetic_confirmed:
        out.append(recommended(knowledge, "redflag.fatty_replacement",
                               facts_used=facts(fatty_replacement_on=fatty)))
    return tuple(out)
