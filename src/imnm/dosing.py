"""Dose arithmetic: body surface area, per-kg and per-m² doses with caps, rounding, cumulative
totals. The numbers come from ``regimens.toml``; this module only computes.

Rules every computed dose obeys (property-tested):

* the dose is ``amount x weight`` (per kg) or ``amount x BSA`` (per m²);
* it is then limited to the cap, when the sources give one: ``min(dose, cap)``;
* it is then rounded DOWN to the dose's ``rounding_increment``, so rounding never raises a dose
  above the computed value or the cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from imnm.knowledge import Knowledge, Status
from imnm.knowledge._models import DoseRule
from imnm.patient import MAX_HEIGHT_CM, MAX_WEIGHT_KG, MIN_HEIGHT_CM

BSA_FORMULA = "Mosteller: BSA (m²) = √(height cm × weight kg / 3600)"
ROUNDING_RULE = ("rounded down to the dose's increment, after the cap, so rounding never "
                 "raises a dose")


class DosingError(ValueError):
    """A dose cannot be computed: names what is missing or out of range."""


def bsa_mosteller(weight_kg: float, height_cm: float) -> float:
    """Body surface area in m² by Mosteller (1987)."""
    if not 0 < weight_kg <= MAX_WEIGHT_KG:
        raise DosingError(f"weight: got {weight_kg:g} kg; expected above 0 and at most "
                          f"{MAX_WEIGHT_KG:g} kg")
    if not MIN_HEIGHT_CM <= height_cm <= MAX_HEIGHT_CM:
        raise DosingError(f"height: got {height_cm:g} cm; expected {MIN_HEIGHT_CM:g}-"
                          f"{MAX_HEIGHT_CM:g} cm")
    return math.sqrt(height_cm * weight_kg / 3600.0)


def round_down(value: float, increment: float) -> float:
    """``value`` rounded down to a multiple of ``increment`` (guarding float noise)."""
    steps = math.floor(value / increment + 1e-9)
    return round(steps * increment, 6)


class ComputedDose(BaseModel):
    """One drug's dose for one child, with how it was reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dose_id: str
    drug: str
    says: str
    low: float
    high: float
    unit: str
    per: str
    route: str
    frequency: str
    duration: str
    basis: str
    calculation: str
    capped: bool
    cap: float | None
    cap_note: str
    rounding: str
    bsa_m2: float | None
    bsa_formula: str | None
    source: str
    status: Status
    cap_source: str | None
    cap_status: Status | None
    note: str | None
    choice: str | None = None
    choice_reason: str | None = None


@dataclass(frozen=True)
class _Raw:
    value: float
    capped: bool


def _apply(amount: float, size: float, rule: DoseRule) -> _Raw:
    raw = amount * size
    capped = rule.cap is not None and raw > rule.cap
    limited = min(raw, rule.cap) if rule.cap is not None else raw
    return _Raw(round_down(limited, rule.rounding_increment), capped)


def compute(rule: DoseRule, weight_kg: float, height_cm: float | None = None) -> ComputedDose:
    """Compute ``rule`` for a child of ``weight_kg`` (and ``height_cm`` for per-m² doses)."""
    bsa: float | None = None
    if rule.basis == "per_m2":
        if height_cm is None:
            raise DosingError(f"height: needed for {rule.drug.value} ({rule.id}), which is dosed "
                              "per m² of body surface area")
        bsa = bsa_mosteller(weight_kg, height_cm)
        size, size_text = bsa, f"{bsa:.2f} m²"
    elif rule.basis == "per_kg":
        if not 0 < weight_kg <= MAX_WEIGHT_KG:
            raise DosingError(f"weight: got {weight_kg:g} kg; expected above 0 and at most "
                              f"{MAX_WEIGHT_KG:g} kg")
        size, size_text = weight_kg, f"{weight_kg:g} kg"
    else:
        size, size_text = 1.0, "fixed"
    low, high = _apply(rule.amount_min, size, rule), _apply(rule.amount_max, size, rule)
    if low.value <= 0 or not math.isfinite(low.value) or not math.isfinite(high.value):
        # Never print a dose of zero: it would read as "give nothing".
        raise DosingError(
            f"{rule.drug.value} ({rule.id}): {rule.amount_min:g} {rule.amount_unit} × "
            f"{size_text} rounds down to 0 {rule.amount_unit} at the "
            f"{rule.rounding_increment:g} {rule.amount_unit} increment; too small to compute "
            "safely here: dose by hand with the pharmacist")
    per_unit = {"per_kg": "/kg", "per_m2": "/m²", "fixed": ""}[rule.basis]
    amount = (f"{rule.amount_min:g}" if rule.amount_min == rule.amount_max
              else f"{rule.amount_min:g}-{rule.amount_max:g}")
    calculation = f"{amount} {rule.amount_unit}{per_unit} × {size_text}"
    if rule.cap is not None:
        calculation += f", capped at {rule.cap:g} {rule.amount_unit}"
    cap_note = (f"maximum {rule.cap:g} {rule.amount_unit} per {rule.per}" if rule.cap is not None
                else "the sources give no absolute maximum")
    return ComputedDose(
        dose_id=rule.id, drug=rule.drug.value, says=rule.says, low=low.value, high=high.value,
        unit=rule.amount_unit, per=rule.per, route=rule.route, frequency=rule.frequency,
        duration=rule.duration, basis=rule.basis, calculation=calculation,
        capped=low.capped or high.capped, cap=rule.cap, cap_note=cap_note,
        rounding=f"{ROUNDING_RULE} ({rule.rounding_increment:g} {rule.amount_unit})",
        bsa_m2=None if bsa is None else round(bsa, 3),
        bsa_formula=BSA_FORMULA if bsa is not None else None,
        source=rule.source, status=rule.status, cap_source=rule.cap_source or (
            rule.source if rule.cap is not None else None),
        cap_status=rule.cap_status or (rule.status if rule.cap is not None else None),
        note=rule.note, choice=rule.choice, choice_reason=rule.choice_reason,
    )


def doses_for_drug(knowledge: Knowledge, drug: str) -> list[DoseRule]:
    """Every dose rule of ``drug`` (a Drug value or alias)."""
    from imnm.patient import parse_drug

    try:
        wanted = parse_drug(drug)
    except ValueError as exc:
        raise DosingError(f"drug: got {drug!r}; expected {exc}") from None
    rules = [d for d in knowledge.doses.values() if d.drug is wanted]
    if not rules:
        known = sorted({d.drug.value for d in knowledge.doses.values()})
        raise DosingError(f"drug: the sources give no pediatric dose for {wanted.value!r}; "
                          f"imnm computes doses for {', '.join(known)}")
    return rules


@dataclass(frozen=True)
class CumulativeDose:
    """The cumulative dose of a drug per m², against its limit where one applies."""

    drug: str
    total_g_per_m2: float
    limit_g_per_m2: float | None
    over_limit: bool
    doses_counted: int
    doses_without_amount: int
    says: str
    source: str
    status: Status
