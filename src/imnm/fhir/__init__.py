"""FHIR R4 in and out: a Bundle to a :class:`~imnm.patient.Patient` and back.

``common`` holds what both directions share, ``write`` the Patient as a Bundle, ``read`` the
Bundle as a Patient (one function per resource type). Resources are checked with
fhir.resources' R4B models (R4B is R4 for these resources).

The names below are imported on first use, so that reading a patient file does not import
the writer, nor the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imnm._lazy import exports

if TYPE_CHECKING:
    from imnm.fhir.common import ImportReport, answer_coding, is_bundle, resources_of
    from imnm.fhir.read import from_bundle, load_any
    from imnm.fhir.write import to_bundle

_PUBLIC = {
    "ImportReport": "imnm.fhir.common",
    "answer_coding": "imnm.fhir.common",
    "is_bundle": "imnm.fhir.common",
    "resources_of": "imnm.fhir.common",
    "from_bundle": "imnm.fhir.read",
    "load_any": "imnm.fhir.read",
    "to_bundle": "imnm.fhir.write",
}


__getattr__, __dir__ = exports("imnm.fhir", _PUBLIC)

__all__ = ["ImportReport", "answer_coding", "from_bundle", "is_bundle", "load_any",
           "resources_of", "to_bundle"]
