"""Shared test set-up: golden-file updating, a clean environment, paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the current code (review the diff!)")
    parser.addoption("--update-snapshots", action="store_true",
                     help="rewrite tests/snapshots/ (generated screen SQL; review the diff!)")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No IMNM_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("IMNM_"):
            monkeypatch.delenv(name)
    yield
