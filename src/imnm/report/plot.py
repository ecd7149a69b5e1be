"""The course as a picture: CK (log scale) and strength over time, treatments as bars below.

matplotlib is imported here only, with the non-interactive Agg backend.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from imnm.knowledge import load_knowledge
from imnm.patient import Patient


def _num(day: dt.date) -> float:
    """A date as matplotlib's day number (days since 1970-01-01, its default epoch)."""
    return float((day - dt.date(1970, 1, 1)).days)


def plot_course(patient: Patient, path: Path, *, refractory_since: dt.date | None = None
                ) -> Path:
    """Draw the course of ``patient`` to ``path`` (.png or .svg) and return the path; mark the
    visit from which the disease was refractory, when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"plot: got {path.suffix!r}; expected a .png or .svg file name")
    visits = sorted(patient.visits, key=lambda v: v.date)
    treatments = [t for t in patient.treatments if t.start is not None]
    fig, (ax, bars) = plt.subplots(
        2, 1, figsize=(9, 5.5), sharex=True,
        gridspec_kw={"height_ratios": [3, max(1, len(treatments)) * 0.45 + 0.4]})
    ck = [(v.date, v.ck.u_per_l) for v in visits if v.ck is not None and v.ck.u_per_l]
    if ck:
        ax.plot([d for d, _ in ck], [c for _, c in ck], "o-", color="#b2182b", label="CK (U/L)")
        ax.set_yscale("log")
    ax.set_ylabel("CK (U/L, log scale)", color="#b2182b")
    uln = next((v.ck.upper_limit_u_per_l for v in visits
                if v.ck is not None and v.ck.upper_limit_u_per_l), None)
    if uln:
        ax.axhline(uln, color="#b2182b", linestyle=":", linewidth=1)
        ax.annotate("upper limit", (visits[0].date, uln), color="#b2182b", fontsize=8,
                    xytext=(2, 2), textcoords="offset points")
    scales = load_knowledge().scales
    right = ax.twinx()
    drawn = False
    for name, label, color, scale in (
            ("mmt8", f"MMT-8 (/{scales['mmt8'].max:g})", "#2166ac", scales["mmt8"].max),
            ("cmas", f"CMAS (/{scales['cmas'].max:g})", "#4393c3", scales["cmas"].max),
            ("mrc_proximal", f"proximal MRC (/{scales['mrc'].max:g})", "#1b7837",
             scales["mrc"].max)):
        points = [(v.date, getattr(v, name) / scale * 100) for v in visits
                  if getattr(v, name) is not None]
        if points:
            right.plot([d for d, _ in points], [s for _, s in points], "s--", color=color,
                       label=label)
            drawn = True
    right.set_ylim(0, 105)
    right.set_ylabel("strength, % of scale maximum" if drawn else "")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize=8)
    ax.set_title(f"Course of {patient.id}")
    if refractory_since is not None:
        for axis in (ax, bars):
            axis.axvline(_num(refractory_since), color="#d6604d", linestyle="--", linewidth=1)
        ax.annotate("refractory", (_num(refractory_since), 0.02),
                    xycoords=("data", "axes fraction"), color="#d6604d", fontsize=8,
                    xytext=(3, 0), textcoords="offset points")
    end_default = max([v.date for v in visits] + [patient.reference_date()])
    for row, t in enumerate(treatments):
        start = t.start or end_default  # treatments without a start were filtered out above
        end = t.end or end_default
        width = max((end - start).days, 3)
        bars.barh(row, width, left=_num(start), height=0.6, color="#999999")
        label = (load_knowledge().label("drug", t.drug.value) if t.drug.value != "other"
                 else (t.name or "other"))
        if t.dose is not None:
            label += f" {t.dose.value:g} {t.dose.unit}"
        bars.text(_num(start), row, " " + label, va="center", fontsize=8)
    bars.set_yticks([])
    bars.set_ylim(-0.7, max(len(treatments), 1) - 0.3)
    bars.invert_yaxis()
    bars.set_xlabel("date")
    bars.xaxis.set_major_formatter(
        mdates.DateFormatter("%Y-%m"))  # type: ignore[no-untyped-call]
    if not visits and not treatments:
        ax.text(0.5, 0.5, "no visits or treatments recorded", transform=ax.transAxes,
                ha="center")
        bars.set_xlim(_num(dt.date.today()) - 30, _num(dt.date.today()))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
