"""A network of sites: each site's aggregate file, and the merge that adds them without
undoing suppression and refuses files of different versions."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from imnm.screen import synth
from imnm.screen.network import (
    NETWORK_COLUMNS,
    SITE_COLUMNS,
    NetworkError,
    age_band,
    merge,
    write_rows,
)

N, SEED = 3000, 77


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three sites holding a third of one population each, and the pooled population, each
    screened with --aggregate by the command."""
    root = tmp_path_factory.mktemp("network")
    children = list(synth.population(N, SEED))
    parts = {"a": children[0::3], "b": children[1::3], "c": children[2::3],
             "pooled": children}
    files = {}
    for name, part in parts.items():
        database = root / f"{name}.duckdb"
        synth.write_omop(iter(part), database)
        files[name] = root / f"{name}.csv"
        run = subprocess.run(
            [sys.executable, "-m", "imnm.cli", "screen", "--omop", str(database), "--as-of",
             synth.AS_OF.isoformat(), "--aggregate", str(files[name]), "--show", "0"],
            capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
    return files


def test_age_bands() -> None:
    assert [age_band(a) for a in (0, 4, 5, 14, 15, 19, 20, 25, None)] == [
        "0-4", "0-4", "5-9", "10-14", "15-19", "15-19", "20+", "20+", "unknown"]


def test_a_site_file_says_its_versions_and_hides_small_counts(sites: dict[str, Path]) -> None:
    rows = read(sites["a"])
    assert tuple(rows[0]) == SITE_COLUMNS
    assert {r["imnm_version"] for r in rows} == {__import__("imnm").__version__}
    assert {r["knowledge_version"] for r in rows} == {
        __import__("imnm.knowledge").knowledge.load_knowledge().digest}
    people = [r for r in rows if r["section"] in ("population", "worklist")]
    assert all(r["count"] == "<10" or r["count"] == "0" or int(r["count"]) >= 10
               for r in people)
    assert any(r["count"] == "<10" for r in people)
    in_scope = sum(int(r["count"]) for r in rows if r["section"] == "population"
                   and r["count"] != "<10")
    assert 0 < in_scope <= N // 3 + 1


def test_three_sites_merge_to_the_pooled_aggregate_wherever_nothing_was_suppressed(
        sites: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "network.csv"
    run = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "network", "merge", str(sites["a"]),
         str(sites["b"]), str(sites["c"]), "--out", str(out)],
        capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    merged = read(out)
    assert tuple(merged[0]) == NETWORK_COLUMNS and {r["sites"] for r in merged} == {"3"}
    pooled = {(r["section"], r["tier"], r["sex"], r["age_band"], r["item"]): r["count"]
              for r in read(sites["pooled"])}
    site_cells = [{(r["section"], r["tier"], r["sex"], r["age_band"], r["item"]): r["count"]
                   for r in read(sites[s])} for s in "abc"]
    compared = 0
    for row in merged:
        key = (row["section"], row["tier"], row["sex"], row["age_band"], row["item"])
        if row["section"] == "coverage_per_site":  # each site's vocabulary: not added
            per_site = [int(cells[("coverage", *key[1:])]) for cells in site_cells]
            assert (row["count"], row["count_low"], row["count_high"]) == (
                "", str(min(per_site)), str(max(per_site)))
            continue
        values = [cells.get(key, "0") for cells in site_cells]
        if "<10" in values:
            # never undone: no exact count, only bounds that hold the pooled count
            assert row["count"] == "" and int(row["sites_suppressed"]) == values.count("<10")
            if pooled[key] != "<10":
                assert int(row["count_low"]) <= int(pooled[key]) <= int(row["count_high"])
            continue
        assert row["count"] == pooled[key], key
        compared += 1
    nonzero = [r for r in merged if r["count"] not in ("", "0")
               and r["section"] == "population"]
    assert compared > 50 and len(nonzero) >= 8  # real cells, not only zeros


def test_files_of_different_versions_are_refused(sites: dict[str, Path],
                                                 tmp_path: Path) -> None:
    rows = read(sites["b"])
    for row in rows:
        row["knowledge_version"] = "sha256:0000000000000000"
    other = tmp_path / "b-other-knowledge.csv"
    write_rows(other, rows, SITE_COLUMNS)
    with pytest.raises(NetworkError, match="different knowledge versions"):
        merge([sites["a"], other])
    rows = read(sites["c"])
    for row in rows:
        row["imnm_version"] = "0.0.1"
    older = tmp_path / "c-older.csv"
    write_rows(older, rows, SITE_COLUMNS)
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "network", "merge",
                          str(sites["a"]), str(older)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "different imnm versions" in run.stderr
    assert "0.0.1" in run.stderr


def test_an_edited_or_foreign_file_is_refused(sites: dict[str, Path], tmp_path: Path) -> None:
    rows = read(sites["a"])
    small = next(r for r in rows if r["count"] == "<10")
    small["count"] = "3"  # someone undid the suppression by hand
    edited = tmp_path / "edited.csv"
    write_rows(edited, rows, SITE_COLUMNS)
    with pytest.raises(NetworkError, match=r"line \d+: count: got a count from 1 to 9"):
        merge([sites["b"], edited])
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("tier,sex,count\nx,female,12\n", encoding="utf-8")
    with pytest.raises(NetworkError, match="got columns tier, sex, count; expected"):
        merge([sites["a"], foreign])
    with pytest.raises(NetworkError, match="two or more"):
        merge([sites["a"]])
