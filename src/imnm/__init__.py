"""imnm: find children with immune-mediated necrotizing myopathy early, and explain why.

The public API is small::

    import imnm
    patient = imnm.load_patient(open("examples/case-series-2025-patient-1.json").read())
    result = imnm.assess(patient)
    result.classification.enmc_2017.cls        # 'anti_hmgcr_imnm'
    result.suspicion.test_for_imnm_antibodies  # True / False
"""

__version__ = "0.1.0"

from imnm.assessment import Assessment, assess
from imnm.errors import ImnmError, InputError, KnowledgeError, Problem
from imnm.knowledge import load_knowledge
from imnm.patient import Patient, load_patient

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
