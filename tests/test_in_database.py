"""The screen where the data lives: inside PostgreSQL (the Synthea27Nj export with planted
children loaded as a site loads its CDM), and as SQL for sites that run it themselves, parsed
in every dialect imnm writes and executed on DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import psycopg
import pytest
import sqlglot
from sqlglot import exp

from imnm.knowledge import load_knowledge
from imnm.screen.definition import EMIT_DIALECTS, Parameters, emit, split
from imnm.screen.engines import InputUnusable, PostgresEngine
from imnm.screen.run import ScreenResult, run_screen
from imnm.screen.sources import OMOP_TABLES, VOCABULARY_TABLE_NAMES
from tests.realworld import (
    AS_OF,
    DIALECTS,
    SYNTHEA27NJ,
    planted_omop,
    write_omop_copies,
    write_omop_copy,
)

KB = load_knowledge()
PLANTED, EXPECTED = planted_omop()
POSTGRES = os.environ.get("TEST_POSTGRES_URL")
VOCABULARY = VOCABULARY_TABLE_NAMES
DUCK_TO_PG = {"BIGINT": "BIGINT", "INTEGER": "INTEGER", "DOUBLE": "DOUBLE PRECISION",
              "DATE": "DATE", "VARCHAR": "TEXT", "TIMESTAMP": "TIMESTAMP",
              "BOOLEAN": "BOOLEAN", "SMALLINT": "SMALLINT"}


def found(result: ScreenResult) -> set[tuple[str, str]]:
    return {(r.person_id, r.tier) for r in result.rows}


def expected() -> set[tuple[str, str]]:
    return {(p, t) for p, tiers in EXPECTED.items() for t in tiers}


def load(folder: Path, url: str, cdm: str, vocab: str, *, typed: bool) -> None:
    """Load an OMOP CSV export into PostgreSQL the way a site does: the CDM tables in one
    schema, the vocabulary in another; ``typed`` as the OHDSI DDL types them (the columns the
    screen reads with their CDM types, the others as DuckDB's sniffer reads them), else every
    column as text, as a raw load of the CSV files leaves them."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as con:
        for schema in (cdm, vocab):
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'.encode())
        for file in sorted(folder.iterdir()):
            table = file.name.split(".")[0].lower()
            schema = vocab if table in VOCABULARY else cdm
            duck = duckdb.connect()
            relation = duck.read_csv(str(file), header=True, all_varchar=not typed,
                                     na_values=["", "NA"])
            names, types = relation.columns, [str(t).upper() for t in relation.types]
            ddl = {c: t for need in OMOP_TABLES if need.name == table for c, t in need.columns}
            columns = ", ".join(
                f'"{n.lower()}" ' + (DUCK_TO_PG.get(ddl.get(n.lower(), t), "TEXT") if typed
                                     else "TEXT")
                for n, t in zip(names, types, strict=True))
            con.execute(f'CREATE TABLE "{schema}"."{table}" ({columns})'.encode())
            with con.cursor().copy(f'COPY "{schema}"."{table}" FROM STDIN'.encode()) as copy:
                for row in relation.fetchall():
                    copy.write_row(row)
            duck.close()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh PostgreSQL database holding Synthea27Nj with the planted children twice: typed
    (schemas cdm and vocab) and as raw text with R's NA (schemas raw and raw_vocab)."""
    if not POSTGRES:
        pytest.fail("TEST_POSTGRES_URL is not set: run the suite with scripts/check, which "
                    "starts PostgreSQL on loopback")
    name = f"imnm_cdm_{uuid.uuid4().hex[:8]}"
    admin = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"'.encode())
    url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    root = tmp_path_factory.mktemp("pg")
    comma = next(d for d in DIALECTS if d.name == "comma")
    r_na = next(d for d in DIALECTS if d.name == "r_na")
    copies = write_omop_copies(SYNTHEA27NJ, {comma: root / "comma", r_na: root / "r_na"},
                               PLANTED)
    load(copies[comma], url, "cdm", "vocab", typed=True)
    load(copies[r_na], url, "raw", "raw_vocab", typed=False)
    return url


@pytest.fixture(scope="module")
def on_duckdb(tmp_path_factory: pytest.TempPathFactory) -> ScreenResult:
    folder = write_omop_copy(SYNTHEA27NJ, tmp_path_factory.mktemp("duck") / "x", DIALECTS[0],
                             PLANTED)
    return run_screen("omop", str(folder), as_of=AS_OF)


def test_the_screen_inside_postgresql_finds_the_planted_children_as_duckdb_does(
        database: str, on_duckdb: ScreenResult) -> None:
    result = run_screen("omop", database, as_of=AS_OF, cdm_schema="cdm", vocab="vocab")
    assert result.engine == "postgres"
    assert found(result) == found(on_duckdb) == expected()
    assert result.rows == on_duckdb.rows  # every column, row for row
    assert result.population == on_duckdb.population
    assert result.population_by_age == on_duckdb.population_by_age
    pg = {(c.input, c.item): c.count for c in result.coverage}
    duck = {(c.input, c.item): c.count for c in on_duckdb.coverage}
    assert pg == duck
    assert pg[("measurement", "ck_unit_unreadable")] == 1
    assert result.notes == on_duckdb.notes


def test_a_raw_text_load_with_na_is_read_the_same(database: str,
                                                  on_duckdb: ScreenResult) -> None:
    result = run_screen("omop", database, as_of=AS_OF, cdm_schema="raw", vocab="raw_vocab")
    assert result.rows == on_duckdb.rows
    assert not [c for c in result.coverage if c.item.startswith("unreadable_")]


def test_the_command_inside_postgresql_and_its_errors(database: str, tmp_path: Path) -> None:
    out = tmp_path / "worklist.csv"
    run = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--omop", database, "--cdm-schema", "cdm",
         "--vocab", "vocab", "--as-of", AS_OF.isoformat(), "--out", str(out)],
        capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "(postgres)" in run.stderr and "staging" in run.stderr  # its progress, as every engine
    assert out.read_text(encoding="utf-8").count("\n") == len(expected()) + 1
    ambiguous = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--omop", database],
        capture_output=True, text=True, check=False)
    assert ambiguous.returncode == 2
    assert "--cdm-schema: name the schema of table PERSON" in ambiguous.stderr
    assert "cdm, raw" in ambiguous.stderr
    with_password = database.replace("imnm@", "imnm:s3cret@")
    wrong = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--omop", with_password,
         "--cdm-schema", "nope"], capture_output=True, text=True, check=False)
    assert wrong.returncode == 2 and "got schema 'nope'" in wrong.stderr
    assert "s3cret" not in wrong.stderr + wrong.stdout
    unreachable = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--omop",
         "postgresql+psycopg://imnm:s3cret@127.0.0.1:1/x"],
        capture_output=True, text=True, check=False)
    assert unreachable.returncode == 2 and "cannot connect" in unreachable.stderr
    assert "s3cret" not in unreachable.stderr


def test_fhir_is_not_screened_in_postgresql(database: str, tmp_path: Path) -> None:
    engine = PostgresEngine(database)
    try:
        with pytest.raises(InputUnusable, match="FHIR NDJSON"):
            engine.register_fhir(tmp_path, ())
    finally:
        engine.close()


@pytest.mark.parametrize("dialect", EMIT_DIALECTS)
def test_emitted_sql_parses_in_its_dialect(dialect: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--emit-sql", "--dialect", dialect,
         "--cdm-schema", "cdm", "--vocab", "vocab", "--as-of", "2025-06-30"],
        capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    parsed = sqlglot.parse(run.stdout, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    statements = [p for p in parsed if p is not None]
    # every statement fully understood by the dialect's parser, none passed through as text
    assert statements and not [p for p in statements if isinstance(p, exp.Command)]
    assert len(statements) == run.stdout.count(";\n")
    tables = {(t.db, t.name.lstrip("#")) for p in statements for t in p.find_all(exp.Table)}
    assert ("cdm", "measurement") in tables and ("vocab", "concept") in tables
    assert not {name for db, name in tables if name in ("person", "measurement", "concept")
                and not db}  # every CDM and vocabulary table is qualified


def _queries(script: str) -> list[str]:
    return split(script)[-3:]


def test_emitted_sql_runs_on_duckdb_with_the_same_worklist(tmp_path: Path,
                                                           on_duckdb: ScreenResult) -> None:
    folder = write_omop_copy(SYNTHEA27NJ, tmp_path / "x", DIALECTS[0], PLANTED)
    con = duckdb.connect()
    for table in ("person", "condition_occurrence", "measurement", "drug_exposure",
                  *VOCABULARY):
        schema = "vocab" if table in VOCABULARY else "cdm"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE TABLE {schema}.{table} AS SELECT * FROM read_csv("  # noqa: S608
                    f"'{folder / (table.upper() + '.csv')}', header = true)")
    script = emit(KB, Parameters.from_knowledge(KB, AS_OF), "duckdb", cdm_schema="cdm",
                  vocab_schema="vocab")
    statements = split(script)
    for statement in statements[:-3]:
        con.execute(statement)
    worklist, _population, coverage = (con.execute(q).fetchall() for q in statements[-3:])
    assert {(str(r[0]), r[1]) for r in worklist} == expected()
    assert len(worklist) == len(on_duckdb.rows)
    assert dict(((i, item), n) for i, item, n in coverage)[("measurement", "rows")] == \
        {(c.input, c.item): c.count for c in on_duckdb.coverage}[("measurement", "rows")]


def test_emitted_sql_runs_in_postgresql_with_the_same_worklist(database: str) -> None:
    script = emit(KB, Parameters.from_knowledge(KB, AS_OF), "postgres", cdm_schema="cdm",
                  vocab_schema="vocab")
    conninfo = database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as con:
        statements = split(script)
        for statement in statements[:-3]:
            con.execute(statement.encode())
        worklist = con.execute(statements[-3].encode()).fetchall()
    assert {(str(r[0]), r[1]) for r in worklist} == expected()


def test_emit_refuses_what_it_cannot_write() -> None:
    bad = subprocess.run([sys.executable, "-m", "imnm.cli", "screen", "--emit-sql",
                          "--dialect", "oracle"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--dialect: got 'oracle'" in bad.stderr
    injected = subprocess.run([sys.executable, "-m", "imnm.cli", "screen", "--emit-sql",
                               "--cdm-schema", "cdm; DROP TABLE person"],
                              capture_output=True, text=True, check=False)
    assert injected.returncode == 2 and "expected a schema name" in injected.stderr
    both = subprocess.run([sys.executable, "-m", "imnm.cli", "screen", "--emit-sql",
                           "--omop", "x.duckdb"], capture_output=True, text=True, check=False)
    assert both.returncode == 2 and "reads no data" in both.stderr
