"""FHIR R4 in and out: a Bundle to a :class:`~imnm.patient.Patient` and back.

``common`` holds what both directions share, ``write`` the Patient as a Bundle, ``read`` the
Bundle as a Patient (one function per resource type). Resources are checked with
fhir.resources' R4B models (R4B is R4 for these resources).
"""

from imnm.fhir.common import ImportReport, answer_coding, is_bundle, resources_of
from imnm.fhir.read import from_bundle, load_any
from imnm.fhir.write import to_bundle

__all__ = ["ImportReport", "answer_coding", "from_bundle", "is_bundle", "load_any",
           "resources_of", "to_bundle"]
