"""Units through pint: creatine kinase activity, body weight and height.

imnm stores CK in U/L, weight in kg and height in cm. Inputs may use U/L, IU/L, µkat/L
(1 µkat/L = 60 U/L), kg, g or lb, cm, m or in. A unit pint cannot parse, or one of the wrong
dimension, raises ``ValueError`` with the accepted units named.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pint

# pint is imported, and its registry built (about 0.35 s together), only when a value is not
# already in imnm's canonical unit: most files give CK in U/L, weight in kg, height in cm.

# Accepted spellings shown to users when a unit is refused.
CK_UNITS = ("U/L", "IU/L", "µkat/L", "ukat/L")
MASS_UNITS = ("kg", "g", "lb")
LENGTH_UNITS = ("cm", "m", "in")
DOSE_UNITS = ("mg", "g", "mg/kg", "g/kg", "mg/m2", "g/m2", "mg/kg/day", "mg/m2/week")

CANONICAL = {"activity": "U/L", "mass": "kg", "length": "cm"}
# Units of enzyme activity as laboratories, FHIR servers and Athena's UCUM concepts spell them
# (lower case, trimmed), each to the spelling convert() takes. UCUM writes arbitrary units in
# brackets: Athena concept 8645 is '[U]/L', 8923 '[iU]/L'.
ACTIVITY_SPELLINGS = {"u/l": "U/L", "[u]/l": "U/L", "iu/l": "IU/L", "[iu]/l": "IU/L",
                      "µkat/l": "µkat/L", "μkat/l": "µkat/L", "ukat/l": "µkat/L",
                      "units/l": "U/L", "unit/l": "U/L"}


def read_activity_unit(text: object) -> str | None:
    """The unit of activity a laboratory's unit text or UCUM code stands for, or None."""
    return ACTIVITY_SPELLINGS.get(str(text or "").strip().lower())


@cache
def registry() -> pint.UnitRegistry[Any]:
    """The one pint registry imnm uses, built on first use. pint's own definitions cache (in
    the user's cache folder) makes that 0.02 s instead of 0.3 s after the first time; where
    no cache can be written the registry is built without one."""
    import pint

    try:
        ureg: pint.UnitRegistry[Any] = pint.UnitRegistry(cache_folder=":auto:")
    except (OSError, ValueError, TypeError):  # a read-only home, an unusable cache file
        ureg = pint.UnitRegistry()
    # The international unit of enzyme activity is the enzyme unit (1 µmol/min).
    ureg.define("IU = enzyme_unit")
    return ureg


def _normalise_spelling(unit: str) -> str:
    text = unit.strip().replace("μ", "µ").replace("µ", "u")
    text = text.replace("m²", "m**2").replace("m2", "m**2")
    return text


@lru_cache(maxsize=512)
def convert(value: float, unit: str, kind: str) -> float:
    """Convert ``value`` in ``unit`` to imnm's canonical unit for ``kind``.

    ``kind`` is ``"activity"`` (catalytic concentration, to U/L), ``"mass"`` (to kg) or
    ``"length"`` (to cm).
    """
    accepted = {"activity": CK_UNITS, "mass": MASS_UNITS, "length": LENGTH_UNITS}[kind]
    if _normalise_spelling(unit) not in {_normalise_spelling(a) for a in accepted}:
        # pint would convert mg or mm too; a weight in mg is a unit slip, never a child.
        raise ValueError(f"a unit of {kind}: one of {', '.join(accepted)}")
    if isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"a finite number with a unit of {kind}")
    if _normalise_spelling(unit) == _normalise_spelling(CANONICAL[kind]):
        return float(value)  # already canonical: no conversion, no pint
    import pint

    ureg = registry()
    try:
        quantity = ureg.Quantity(value, _normalise_spelling(unit))
        return float(quantity.to(CANONICAL[kind]).magnitude)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"a unit of {kind}: one of {', '.join(accepted)}") from exc


@lru_cache(maxsize=256)
def parse_dose_unit(unit: str) -> str:
    """Check that ``unit`` is a dose unit (a mass, optionally per kg or m², per time)."""
    import pint

    ureg = registry()
    try:
        parsed = ureg.parse_units(_normalise_spelling(unit).replace("/day", "/day"))
    except (pint.errors.PintError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"a dose unit such as {', '.join(DOSE_UNITS)}") from exc
    dims = ureg.get_dimensionality(parsed)
    mass_exponent = dims.get("[mass]", 0)
    if mass_exponent not in (0, 1) or dims.get("[length]", 0) not in (0, -2):
        raise ValueError(f"a dose unit such as {', '.join(DOSE_UNITS)}")
    if mass_exponent == 0 and dims.get("[length]", 0) != 0:
        raise ValueError(f"a dose unit such as {', '.join(DOSE_UNITS)}")
    return unit
