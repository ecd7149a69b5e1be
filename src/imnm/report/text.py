"""A sectioned report a clinician reads at a glance, as plain text or Markdown.

Both renderings come from one outline (:func:`outline`): a list of sections, each a title
and lines; only the decoration differs.
"""

from __future__ import annotations

from imnm.assessment import Assessment
from imnm.findings import Finding, Kind
from imnm.knowledge import load_knowledge

_KIND_MARK = {
    Kind.action: "DO",
    Kind.red_flag: "RED FLAG",
    Kind.caution: "CAUTION",
    Kind.note: "NOTE",
    Kind.gap: "MISSING",
    Kind.conclusion: "",
}
_UNSURE = {"unconfirmed", "secondary", "heuristic", "derived"}


def cite(source: str, status: str, rule_id: str | None = None) -> str:
    """'[rule | source; status]', the status shown only when it is not 'confirmed'."""
    mark = f"; {status}" if status in _UNSURE else ""
    return f"[{rule_id + ' | ' if rule_id else ''}{source}{mark}]"


def _cite(finding: Finding) -> str:
    return cite(finding.source, finding.status.value, finding.rule_id)


def _finding_lines(finding: Finding) -> list[str]:
    mark = _KIND_MARK[finding.kind]
    lines = [f"{mark + ': ' if mark else ''}{finding.conclusion} {_cite(finding)}"]
    if finding.missing:
        lines.append("  missing: " + "; ".join(finding.missing))
    return lines


def outline(a: Assessment) -> list[tuple[str, list[str]]]:
    """The report's sections: (title, lines); lines starting with two spaces are sub-items."""
    s = a.summary
    enmc = a.classification.enmc_2017
    eular = a.classification.eular_acr_2017
    sections: list[tuple[str, list[str]]] = []

    def value(v: object) -> str:
        return "unknown" if v is None else ("yes" if v is True else "no" if v is False else str(v))

    child = [
        f"sex {s.sex}; age {value(s.age_years)} y; onset at {value(s.onset_age_years)} y, "
        f"pattern {value(s.onset_pattern)}"
        + (f" (from {s.onset_pattern_from})" if s.onset_pattern_from else ""),
        f"peak CK: {s.peak_ck}; proximal weakness: {value(s.proximal_weakness)}",
        f"anti-HMGCR: {s.anti_hmgcr}; anti-SRP: {s.anti_srp}"
        + (f"; other positive: {', '.join(s.other_positive_antibodies)}"
           if s.other_positive_antibodies else ""),
        "labels: " + ("; ".join(s.diagnosis_labels) or "none"),
    ]
    if s.unrecognised_codes:
        child.append("unrecognised codes (not used): " + "; ".join(s.unrecognised_codes))
    sections.append((f"Patient {a.patient_id} (as of {a.as_of})", child))

    sus = a.suspicion
    workup_tests = any(f.rule_id == "workup.imnm_antibodies" for f in a.findings)
    verdict = ("YES: test for anti-HMGCR and anti-SRP" if sus.test_for_imnm_antibodies
               else "undetermined: " + "; ".join(sus.undetermined) if sus.undetermined
               else "not flagged by the dystrophy-label rule"
               + ("; the work-up below still recommends testing" if workup_tests else ""))
    lines = [f"Test for IMNM antibodies now? {verdict}"]
    if sus.review_dystrophy_label:
        lines.append("Review the dystrophy label: an IMNM antibody is positive.")
    lines += [ln for f in a.findings if f.rule_id.startswith("suspicion.")
              for ln in _finding_lines(f)]
    sections.append(("Could this be IMNM?", lines))

    kb = load_knowledge()
    lines = [f"ENMC 2017: {kb.label('enmc_class', enmc.cls)}  "
             f"[{enmc.source}; {enmc.status.value}]"]
    lines += [f"  {r}" for r in enmc.reasons]
    if enmc.missing:
        lines.append("  missing: " + "; ".join(enmc.missing))
    if enmc.caveats:
        lines.append("  caveats: " + "; ".join(enmc.caveats))
    category: dict[str, str] = {c.id: c.says for c in kb.eular_categories}
    lines.append(
        f"EULAR/ACR 2017 ({'with' if eular.with_biopsy else 'without'} biopsy): score "
        f"{eular.score:g}, {category[eular.category]}; probability about "
        f"{eular.probability:.0%} (approximate)"
        + (f"; subgroup {kb.label('eular_subgroup', eular.subgroup)}" if eular.subgroup
           else ""))
    if eular.unknown_items:
        lines.append(f"  unknown items could raise it to {eular.max_score_if_unknown_present:g}"
                     f" ({category[eular.category_if_unknown_present]}):")
        lines += [f"  {kb.eular_items[i].says}: unknown because "
                  f"{eular.unknown_why.get(i, 'not recorded')}" for i in eular.unknown_items]
    lines.append(f"  {eular.note}")
    sections.append(("Which subtype?", lines))

    lines = []
    for subgroup, ev in a.differential.items():
        if ev.supports or ev.against:
            lines.append(f"{kb.label('differential', subgroup)}: for {len(ev.supports)}, "
                         f"against {len(ev.against)}")
            lines += [f"  for: {x}" for x in ev.supports]
            lines += [f"  against: {x}" for x in ev.against]
    lines += [ln for f in a.findings if f.rule_id.startswith("differential.")
              and f.kind is not Kind.note for ln in _finding_lines(f)]
    sections.append(("What else could it be?", lines or ["no biopsy, antibody or genetic "
                                                        "evidence to weigh yet"]))

    todo = [f for f in a.findings if f.kind in (Kind.action,)
            and not f.rule_id.startswith("suspicion.")]
    sections.append(("What to test next", [ln for f in todo for ln in _finding_lines(f)]
                     or ["nothing further flagged"]))
    flags = [f for f in a.findings if f.kind in (Kind.red_flag, Kind.caution, Kind.note)
             and not f.rule_id.startswith(("suspicion.", "differential."))]
    sections.append(("Red flags and cautions", [ln for f in flags for ln in _finding_lines(f)]
                     or ["none"]))
    sections.append(("Sources", [f"{k}: {v}" + _doi_link(k, v) for k, v in a.sources.items()]))
    return sections


def _doi_link(source_id: str, citation: str) -> str:
    source = load_knowledge().sources.get(source_id)
    if source is None or source.doi_url is None or (source.doi or "") in citation:
        return ""
    return f" {source.doi_url}"


def render_text(a: Assessment) -> str:
    """Plain text, one block per section."""
    out: list[str] = []
    for title, lines in outline(a):
        out += [title, "-" * len(title), *lines, ""]
    return "\n".join(out)


def render_markdown(a: Assessment) -> str:
    """Markdown with one heading per section."""
    out: list[str] = []
    for i, (title, lines) in enumerate(outline(a)):
        out.append(("# " if i == 0 else "## ") + title)
        out.append("")
        out += [f"- {ln.strip()}" if not ln.startswith("  ") else f"  - {ln.strip()}"
                for ln in lines]
        out.append("")
    return "\n".join(out)
