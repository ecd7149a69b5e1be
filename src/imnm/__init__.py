"""imnm: find children with immune-mediated necrotizing myopathy early, and explain why.

The public API is small::

    import imnm
    patient = imnm.load_patient(open("examples/case-series-2025-patient-1.json").read())
    result = imnm.assess(patient)
    result.classification.enmc_2017.cls        # 'anti_hmgcr_imnm'
    result.suspicion.test_for_imnm_antibodies  # True / False

The names below are imported on first use (PEP 562), so that ``import imnm.cli`` or
``import imnm.screen`` does not pay for the assessment models and the knowledge base
until a command needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imnm._lazy import exports

__version__ = "0.1.0"

_PUBLIC = {
    "Assessment": "imnm.assessment",
    "assess": "imnm.assessment",
    "ImnmError": "imnm.errors",
    "InputError": "imnm.errors",
    "KnowledgeError": "imnm.errors",
    "Problem": "imnm.errors",
    "load_knowledge": "imnm.knowledge",
    "Patient": "imnm.patient",
    "load_patient": "imnm.patient",
}

if TYPE_CHECKING:
    from imnm.assessment import Assessment, assess
    from imnm.errors import ImnmError, InputError, KnowledgeError, Problem
    from imnm.knowledge import load_knowledge
    from imnm.patient import Patient, load_patient


__getattr__, __dir__ = exports("imnm", _PUBLIC)

__all__ = [
    "Assessment",
    "ImnmError",
    "InputError",
    "KnowledgeError",
    "Patient",
    "Problem",
    "__version__",
    "assess",
    "load_knowledge",
    "load_patient",
]
