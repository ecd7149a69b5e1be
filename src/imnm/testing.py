"""Small builders for tests, shipped for users who test code built on imnm.

Fill only what a test needs::

    from imnm.testing import a_child
    patient = (a_child(age_years=9).with_ck(12000, "U/L", upper_limit=391)
               .with_antibody("HMGCR", "positive").with_proximal_weakness(3).build())
"""

from __future__ import annotations

import copy
from typing import Any

from imnm.patient import Patient, load_patient


class ChildBuilder:
    """Builds a patient file step by step; :meth:`build` validates it."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _with(self, **changes: Any) -> ChildBuilder:
        data = copy.deepcopy(self.data)
        data.update(changes)
        return ChildBuilder(data)

    def _merge(self, key: str, **values: Any) -> ChildBuilder:
        data = copy.deepcopy(self.data)
        data.setdefault(key, {}).update(values)
        return ChildBuilder(data)

    def with_ck(self, value: float | None = None, unit: str = "U/L", *,
                upper_limit: float | None = None, date: str | None = None,
                interpretation: str | None = None) -> ChildBuilder:
        """Add one CK result."""
        entry: dict[str, Any] = {"unit": unit}
        for key, item in (("value", value), ("upper_limit", upper_limit), ("date", date),
                          ("interpretation", interpretation)):
            if item is not None:
                entry[key] = item
        return self._with(ck=[*self.data.get("ck", []), entry])

    def with_antibody(self, name: str, status: str, **details: Any) -> ChildBuilder:
        """Add an antibody result (status: positive, negative or not_tested)."""
        antibodies = dict(self.data.get("antibodies", {}))
        antibodies[name] = {"status": status, **details} if details else status
        return self._with(antibodies=antibodies)

    def with_proximal_weakness(self, grade: float = 3, *, symmetric: bool | None = True
                               ) -> ChildBuilder:
        """Proximal upper and lower MRC grade (5 = normal)."""
        builder = self._merge("weakness", proximal_upper=grade, proximal_lower=grade)
        return builder._merge("weakness", symmetric=symmetric) if symmetric is not None \
            else builder

    def with_weakness(self, **grades: Any) -> ChildBuilder:
        """Any Weakness fields."""
        return self._merge("weakness", **grades)

    def with_label(self, label: str, system: str | None = None, code: str | None = None,
                   status: str = "active") -> ChildBuilder:
        """Add a diagnosis label."""
        entry: dict[str, Any] = {"label": label, "status": status}
        if system and code:
            entry |= {"system": system, "code": code}
        return self._with(diagnoses=[*self.data.get("diagnoses", []), entry])

    def with_genetics(self, result: str, genes: list[str] | None = None,
                      diagnosis: str | None = None) -> ChildBuilder:
        """Genetic testing done, with a result."""
        return self._with(genetic_testing={"done": True, "result": result,
                                           "genes": genes or [], "diagnosis": diagnosis})

    def with_biopsy(self, **features: Any) -> ChildBuilder:
        """Biopsy features (Biopsy fields)."""
        return self._merge("biopsy", **features)

    def with_(self, **fields: Any) -> ChildBuilder:
        """Any top-level fields, replacing what is there."""
        return self._with(**fields)

    def as_dict(self) -> dict[str, Any]:
        """The patient file as a dictionary."""
        return copy.deepcopy(self.data)

    def build(self) -> Patient:
        """Validate and return the :class:`Patient`."""
        return load_patient(self.data)


def a_child(*, id: str = "test-child", age_years: float | None = 10, sex: str = "female",
            as_of: str = "2025-01-01") -> ChildBuilder:
    """Start a child with only an id, an age, a sex and a reference date."""
    data: dict[str, Any] = {"id": id, "sex": sex, "as_of": as_of}
    if age_years is not None:
        data["age_years"] = age_years
    return ChildBuilder(data)
