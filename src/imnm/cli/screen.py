"""Population commands: the screen and the synthetic populations it is tested on."""

import datetime as dt
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from imnm.cli._common import (
    EXIT_BAD_INPUT,
    app,
    unwritable,
)

synth_app = typer.Typer(help="Synthetic populations with a ground-truth label per child.",
                        no_args_is_help=True)
app.add_typer(synth_app, name="synth")


@synth_app.command("omop")
def synth_omop(
    out: Annotated[Path, typer.Option("--out", help="FILE.duckdb, or a folder for Parquet.")],
    patients: Annotated[int, typer.Option("--patients", min=100, help="How many children.")
                        ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same population.")] = 1,
) -> None:
    """Write a synthetic OMOP CDM v5.4 population (with table imnm_truth)."""
    from imnm.screen import synth

    n = synth.write_omop(synth.population(patients, seed), out)
    typer.echo(f"{n:,} children written to {out} (screen date {synth.AS_OF}; ground truth in "
               "table imnm_truth)")


@synth_app.command("fhir")
def synth_fhir(
    out: Annotated[Path, typer.Option("--out", help="Folder for the NDJSON files.")],
    patients: Annotated[int, typer.Option("--patients", min=100, help="How many children.")
                        ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same population.")] = 1,
    gzip_files: Annotated[bool, typer.Option("--gzip", help="Write .ndjson.gz.")] = False,
) -> None:
    """Write a synthetic population as bulk FHIR NDJSON (with truth.csv)."""
    from imnm.screen import synth

    n = synth.write_fhir(synth.population(patients, seed), out, gzip_files=gzip_files)
    typer.echo(f"{n:,} children written to {out} (screen date {synth.AS_OF}; ground truth in "
               "truth.csv)")


class EngineName(StrEnum):
    """Screen engines."""

    duckdb = "duckdb"
    spark = "spark"


@app.command()
def screen(
    omop: Annotated[str | None, typer.Option(
        "--omop", help="OMOP CDM: a DuckDB file, a folder of Parquet/CSV, spark:<db>, or a "
        "PostgreSQL database URL (postgresql+psycopg://user@host/db: the screen runs inside "
        "it).")
    ] = None,
    fhir: Annotated[Path | None, typer.Option(
        "--fhir", help="Folder of bulk FHIR NDJSON (or of FHIR Bundles, *.json[.gz]).")
    ] = None,
    cdm_schema: Annotated[str | None, typer.Option(
        "--cdm-schema", help="Schema of the CDM tables in the DuckDB file or PostgreSQL "
        "database (or the Spark database); default: the schema holding PERSON.")] = None,
    vocab: Annotated[str | None, typer.Option(
        "--vocab", help="Vocabulary tables (CONCEPT, CONCEPT_ANCESTOR, CONCEPT_RELATIONSHIP) "
        "elsewhere: a schema of the --omop DuckDB file or PostgreSQL database, a folder, or a "
        "DuckDB file.")] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="JSON report: tiers, missing inputs, notes and the coverage counts.")
    ] = None,
    engine: Annotated[EngineName, typer.Option("--engine", help="duckdb (default) or spark.")
                      ] = EngineName.duckdb,
    out: Annotated[Path | None, typer.Option("--out", help="Worklist file, .csv or .parquet.")
                   ] = None,
    aggregate: Annotated[Path | None, typer.Option(
        "--aggregate", help="This site's counts as CSV for a network: children in scope and "
        "per tier, by sex and age band (1-9 shown as <10), with the coverage counts and the "
        "versions; combine sites with imnm network merge.")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Screen date YYYY-MM-DD "
                                              "(default today).")] = None,
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="Spark master URL (default local[2]).")] = None,
    show: Annotated[int, typer.Option("--show", help="Rows of the worklist to print.")] = 20,
    emit_sql: Annotated[bool, typer.Option(
        "--emit-sql", help="Print the complete screen as SQL for --dialect instead of running "
        "it, for sites that cannot run Python next to their data (tables from --cdm-schema "
        "and --vocab).")] = False,
    dialect: Annotated[str, typer.Option(
        "--dialect", help="With --emit-sql: postgres, spark, databricks, bigquery, snowflake, "
        "redshift, tsql or duckdb.")] = "postgres",
) -> None:
    """Population case finding: children to test for anti-HMGCR/anti-SRP, dystrophy labels to
    review, IMNM left on corticosteroid alone."""
    from rich.console import Console

    from imnm.report.worklist import print_screen
    from imnm.screen.definition import ScreenDefinitionError
    from imnm.screen.engines import EngineUnavailable, InputUnusable
    from imnm.screen.run import run_screen, write_worklist

    try:
        when = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        typer.echo(f"imnm screen: --as-of: got {as_of!r}; expected a date YYYY-MM-DD", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if emit_sql:
        _emit_sql(dialect, when or dt.date.today(), cdm_schema, vocab, omop or fhir)
        return
    if (omop is None) == (fhir is None):
        typer.echo("imnm screen: give exactly one of --omop PATH or --fhir DIR", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    for option, target in (("--out", out), ("--aggregate", aggregate), ("--report", report)):
        problem = unwritable(target)
        if problem:  # said before a long run, not after it
            typer.echo(f"imnm screen: {option}: got {str(target)!r}; {problem}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
    from imnm.screen.engines import is_postgres_url

    in_database = omop is not None and is_postgres_url(omop)
    if in_database and engine is EngineName.spark:
        typer.echo("imnm screen: --engine spark: a PostgreSQL --omop URL is screened inside "
                   "PostgreSQL; leave out --engine", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    label = "postgres" if in_database else engine.value
    console = Console(stderr=True)
    started = time.monotonic()

    @contextmanager
    def step(what: str) -> Iterator[None]:
        """A spinner at a terminal; elsewhere (a log, CI) one line per step with the time."""
        text = f"imnm screen: {what} ({label})"
        if console.is_terminal:
            with console.status(f"[bold]{text}[/]"):
                yield
        else:
            console.print(f"{text} ... [{time.monotonic() - started:.0f} s]", highlight=False)
            yield

    try:
        engine_obj = None
        if engine is EngineName.spark:
            from imnm.screen.run import make_engine

            with step("starting Spark"):
                engine_obj = make_engine("spark", spark_master=spark_master)
        try:
            result = run_screen("omop" if omop else "fhir", omop or str(fhir),
                                engine=engine_obj, engine_name=engine.value, as_of=when,
                                progress=step, cdm_schema=cdm_schema, vocab=vocab)
        finally:
            if engine_obj is not None:
                engine_obj.close()
    except (InputUnusable, EngineUnavailable, ScreenDefinitionError) as exc:
        typer.echo(f"imnm screen: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if out is not None:
        try:
            write_worklist(result, out)
        except ValueError as exc:
            typer.echo(f"imnm screen: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    if aggregate is not None:
        from imnm.screen.network import SITE_COLUMNS, write_rows

        write_rows(aggregate, result.aggregate(), SITE_COLUMNS)
    out_console = Console(width=None if sys.stdout.isatty() else 150)
    print_screen(result, out_console, show)
    if report is not None:
        import json

        report.write_text(json.dumps(result.report(), indent=2) + "\n", encoding="utf-8")
        out_console.print(f"report: {report}")
    if out is not None:
        out_console.print(f"worklist: {out}")


def _emit_sql(dialect: str, when: dt.date, cdm_schema: str | None, vocab: str | None,
              given: object) -> None:
    from imnm.knowledge import load_knowledge
    from imnm.screen.definition import Parameters, ScreenDefinitionError, emit

    if given is not None:
        typer.echo("imnm screen: --emit-sql prints the SQL and reads no data; leave out "
                   "--omop and --fhir", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    for option, name in (("--cdm-schema", cdm_schema), ("--vocab", vocab)):
        if name is not None and not name.replace("_", "").replace(".", "").isalnum():
            typer.echo(f"imnm screen: {option}: got {name!r}; expected a schema name "
                       "(letters, digits, _ and .)", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
    kb = load_knowledge()
    try:
        sql = emit(kb, Parameters.from_knowledge(kb, when), dialect.lower(),
                   cdm_schema=cdm_schema, vocab_schema=vocab)
    except ScreenDefinitionError as exc:
        typer.echo(f"imnm screen: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    sys.stdout.write(sql)


network_app = typer.Typer(help="A network of sites: combine the sites' aggregate files.",
                          no_args_is_help=True)
app.add_typer(network_app, name="network")


@network_app.command("merge")
def network_merge(
    files: Annotated[list[Path], typer.Argument(
        help="Two or more site files written by imnm screen --aggregate.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="The network table as CSV (default: printed).")] = None,
) -> None:
    """Add the sites' counts into one network table. A cell any site suppressed keeps no
    exact count, only its bounds; files from different imnm or knowledge versions are
    refused."""
    from imnm.screen.network import NETWORK_COLUMNS, NetworkError, merge, write_rows

    problem = unwritable(out)
    if problem:
        typer.echo(f"imnm network merge: --out: got {str(out)!r}; {problem}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        rows = merge(files)
    except NetworkError as exc:
        typer.echo(f"imnm network merge: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    suppressed = sum(1 for r in rows if r["sites_suppressed"] != "0")
    if out is not None:
        write_rows(out, rows, NETWORK_COLUMNS)
        typer.echo(f"{len(files)} sites, {len(rows)} cells ({suppressed} with a suppressed "
                   f"site: bounds only) -> {out}")
        return
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=list(NETWORK_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
