from imnm.codes import CodeSystem, is_valid, loinc_check_digit, verhoeff_valid


def test_loinc_check_digit_worked_example_from_loinc_manual() -> None:
    # LOINC's own illustration: 12345 -> check digit 5.
    assert loinc_check_digit("12345") == 5


def test_loinc_codes() -> None:
    assert is_valid(CodeSystem.loinc, "2157-6")
    assert not is_valid(CodeSystem.loinc, "2157-5")
    assert not is_valid(CodeSystem.loinc, "2157")


def test_snomed_verhoeff() -> None:
    assert verhoeff_valid("73297009")
    assert not verhoeff_valid("73297008")
    assert not is_valid(CodeSystem.snomedct, "12345")  # too short


def test_icd10cm_pattern() -> None:
    for code in ("G71.039", "G71.0341", "M33.02", "G72.49", "R74.8", "G71.0"):
        assert is_valid(CodeSystem.icd10cm, code), code
    for code in ("G7I.039", "g71.039", "G71.03999", "U07", "71.0"):
        assert not is_valid(CodeSystem.icd10cm, code), code


def test_rxnorm_pattern() -> None:
    assert is_valid(CodeSystem.rxnorm, "121191")
    assert not is_valid(CodeSystem.rxnorm, "0121191")
    assert not is_valid(CodeSystem.rxnorm, "abc")
