"""The patient: the model (``model``), how patient files may spell things (``spellings``),
the plausibility limits read from the knowledge base (``limits``), and reading a file
(``reading``). The words (sexes, antibodies, drugs, results) live in :mod:`imnm.vocabulary`.

Load a patient file with :func:`load_patient` (JSON text or a mapping); it raises
:class:`imnm.errors.InputError` with one :class:`~imnm.errors.Problem` per problem.
``imnm schema`` prints the JSON Schema of the file, field descriptions included.
"""

from imnm.patient.limits import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    MAX_AGE_YEARS,
    MAX_BMI,
    MAX_CK_U_PER_L,
    MAX_HEIGHT_CM,
    MAX_WEIGHT_KG,
    MIN_BMI,
    MIN_HEIGHT_CM,
    MIN_WEIGHT_KG,
)
from imnm.patient.model import (
    AntibodyResult,
    Biopsy,
    Diagnosis,
    Dose,
    EnzymeResult,
    Exposures,
    Extramuscular,
    FamilyHistory,
    GeneticTesting,
    Height,
    Model,
    MuscleMRI,
    Onset,
    OtherEnzyme,
    Patient,
    PrecedingInfection,
    Quantity,
    Skin,
    Treatment,
    Visit,
    Weakness,
    Weight,
)
from imnm.patient.reading import load_patient
from imnm.vocabulary import (
    Antibody,
    AntibodyStatus,
    AssayMethod,
    BiopsyConclusion,
    DiagnosisStatus,
    Drug,
    GeneticResult,
    Interpretation,
    OnsetPattern,
    Sex,
    parse_antibody,
    parse_drug,
)

__all__ = [
    "DAYS_PER_MONTH", "DAYS_PER_YEAR", "MAX_AGE_YEARS", "MAX_BMI", "MAX_CK_U_PER_L",
    "MAX_HEIGHT_CM", "MAX_WEIGHT_KG", "MIN_BMI", "MIN_HEIGHT_CM", "MIN_WEIGHT_KG", "Antibody",
    "AntibodyResult", "AntibodyStatus", "AssayMethod", "Biopsy", "BiopsyConclusion",
    "Diagnosis", "DiagnosisStatus", "Dose", "Drug", "EnzymeResult", "Exposures",
    "Extramuscular", "FamilyHistory", "GeneticResult", "GeneticTesting", "Height",
    "Interpretation", "Model", "MuscleMRI", "Onset", "OnsetPattern", "OtherEnzyme", "Patient",
    "PrecedingInfection", "Quantity", "Sex", "Skin", "Treatment", "Visit", "Weakness",
    "Weight", "load_patient", "parse_antibody", "parse_drug",
]
