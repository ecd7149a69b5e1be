"""Shared test set-up: golden-file updating, a clean environment, paths."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def _spark_session() -> Iterator[Any]:
    from imnm.screen.engines import SparkEngine

    engine = SparkEngine(master="local[2]")
    yield engine
    engine.spark.stop()


@pytest.fixture
def spark(_spark_session: Any) -> Iterator[Any]:
    """One Spark local[2] session for every test that needs Spark (starting one is the
    slowest part of a Spark test); each test starts with no temporary view left by another."""
    catalog = _spark_session.spark.catalog
    for table in catalog.listTables():
        if table.isTemporary:
            catalog.dropTempView(table.name)
    yield _spark_session


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


# Spark's settings for the tests (C1-only JIT for short runs; see the file), before any
# Spark JVM starts, including the CLI's in subprocesses and the test cluster's.
os.environ["SPARK_CONF_DIR"] = str(Path(__file__).resolve().parent / "spark-conf")

_CACHE = tempfile.mkdtemp(prefix="imnm-test-cache-")
os.environ["IMNM_CACHE_DIR"] = _CACHE  # before any test module loads the knowledge


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No IMNM_* variable from the developer's shell leaks into a test, and the knowledge
    cache is the session's own folder, not the developer's."""
    for name in list(os.environ):
        if name.startswith("IMNM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IMNM_CACHE_DIR", _CACHE)
    yield


@contextmanager
def live_uvicorn(app: Any) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on a free loopback port; yields the base URL. ``app``
    may be a function of the base URL that makes the app (the service's audience is its own
    configured URL)."""
    import uvicorn

    from imnm.cli.service import EVENT_LOOP, HTTP_PARSER

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if callable(app) and not hasattr(app, "router"):
        app = app(f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", loop=EVENT_LOOP,
                                           http=HTTP_PARSER))  # as `imnm serve` runs
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
