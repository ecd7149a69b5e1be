"""Anti-HMGCR against anti-SRP, feature by feature: proportions over children with the feature
reported, Wilson 95% intervals and Fisher's exact test (scipy).

The review states that anti-SRP children have more dysphagia, cardiac and lung involvement;
these figures show how strong the evidence in its own table is. Counts come from Table 1 rows
(study-level aggregates), so children are not independent of their study: read the p-values as
descriptive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats as sps

from imnm.evidence.table import FEATURES, Table1

CONFIDENCE = 0.95


class Proportion(BaseModel):
    """k of n with a Wilson interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    positive: int
    known: int
    proportion: float | None
    low: float | None
    high: float | None


class Comparison(BaseModel):
    """One feature, anti-HMGCR against anti-SRP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str
    hmgcr: Proportion
    srp: Proportion
    odds_ratio: float | None
    p_value: float | None
    test: str = "Fisher's exact test, two-sided"


def wilson(positive: int, known: int, confidence: float = CONFIDENCE) -> Proportion:
    """The proportion with its Wilson score interval (scipy's binomtest)."""
    if known == 0:
        return Proportion(positive=0, known=0, proportion=None, low=None, high=None)
    interval = sps.binomtest(positive, known).proportion_ci(confidence_level=confidence,
                                                            method="wilson")
    return Proportion(positive=positive, known=known, proportion=positive / known,
                      low=float(interval.low), high=float(interval.high))


def fisher(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Odds ratio and two-sided p of the 2x2 table [[a, b], [c, d]]."""
    result = sps.fisher_exact(np.array([[a, b], [c, d]]), alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def compare(table: Table1) -> tuple[Comparison, ...]:
    """Each feature of Table 1, anti-HMGCR against anti-SRP."""
    out = []
    for feature in FEATURES:
        counts = {}
        for antibody in ("HMGCR", "SRP"):
            rows = [r for r in table.rows if r.antibody == antibody]
            counts[antibody] = (sum(getattr(r, feature)[0] for r in rows),
                                sum(getattr(r, feature)[1] for r in rows))
        (hk, hn), (sk, sn) = counts["HMGCR"], counts["SRP"]
        odds: float | None = None
        p: float | None = None
        if hn and sn:
            odds, p = fisher(sk, sn - sk, hk, hn - hk)  # SRP vs HMGCR: OR > 1 = more in SRP
        out.append(Comparison(feature=feature, hmgcr=wilson(hk, hn), srp=wilson(sk, sn),
                              odds_ratio=odds, p_value=p))
    return tuple(out)


def plot_comparison(comparisons: tuple[Comparison, ...], path: Path) -> Path:
    """Proportions with Wilson intervals by antibody, one group per feature (PNG or SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"figure: got {path.suffix!r}; expected a .png or .svg file name")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colours = {"HMGCR": "#4393c3", "SRP": "#d6604d"}
    for i, comp in enumerate(comparisons):
        for offset, (name, prop) in zip((-0.12, 0.12), (("HMGCR", comp.hmgcr),
                                                        ("SRP", comp.srp)), strict=True):
            if prop.proportion is None or prop.low is None or prop.high is None:
                continue
            ax.errorbar(i + offset, prop.proportion,
                        yerr=[[prop.proportion - prop.low], [prop.high - prop.proportion]],
                        fmt="o", color=colours[name], capsize=4,
                        label=f"anti-{name}" if i == 0 else None)
            ax.annotate(f"{prop.positive}/{prop.known}", (i + offset, prop.high),
                        xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(range(len(comparisons)), [
        c.feature + (f"\nFisher p = {c.p_value:.2g}" if c.p_value is not None else "")
        for c in comparisons])
    ax.set_ylim(-0.05, 1.1)
    ax.set_ylabel("proportion of children with the feature reported")
    ax.set_title("Pediatric IMNM, review Table 1: anti-HMGCR vs anti-SRP (Wilson 95% CI)",
                 fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
