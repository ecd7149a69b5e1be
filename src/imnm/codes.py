"""What a well-formed code looks like in each terminology imnm uses.

Patterns and check digits are properties of the code systems, not clinical facts:
ICD-10-CM (letter, two characters, optional dot and up to four more), SNOMED CT (6-18 digits,
the last a Verhoeff check digit over the rest), LOINC (digits, hyphen, mod-10 check digit) and
RxNorm (a positive integer RXCUI).
"""

from __future__ import annotations

import re
from enum import StrEnum


class CodeSystem(StrEnum):
    """Terminologies known to imnm, with their canonical FHIR system URIs in :data:`URIS`."""

    icd10cm = "icd10cm"
    snomedct = "snomedct"
    loinc = "loinc"
    rxnorm = "rxnorm"


URIS: dict[CodeSystem, str] = {
    CodeSystem.icd10cm: "http://hl7.org/fhir/sid/icd-10-cm",
    CodeSystem.snomedct: "http://snomed.info/sct",
    CodeSystem.loinc: "http://loinc.org",
    CodeSystem.rxnorm: "http://www.nlm.nih.gov/research/umls/rxnorm",
}

_PATTERNS: dict[CodeSystem, re.Pattern[str]] = {
    CodeSystem.icd10cm: re.compile(r"^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$"),
    CodeSystem.snomedct: re.compile(r"^[1-9][0-9]{5,17}$"),
    CodeSystem.loinc: re.compile(r"^[1-9][0-9]{0,7}-[0-9]$"),
    CodeSystem.rxnorm: re.compile(r"^[1-9][0-9]{0,8}$"),
}

EXPECTED: dict[CodeSystem, str] = {
    CodeSystem.icd10cm: "an ICD-10-CM code such as G71.039",
    CodeSystem.snomedct: "a SNOMED CT identifier (6-18 digits with a valid Verhoeff check digit)",
    CodeSystem.loinc: "a LOINC code such as 2157-6 (with a valid check digit)",
    CodeSystem.rxnorm: "an RxNorm RXCUI (a positive integer)",
}

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(digits: str) -> bool:
    """True when the last digit of ``digits`` is the Verhoeff check digit of the rest."""
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


def loinc_check_digit(body: str) -> int:
    """The LOINC mod-10 check digit of the part before the hyphen."""
    reversed_digits = body[::-1]
    odd = reversed_digits[0::2]  # positions 1, 3, 5... from the right, read right to left
    even = reversed_digits[1::2]
    doubled = str(int(odd) * 2)
    total = sum(int(c) for c in even + doubled)
    return (10 - total % 10) % 10


def is_valid(system: CodeSystem, code: str) -> bool:
    """True when ``code`` is well formed in ``system`` (pattern and any check digit)."""
    if not _PATTERNS[system].match(code):
        return False
    if system is CodeSystem.snomedct:
        return verhoeff_valid(code)
    if system is CodeSystem.loinc:
        body, check = code.split("-")
        return loinc_check_digit(body) == int(check)
    return True
