"""Input plausibility limits, read from the knowledge base (``parameters.toml``, entries
``input_*``, status heuristic and explained there). They are not clinical thresholds: they
refuse values that cannot belong to a child or young adult, so that a typing or unit slip is
caught at the edge with the field and the range named.
"""

from __future__ import annotations

from imnm.knowledge import load_knowledge

_PARAMETERS = load_knowledge().parameters


def _limit(name: str) -> float:
    return float(_PARAMETERS[name].value)


MAX_AGE_YEARS = _limit("input_max_age_years")
MIN_WEIGHT_KG = _limit("input_min_weight_kg")
MAX_WEIGHT_KG = _limit("input_max_weight_kg")
MIN_HEIGHT_CM = _limit("input_min_height_cm")
MAX_HEIGHT_CM = _limit("input_max_height_cm")
MIN_BMI = _limit("input_min_bmi")
MAX_BMI = _limit("input_max_bmi")
MAX_CK_U_PER_L = _limit("input_max_ck_u_per_l")
MAX_TEXT_CHARS = 10_000
"""Longest text accepted in any text field (operational, not clinical): a clinical note fits;
a pasted document or a hostile 10 MB label is refused at once instead of being searched."""
DAYS_PER_MONTH = 365.25 / 12  # calendar arithmetic, not a clinical number
DAYS_PER_YEAR = 365.25
