"""The per-child route: read the same staged rows the screen reads, build one Patient per child,
and ask the per-child rules which tiers apply. Used by the differential test (the screen and
the rules must agree child by child) and timed by benchmarks/screen.py.

The screen's population conventions apply here too: proximal weakness is not required
(``suspicion_require_proximal_weakness = false``), family history is unknown, and a child's
antibody status is positive if any result is positive, else negative if any is negative.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from imnm.errors import InputError
from imnm.knowledge import Knowledge
from imnm.patient import Antibody, AntibodyStatus, Drug, Patient, load_patient
from imnm.rules import suspicion
from imnm.rules.treatment import corticosteroid_alone_days
from imnm.screen.definition import Parameters
from imnm.screen.engines import Engine


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[str(row["person_id"])].append(row)
    return grouped


def patients(engine: Engine, knowledge: Knowledge, as_of: dt.date,
             max_age_years: float, sample: int | None = None) -> Iterator[Patient]:
    """One Patient per staged child (the screen's staging views must exist); ``sample``
    keeps the first children by person id (for timing the per-child route)."""
    keywords: dict[str, str] = {}
    for keyword in knowledge.keywords:
        keywords.setdefault(keyword.set, keyword.text)
    # ``where`` holds only an int() value: nothing user-supplied reaches the SQL.
    where = "" if sample is None else (
        " WHERE person_id IN (SELECT person_id FROM imnm_person ORDER BY person_id"  # noqa: S608
        f" LIMIT {int(sample)})")
    conditions = _group(engine.rows("SELECT * FROM imnm_condition" + where))  # noqa: S608
    measurements = _group(engine.rows("SELECT * FROM imnm_measurement" + where))  # noqa: S608
    drugs = _group(engine.rows("SELECT * FROM imnm_drug" + where))  # noqa: S608
    for person in engine.rows("SELECT * FROM imnm_person" + where):  # noqa: S608
        pid = str(person["person_id"])
        birth = person["birth_date"]
        if birth is not None and (as_of - birth).days / 365.25 > max_age_years:
            continue
        data: dict[str, Any] = {"id": pid, "as_of": as_of.isoformat(),
                                "sex": person["sex"] or "unknown",
                                "birth_date": birth.isoformat() if birth else None}
        diagnoses = []
        for row in conditions.get(pid, []):
            start = row["start_date"]
            if start is not None and start > as_of:
                continue
            # The staging already placed the code in its set (by code or by the vocabulary's
            # hierarchy); the label carries a keyword of that set so the rules place it too.
            diagnoses.append({"label": f"{keywords[row['set_name']]} [{row['code']}]",
                              "status": "active" if row["active"] else "resolved"})
        ck: list[dict[str, Any]] = []
        antibodies: dict[str, str] = {}
        genetic: str | None = None
        for row in measurements.get(pid, []):
            when = row["date"]
            if when is not None and when > as_of:
                continue
            if row["set_name"] == "ck" and row["value"] is not None and row["value"] >= 0 \
                    and row["factor"] is not None:
                factor = float(row["factor"])
                result: dict[str, Any] = {"value": row["value"] * factor, "unit": "U/L",
                                          "date": when.isoformat() if when else None}
                if row["range_high"] is not None:
                    result["upper_limit"] = row["range_high"] * factor
                ck.append(result)
            elif row["set_name"] == "antibody_test" and row["result"] and row["concept"]:
                name = Antibody(row["concept"]).value
                if antibodies.get(name) != "positive":
                    antibodies[name] = row["result"]
            elif row["set_name"] == "genetic_test" and row["result"]:
                if genetic != "diagnostic":
                    genetic = "diagnostic" if row["result"] == "positive" else "negative"
        treatments = []
        for row in drugs.get(pid, []):
            start = row["start_date"]
            if row["concept"] not in Drug.__members__ or start is None or start > as_of:
                continue
            treatments.append({"drug": row["concept"], "start": start.isoformat(),
                               "end": (row["end_date"] or start).isoformat()})
        data |= {"diagnoses": diagnoses, "ck": ck, "antibodies": antibodies,
                 "treatments": treatments}
        if genetic:
            data["genetic_testing"] = {"done": True, "result": genetic}
        try:
            yield load_patient(data)
        except InputError:
            continue  # a child the patient model refuses (e.g. impossible dates) is skipped


def tiers(patient: Patient, knowledge: Knowledge, params: Parameters) -> set[str]:
    """The worklist tiers the per-child rules give this child."""
    settings = {k: p.value for k, p in knowledge.parameters.items()}
    settings |= {"suspicion_require_proximal_weakness": False,
                 "suspicion_min_ck_multiple_of_uln": params.min_ck_multiple}
    found = suspicion.evaluate(patient, knowledge, settings)
    out = set()
    if found.test_for_imnm_antibodies:
        out.add("test_for_antibodies")
    if found.review_dystrophy_label:
        out.add("review_dystrophy_label")
    positive = any(patient.antibody(a) is AntibodyStatus.positive
                   for a in (Antibody.HMGCR, Antibody.SRP))
    days = corticosteroid_alone_days(patient)
    if positive and days is not None and days >= params.review_days:
        out.add("review_treatment")
    return out
