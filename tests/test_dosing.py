"""Doses checked by hand for children of 10, 25, 45 and 70 kg, and caps for every size."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imnm.dosing import DosingError, bsa_mosteller, compute, doses_for_drug, round_down
from imnm.knowledge import load_knowledge
from imnm.patient import MAX_HEIGHT_CM, MAX_WEIGHT_KG, MIN_HEIGHT_CM

KB = load_knowledge()
CHILDREN = {10: 75, 25: 125, 45: 155, 70: 175}  # weight kg: height cm

# BSA by hand: sqrt(h x w / 3600)
BSA = {10: 0.45644, 25: 0.93169, 45: 1.39194, 70: 1.84466}

# Expected (low, high) by hand: amount x size, capped, rounded down to the increment.
EXPECTED = {
    "prednisolone_oral": {10: (10, 20), 25: (25, 50), 45: (45, 60), 70: (60, 60)},
    "methylprednisolone_iv": {10: (300, 300), 25: (750, 750), 45: (1000, 1000),
                              70: (1000, 1000)},
    "methotrexate_weekly": {10: (3, 3), 25: (7.5, 7.5), 45: (13.5, 13.5), 70: (15, 15)},
    "methotrexate_per_m2": {10: (6.5, 9), 25: (13.5, 18.5), 45: (20.5, 27.5), 70: (27.5, 36.5)},
    "ivig_monthly": {10: (20, 20), 25: (50, 50), 45: (90, 90), 70: (140, 140)},
    "rituximab_iv": {10: (340, 340), 25: (690, 690), 45: (1000, 1000), 70: (1000, 1000)},
    "cyclophosphamide_induction": {10: (220, 220), 25: (460, 460), 45: (690, 690),
                                   70: (920, 920)},
    "cyclophosphamide_maintenance": {10: (340, 340), 25: (690, 690), 45: (1040, 1040),
                                     70: (1380, 1380)},
}


@pytest.mark.parametrize("weight", sorted(CHILDREN))
def test_bsa_by_hand(weight: int) -> None:
    assert bsa_mosteller(weight, CHILDREN[weight]) == pytest.approx(BSA[weight], abs=1e-4)


@pytest.mark.parametrize("dose_id", sorted(EXPECTED))
@pytest.mark.parametrize("weight", sorted(CHILDREN))
def test_dose_by_hand(dose_id: str, weight: int) -> None:
    result = compute(KB.doses[dose_id], weight, CHILDREN[weight])
    assert (result.low, result.high) == pytest.approx(EXPECTED[dose_id][weight])


def test_every_shipped_dose_has_a_hand_checked_case() -> None:
    assert set(KB.doses) == set(EXPECTED)


def test_capped_flag_and_explanation() -> None:
    result = compute(KB.doses["rituximab_iv"], 45, 155)
    assert result.capped and "capped at 1000 mg" in result.calculation
    assert result.bsa_formula is not None and "Mosteller" in result.bsa_formula
    assert result.cap_source == "wang_liang_2023"
    pred = compute(KB.doses["prednisolone_oral"], 45)
    assert pred.cap_source == "bsr_2022" and pred.cap_status is not None
    assert pred.cap_status.value == "secondary"
    assert not compute(KB.doses["prednisolone_oral"], 10).capped


def test_uncapped_doses_say_so() -> None:
    result = compute(KB.doses["cyclophosphamide_maintenance"], 70, 175)
    assert result.cap is None and result.cap_note == "the sources give no absolute maximum"


def test_per_m2_needs_height_and_bad_sizes_are_refused() -> None:
    with pytest.raises(DosingError, match="height: needed"):
        compute(KB.doses["rituximab_iv"], 30)
    with pytest.raises(DosingError, match="weight: got 0 kg"):
        compute(KB.doses["prednisolone_oral"], 0)
    with pytest.raises(DosingError, match="height: got 20 cm"):
        compute(KB.doses["rituximab_iv"], 30, 20)
    with pytest.raises(DosingError, match="no pediatric dose for 'tacrolimus'"):
        doses_for_drug(KB, "tacrolimus")
    assert [r.id for r in doses_for_drug(KB, "MTX")] == ["methotrexate_weekly",
                                                         "methotrexate_per_m2"]


def test_a_dose_that_rounds_to_zero_is_not_printed() -> None:
    # 0.3 kg: methotrexate 0.3 mg/kg/week is 0.09 mg, below the rounding increment.
    rule = next(r for r in KB.doses.values() if r.basis == "per_kg"
                and r.amount_min * 0.3 < r.rounding_increment)
    with pytest.raises(DosingError, match="rounds down to 0"):
        compute(rule, 0.3, 50)


def test_round_down_never_rounds_up() -> None:
    assert round_down(13.5, 0.5) == 13.5
    assert round_down(13.49999, 0.5) == 13.0
    assert round_down(1043.9, 10) == 1040
    assert round_down(0.3 * 3, 0.1) == pytest.approx(0.9)  # float 0.8999999 is 0.9


@settings(max_examples=400, deadline=None)
@given(weight=st.floats(min_value=0.01, max_value=MAX_WEIGHT_KG),
       height=st.floats(min_value=MIN_HEIGHT_CM, max_value=MAX_HEIGHT_CM),
       dose_id=st.sampled_from(sorted(KB.doses)))
def test_no_dose_is_ever_zero_nan_or_above_its_cap(weight: float, height: float,
                                                   dose_id: str) -> None:
    rule = KB.doses[dose_id]
    try:
        result = compute(rule, weight, height)
    except DosingError as exc:
        # Only a dose too small to round to a non-zero amount is refused, and it says so.
        assert "rounds down to 0" in str(exc)
        return
    size = weight if rule.basis == "per_kg" else bsa_mosteller(weight, height)
    assert math.isfinite(result.low) and math.isfinite(result.high)
    assert 0 < result.low <= result.high
    assert result.high <= rule.amount_max * size + 1e-9  # rounding never raises a dose
    if rule.cap is not None:
        assert result.high <= rule.cap
    steps = result.high / rule.rounding_increment
    assert math.isclose(steps, round(steps), abs_tol=1e-6)
