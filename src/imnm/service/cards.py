"""From a child's triage (:func:`imnm.assessment.triage`) to CDS Hooks cards."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cache

from imnm.assessment import Triage
from imnm.findings import Finding
from imnm.knowledge import Knowledge
from imnm.service.cdshooks import Action, Card, Link, Source, Suggestion

IMNM_CLASSES = {"anti_hmgcr_imnm": "anti-HMGCR myopathy", "anti_srp_imnm": "anti-SRP myopathy",
                "seronegative_imnm": "antibody-negative IMNM"}


def _source(knowledge: Knowledge, source_id: str) -> Source:
    source = knowledge.sources[source_id]
    return Source(label=source.citation[:200], url=source.link)


_LABELLED_FACTS = {"enmc_class": "enmc_class", "drug": "drug", "tier": "tier"}


def _worded(field: str, value: object) -> object:
    """A fact's value as a person reads it (an id of a labelled kind becomes its label)."""
    kind = _LABELLED_FACTS.get(field)
    if kind is None or not isinstance(value, str):
        return value
    from imnm.knowledge import load_knowledge

    return load_knowledge().label(kind, value)


def _inputs_note(missing_inputs: list[str], not_read: list[str]) -> str:
    """What the card rests on without: prefetch the EHR did not provide, and what it sent
    that imnm could not read (a CK in a unit it does not convert, say), counted and named."""
    lines = []
    if missing_inputs:
        lines.append(f"_Not provided by the EHR: {', '.join(missing_inputs)}._")
    if not_read:
        more = f"; and {len(not_read) - 3} more" if len(not_read) > 3 else ""
        lines.append(f"_Sent by the EHR but not read ({len(not_read)}): "
                     f"{'; '.join(not_read[:3])}{more}._")
    return "\n".join(lines)


def _detail(findings: list[Finding], inputs_note: str) -> str:
    lines: list[str] = []
    for finding in findings:
        lines.append(f"**{finding.conclusion}**")
        lines.append("")
        lines += [f"- {fact.field.replace('_', ' ')}: {_worded(fact.field, fact.value)}"
                  for fact in finding.facts]
        if finding.missing:
            lines.append(f"- missing: {'; '.join(finding.missing)}")
        status = "" if finding.status.value == "confirmed" else f", {finding.status.value}"
        lines.append(f"- rule `{finding.rule_id}` (source `{finding.source}`{status})")
        lines.append("")
    lines.append(inputs_note)
    return "\n".join(lines).strip()


def _service_request(patient_ref: str, loinc: str, display: str) -> Action:
    return Action(type="create", description=f"Order {display}", resource={
        "resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
        "subject": {"reference": patient_ref},
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}],
                 "text": display}})


def cards_for(triage: Triage, knowledge: Knowledge, *, patient_ref: str,
              report_link: Callable[[], str] | None, missing_inputs: list[str],
              unreadable_inputs: list[str] | None = None,
              not_read: list[str] | None = None) -> list[Card]:
    """The cards for one patient-view call (none when nothing needs saying). Prefetch the EHR
    could not fill (an OperationOutcome) is said on a card of its own when no other card
    speaks, so an empty answer never hides data imnm did not get. ``not_read``: what the
    reader could not use (:attr:`imnm.fhir.ImportReport.ignored`), said on every card.
    ``report_link`` keeps the child's report and returns its link: called once, and only when
    a card links to it, so a child without a card leaves nothing behind."""
    note = _inputs_note(missing_inputs, not_read or [])
    by_rule = {f.rule_id: f for f in triage.findings}

    @cache
    def links() -> list[Link] | None:
        """The link to the full report, made (the report kept) once a card needs it."""
        if report_link is None:
            return None
        return [Link(label="Full imnm assessment", url=report_link(), type="absolute")]

    cards: list[Card] = []
    test = by_rule.get("suspicion.dystrophy_label_unconfirmed")
    if triage.suspicion.test_for_imnm_antibodies and test is not None:
        hmgcr = knowledge.codes_in("antibody_test", "HMGCR")[0].code
        srp = knowledge.codes_in("antibody_test", "SRP")[0].code
        cards.append(Card(
            uuid=str(uuid.uuid4()),
            summary="Test for anti-HMGCR and anti-SRP: this dystrophy label is unconfirmed "
                    "and CK is raised (possible IMNM)",
            indicator="warning", source=_source(knowledge, test.source),
            detail=_detail([test], note),
            suggestions=[Suggestion(
                label="Order anti-HMGCR and anti-SRP antibodies", uuid=str(uuid.uuid4()),
                isRecommended=True, actions=[
                    _service_request(patient_ref, hmgcr, "HMG-CoA reductase antibody"),
                    _service_request(patient_ref, srp, "Signal recognition particle antibody")])],
            selectionBehavior="any", links=links()))
    review = by_rule.get("suspicion.antibody_positive_with_dystrophy_label")
    if triage.suspicion.review_dystrophy_label and review is not None:
        cards.append(Card(
            uuid=str(uuid.uuid4()),
            summary="Positive IMNM antibody in a child labelled as a muscular dystrophy: "
                    "review the diagnosis",
            indicator="critical", source=_source(knowledge, review.source),
            detail=_detail([review], note), links=links()))
    if triage.enmc_class in IMNM_CLASSES:
        flags = [f for f in triage.findings if f.kind.value == "red_flag"
                 and not f.rule_id.startswith("suspicion.")]
        conclusion = by_rule["classification.enmc_2017"]
        cards.append(Card(
            uuid=str(uuid.uuid4()),
            summary=f"ENMC 2017: {IMNM_CLASSES[triage.enmc_class]}; see the treatment plan "
                    f"and {len(flags)} red flag{'s' if len(flags) != 1 else ''}",
            indicator="warning" if flags else "info",
            source=_source(knowledge, triage.enmc_source),
            detail=_detail([conclusion, *flags], note), links=links()))
    undetermined = by_rule.get("suspicion.undetermined")
    if undetermined is not None:
        cards.append(Card(
            uuid=str(uuid.uuid4()),
            summary="Possible IMNM behind a dystrophy label: record "
                    + "; ".join(undetermined.missing)[:60] + " first",
            indicator="info", source=_source(knowledge, undetermined.source),
            detail=_detail([undetermined], note), links=links()))
    decisive = [k for k in unreadable_inputs or () if k in ("conditions", "observations")]
    if decisive and not cards:
        cards.append(Card(
            uuid=str(uuid.uuid4()),
            summary="imnm could not screen for IMNM: the EHR did not return "
                    + " or ".join(decisive),
            indicator="info", source=Source(label="imnm"),
            detail="The EHR answered the prefetch for "
                   + ", ".join(f"`{k}`" for k in unreadable_inputs or ())
                   + " with an error (OperationOutcome) or nothing. imnm read it as missing "
                     "data, not as an empty record: no conclusion was drawn from it."))
    return cards
