import imnm


def test_public_api_is_small_and_stable() -> None:
    assert sorted(imnm.__all__) == [
        "Assessment", "ImnmError", "InputError", "KnowledgeError", "Patient", "Problem",
        "__version__", "assess", "load_knowledge", "load_patient",
    ]


def test_errors_inherit_builtins() -> None:
    assert issubclass(imnm.InputError, ValueError)
    assert issubclass(imnm.KnowledgeError, ValueError)
    assert issubclass(imnm.InputError, imnm.ImnmError)


def test_assess_accepts_a_mapping_or_json_text() -> None:
    data = {"id": "api-1", "age_years": 9, "as_of": "2025-01-01"}
    import json

    assert imnm.assess(data).to_dict() == imnm.assess(json.dumps(data)).to_dict()
