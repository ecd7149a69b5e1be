"""The words of the patient model: sexes, antibodies, drugs, results and other enumerations,
with the spellings of antibodies and drugs that patient files and EHRs use.

A module of its own so that the knowledge base can name antibodies and drugs without
importing the patient model (which reads its plausibility limits from the knowledge base).
"""

from __future__ import annotations

import re
from enum import StrEnum

from imnm.errors import field_error


class Sex(StrEnum):
    """Sex recorded for the child."""

    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class OnsetPattern(StrEnum):
    """Speed of onset, as the 2023 review's Table 1 footnote defines it; the month bands
    live in the knowledge file ``onset_patterns.toml``."""

    acute = "acute"
    subacute = "subacute"
    chronic = "chronic"
    insidious = "insidious"


class Antibody(StrEnum):
    """Myositis-specific and -associated autoantibodies imnm records."""

    HMGCR = "HMGCR"
    SRP = "SRP"
    MI2 = "Mi-2"
    TIF1G = "TIF1-gamma"
    NXP2 = "NXP2"
    MDA5 = "MDA5"
    SAE = "SAE"
    JO1 = "Jo-1"
    PL7 = "PL-7"
    PL12 = "PL-12"
    EJ = "EJ"
    OJ = "OJ"
    KU = "Ku"
    PMSCL = "PM-Scl"
    RO52 = "Ro52"
    CN1A = "cN1A"


def _squash(text: str) -> str:
    text = text.lower().replace("α", "alpha").replace("γ", "gamma").replace("β", "beta")
    text = re.sub(r"^anti[\s_-]*", "", text)
    return re.sub(r"[^a-z0-9]", "", text)


_ANTIBODY_ALIASES: dict[str, Antibody] = {_squash(a.value): a for a in Antibody}


_ANTIBODY_ALIASES.update(
    {
        "hmgcoareductase": Antibody.HMGCR,
        "mi2alpha": Antibody.MI2,
        "mi2beta": Antibody.MI2,
        "tif1": Antibody.TIF1G,
        "tif1g": Antibody.TIF1G,
        "p155140": Antibody.TIF1G,
        "mj": Antibody.NXP2,
        "nxp2mj": Antibody.NXP2,
        "cadm140": Antibody.MDA5,
        "sae1": Antibody.SAE,
        "sae2": Antibody.SAE,
        "pmscl": Antibody.PMSCL,
        "pmscl75": Antibody.PMSCL,
        "pmscl100": Antibody.PMSCL,
        "trim21": Antibody.RO52,
        "nt5c1a": Antibody.CN1A,
    }
)


def antibody_named(name: str) -> Antibody | None:
    """The :class:`Antibody` a spelling such as ``anti-HMGCR`` or ``Mi-2α`` names, or None
    (for readers that try every result's words: no error is built for the many that are not
    antibodies)."""
    return _ANTIBODY_ALIASES.get(_squash(name))


def parse_antibody(name: str) -> Antibody:
    """Map a spelling such as ``anti-HMGCR`` or ``Mi-2α`` to an :class:`Antibody`."""
    found = antibody_named(name)
    if found is None:
        raise field_error(name, name,
                   f"an antibody name, one of {', '.join(a.value for a in Antibody)}")
    return found


class AntibodyStatus(StrEnum):
    """Result of one antibody test. ``not_tested`` is said, never assumed from silence."""

    positive = "positive"
    negative = "negative"
    not_tested = "not_tested"


class AssayMethod(StrEnum):
    """How the antibody was measured; line blots give false-positive anti-SRP results."""

    line_blot = "line_blot"
    elisa = "elisa"
    immunoprecipitation = "immunoprecipitation"
    cell_based = "cell_based"
    immunofluorescence = "immunofluorescence"
    other = "other"


class Drug(StrEnum):
    """Treatments imnm recognises; ``other`` needs a ``name``."""

    corticosteroid = "corticosteroid"  # unspecified, as many case reports record it
    prednisolone = "prednisolone"
    prednisone = "prednisone"
    methylprednisolone = "methylprednisolone"
    methotrexate = "methotrexate"
    ivig = "ivig"
    scig = "scig"
    rituximab = "rituximab"
    cyclophosphamide = "cyclophosphamide"
    azathioprine = "azathioprine"
    mycophenolate_mofetil = "mycophenolate_mofetil"
    tacrolimus = "tacrolimus"
    cyclosporine = "cyclosporine"
    hydroxychloroquine = "hydroxychloroquine"
    infliximab = "infliximab"
    etanercept = "etanercept"
    abatacept = "abatacept"
    leflunomide = "leflunomide"
    plasma_exchange = "plasma_exchange"
    other = "other"


CORTICOSTEROIDS = frozenset({Drug.corticosteroid, Drug.prednisolone, Drug.prednisone,
                             Drug.methylprednisolone})
"""The corticosteroids among imnm's drugs (the treatment rules and the screen's
corticosteroid-alone count both use this one set)."""


_DRUG_ALIASES: dict[str, Drug] = {_squash(d.value): d for d in Drug}


_DRUG_ALIASES.update(
    {
        "cs": Drug.corticosteroid,
        "steroid": Drug.corticosteroid,
        "steroids": Drug.corticosteroid,
        "glucocorticoid": Drug.corticosteroid,
        "ivmp": Drug.methylprednisolone,
        "mtx": Drug.methotrexate,
        "immunoglobulin": Drug.ivig,
        "rtx": Drug.rituximab,
        "cyp": Drug.cyclophosphamide,
        "aza": Drug.azathioprine,
        "mmf": Drug.mycophenolate_mofetil,
        "mycophenolate": Drug.mycophenolate_mofetil,
        "csa": Drug.cyclosporine,
        "ciclosporin": Drug.cyclosporine,
        "hcq": Drug.hydroxychloroquine,
        "ifx": Drug.infliximab,
        "etn": Drug.etanercept,
        "lef": Drug.leflunomide,
        "pe": Drug.plasma_exchange,
        "plex": Drug.plasma_exchange,
    }
)


def parse_drug(name: str) -> Drug:
    """Map a spelling such as ``MTX`` or ``IVIg`` to a :class:`Drug`."""
    found = _DRUG_ALIASES.get(_squash(name))
    if found is None:
        raise ValueError(f"a drug, one of {', '.join(d.value for d in Drug)}")
    return found


class Interpretation(StrEnum):
    """A laboratory's own flag, for results reported without a number (case reports)."""

    elevated = "elevated"
    normal = "normal"


class BiopsyConclusion(StrEnum):
    """The pathologist's overall reading, when the features are not itemised."""

    necrotizing_myopathy = "necrotizing_myopathy"
    dermatomyositis = "dermatomyositis"
    antisynthetase = "antisynthetase"
    inclusion_body_myositis = "inclusion_body_myositis"
    dystrophic = "dystrophic"
    nonspecific = "nonspecific"
    normal = "normal"


class GeneticResult(StrEnum):
    """Outcome of genetic testing for an inherited myopathy."""

    diagnostic = "diagnostic"  # pathogenic variant(s) that explain the disease
    negative = "negative"
    uncertain = "uncertain"  # variants of uncertain significance only
    pending = "pending"


class DiagnosisStatus(StrEnum):
    """Whether a diagnosis label is current."""

    active = "active"
    resolved = "resolved"
    refuted = "refuted"
