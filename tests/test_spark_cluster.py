"""The screen on a real Spark standalone cluster (a master and two workers on loopback,
tests/spark_cluster.py) over Parquet: the same worklist as DuckDB, row for row."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from imnm.screen import synth
from imnm.screen.run import run_screen, write_worklist
from tests.spark_cluster import cluster_environment, standalone_cluster

N, SEED = 600, 31


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as master:
        yield master


def test_the_screen_on_a_standalone_cluster_equals_duckdb_row_for_row(
        cluster: str, tmp_path: Path) -> None:
    parquet = tmp_path / "omop"
    synth.write_omop(synth.population(N, SEED), parquet)
    out = tmp_path / "cluster.csv"
    run = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--omop", str(parquet), "--engine",
         "spark", "--spark-master", cluster, "--as-of", synth.AS_OF.isoformat(),
         "--out", str(out), "--report", str(tmp_path / "report.json"), "--show", "0"],
        capture_output=True, text=True, check=False, env=cluster_environment())
    assert run.returncode == 0, run.stderr[-3000:]
    # Issue 13: the Spark screen printed Spark's log lines and no progress for 90 s. Now it
    # says its steps, and nothing of Spark's log but the JVM's own start-up lines.
    lines = run.stderr.splitlines()
    progress = [line for line in lines if line.startswith("imnm screen: ")]
    assert [p.split(" (")[0] for p in progress] == [
        "imnm screen: starting Spark", "imnm screen: reading the input", "imnm screen: staging",
        "imnm screen: screening", "imnm screen: counting what could not be read"]
    assert all(p.split(" (")[1].startswith("spark)") for p in progress)
    others = [line for line in lines if line not in progress]
    assert len(others) <= 4, others
    assert not any(" WARN " in line or " INFO " in line for line in others), others
    on_duckdb = run_screen("omop", str(parquet), as_of=synth.AS_OF)
    expected = write_worklist(on_duckdb, tmp_path / "duckdb.csv")
    assert out.read_text(encoding="utf-8") == expected.read_text(encoding="utf-8")
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["engine"] == "spark"
    assert report["population_in_scope"] == on_duckdb.population == N
    assert {(c["input"], c["item"]): c["count"] for c in report["coverage"]} == {
        (c.input, c.item): c.count for c in on_duckdb.coverage}
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["tier"] for r in rows} >= {"test_for_antibodies", "review_dystrophy_label",
                                         "review_treatment"}
    # it ran on the cluster's executors, not in the driver: the master saw the application
    web = cluster_web(cluster)
    with urllib.request.urlopen(f"{web}/json/", timeout=5) as response:  # noqa: S310
        state = json.load(response)
    apps = [a for a in state["completedapps"] + state["activeapps"] if a["name"] == "imnm-screen"]
    assert apps and all(a["cores"] >= 1 for a in apps)
    assert state["aliveworkers"] == 2


def cluster_web(master: str) -> str:
    """The master's web address, from the port file the fixture keeps beside the URL."""
    from tests.spark_cluster import WEB_UI

    return WEB_UI[master]
