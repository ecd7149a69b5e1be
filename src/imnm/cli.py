"""The ``imnm`` command.

Exit codes: 0 success; 2 bad input (every problem printed to stderr, one per line, naming
the file, the field, the value and what was expected; never a traceback).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imnm.errors import InputError, Problem

if TYPE_CHECKING:
    from imnm.patient import Patient

app = typer.Typer(
    name="imnm",
    help="Find children with immune-mediated necrotizing myopathy early, and explain why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2


class Format(StrEnum):
    """Output formats of ``imnm assess``."""

    text = "text"
    json = "json"
    markdown = "markdown"


class TextOrJson(StrEnum):
    """Output formats of the commands that have no Markdown rendering."""

    text = "text"
    json = "json"


def _report(path: str, problems: list[Problem]) -> None:
    for problem in problems:
        typer.echo(f"{path}: {problem}", err=True)


@app.command()
def assess(
    files: Annotated[list[Path], typer.Argument(help="Patient JSON files.", show_default=False)],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
) -> None:
    """Assess each child: suspicion, ENMC and EULAR/ACR classification, differential,
    work-up and red flags, each with its facts and source."""
    from imnm.assessment import assess as run
    from imnm.fhir import load_any
    from imnm.report import render_markdown, render_text

    results = []
    failed = False
    for path in files:
        try:
            raw = path.read_bytes()
            if path.suffix == ".gz":
                import gzip

                raw = gzip.decompress(raw)
            text = raw.decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            _report(str(path), [Problem("(file)", repr(str(path)),
                                        f"a readable UTF-8 file ({type(exc).__name__})")])
            failed = True
            continue
        try:
            patient, imported = load_any(text)
            results.append(run(patient))
        except InputError as exc:
            _report(str(path), exc.problems)
            failed = True
            continue
        if imported is not None:
            for line in imported.summary():
                typer.echo(f"{path}: note: {line}", err=True)
    if fmt is Format.json:
        payload = [r.to_dict() for r in results]
        typer.echo(json.dumps(payload[0] if len(files) == 1 and payload else payload,
                              indent=2, ensure_ascii=False))
    else:
        render = render_text if fmt is Format.text else render_markdown
        typer.echo(("\n" + "=" * 72 + "\n\n").join(render(r) for r in results), nl=False)
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


def _load_one(path: Path) -> Patient:
    """Read and validate one patient file, or exit 2 with the problems."""
    from imnm.patient import load_patient

    try:
        return load_patient(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        _report(str(path), [Problem("(file)", repr(str(path)),
                                    f"a readable UTF-8 file ({type(exc).__name__})")])
    except InputError as exc:
        _report(str(path), exc.problems)
    raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def plan(
    file: Annotated[Path, typer.Argument(help="Patient JSON file.", show_default=False)],
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")
                   ] = TextOrJson.text,
) -> None:
    """Treatment plan for the child's ENMC subtype: regimen, doses for their size,
    monitoring, when to reassess, cumulative cyclophosphamide."""
    from imnm.assessment import assess as run
    from imnm.knowledge import load_knowledge
    from imnm.report.treatment import render_plan
    from imnm.rules.treatment import build_plan

    patient = _load_one(file)
    enmc = run(patient).classification.enmc_2017
    result = build_plan(patient, load_knowledge(), enmc.cls, enmc.caveats)
    if fmt is TextOrJson.json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        typer.echo(render_plan(result), nl=False)


@app.command()
def dose(
    drug: Annotated[str, typer.Argument(help="Drug, e.g. methotrexate, MTX, IVIg, rituximab.",
                                        show_default=False)],
    weight: Annotated[float, typer.Option("--weight", help="Body weight in kg.",
                                          show_default=False)],
    height: Annotated[float | None, typer.Option("--height", help="Height in cm (needed "
                                                 "for doses per m²).")] = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")
                   ] = TextOrJson.text,
) -> None:
    """Every cited dose of DRUG for a child of this weight (and height), with caps."""
    from imnm.dosing import DosingError, compute, doses_for_drug
    from imnm.knowledge import load_knowledge
    from imnm.report.treatment import dose_lines

    try:
        rules = doses_for_drug(load_knowledge(), drug)
        results = [compute(rule, weight, height) for rule in rules
                   if rule.basis != "per_m2" or height is not None]
        skipped = [rule.id for rule in rules if rule.basis == "per_m2" and height is None]
        if not results:
            raise DosingError(f"height: needed for {drug} (dosed per m² of body surface area)")
    except DosingError as exc:
        typer.echo(f"imnm dose: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if fmt is TextOrJson.json:
        typer.echo(json.dumps({"doses": [r.model_dump(mode="json") for r in results],
                               "not_computed_without_height": skipped}, indent=2,
                              ensure_ascii=False))
        return
    for r in results:
        typer.echo("\n".join(dose_lines(r)))
    for rule_id in skipped:
        typer.echo(f"not computed: {rule_id} (give --height for doses per m²)")


@app.command()
def course(
    file: Annotated[Path, typer.Argument(help="Patient JSON file with visits.",
                                         show_default=False)],
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")
                   ] = TextOrJson.text,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw CK and strength "
                                              "against treatment bars to this file (.png or "
                                              ".svg).")] = None,
) -> None:
    """The course over time: timeline, Total Improvement Score or trends, refractory disease,
    and, with --plot, a chart of CK and strength against treatment bars."""
    from imnm.assessment import assess as run
    from imnm.knowledge import load_knowledge
    from imnm.report.treatment import render_course
    from imnm.rules.response import evaluate

    patient = _load_one(file)
    enmc_class = run(patient).classification.enmc_2017.cls
    result = evaluate(patient, load_knowledge(), enmc_class)
    written = None
    if plot is not None:
        from imnm.report.plot import plot_course

        if not patient.visits:
            typer.echo(f"imnm course: --plot: {file} has no visits, so there is no course to "
                       "draw (record visits with CK and strength first)", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
        try:
            written = plot_course(patient, plot, refractory_since=result.refractory_since)
        except ValueError as exc:
            typer.echo(f"imnm course: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    if fmt is TextOrJson.json:
        payload = result.model_dump(mode="json")
        payload["plot"] = str(written) if written else None
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_course(result), nl=False)
        if written:
            typer.echo(f"plot: {written}")


evidence_app = typer.Typer(help="The review's Table 1 as data, its statistics, new cases.",
                           no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")

StoreOption = Annotated[Path | None, typer.Option(
    "--store", help="Folder of added records (default $IMNM_EVIDENCE_DIR or "
    "~/.local/share/imnm/evidence).")]


@evidence_app.command("summary")
def evidence_summary(
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")
                   ] = TextOrJson.text,
    with_cases: Annotated[bool, typer.Option(
        "--with-cases/--without-cases",
        help="Add the patient-level case records (shipped and stored).")] = False,
    store: StoreOption = None,
) -> None:
    """Recompute the review's Total row and text figures from the table's rows and print
    every place where the published figure and the recomputed one disagree."""
    from imnm.evidence.records import cases, default_store
    from imnm.evidence.summary import summarise
    from imnm.evidence.table import load_table

    where = store or default_store()
    try:
        records = cases(where) if with_cases else []
    except InputError as exc:
        _report(str(where), exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    result = summarise(load_table(), records, include_cases=with_cases)
    if fmt is TextOrJson.json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo("Wang & Liang 2023, Table 1: published vs recomputed from the 28 rows\n")
    width = max(len(f.name) for f in result.figures)
    typer.echo(f"{'figure'.ljust(width)}  {'published':>12}  {'recomputed':>18}  agrees")
    for f in result.figures:
        mark = {True: "ok", False: "DIFFERS", None: "n/a"}[f.agrees]
        typer.echo(f"{f.name.ljust(width)}  {f.published:>12}  {f.recomputed:>18}  {mark}"
                   + (f"  ({f.note})" if f.note else ""))
    typer.echo("")
    if result.disagreements:
        typer.echo("Disagreements:")
        for f in result.disagreements:
            typer.echo(f"  {f.name}: published {f.published}, recomputed {f.recomputed}")
    else:
        typer.echo("No disagreement between the published and the recomputed figures.")
    if with_cases:
        typer.echo("\nWith the patient-level case records added:")
        for c in result.cases:
            typer.echo(f"  + {c.case_id} ({c.literature_id}): {c.antibody}, {c.sex}, onset "
                       f"{c.onset}, first called a dystrophy: "
                       f"{'yes' if c.first_called_dystrophy else 'no'}")
        for key, value in result.with_cases.items():
            typer.echo(f"  {key}: {value}")


@evidence_app.command("compare")
def evidence_compare(
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")
                   ] = TextOrJson.text,
    figure: Annotated[Path | None, typer.Option(
        "--figure", help="Write the figure here (.png or .svg).")] = None,
) -> None:
    """Anti-HMGCR against anti-SRP for each feature: Wilson 95% intervals, Fisher's exact
    test, and a figure of the proportions."""
    from imnm.evidence.stats import Proportion, compare, plot_comparison
    from imnm.evidence.table import load_table

    comparisons = compare(load_table())
    written = None
    if figure is not None:
        try:
            written = plot_comparison(comparisons, figure)
        except ValueError as exc:
            typer.echo(f"imnm evidence compare: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    if fmt is TextOrJson.json:
        typer.echo(json.dumps({"comparisons": [c.model_dump() for c in comparisons],
                               "figure": str(written) if written else None}, indent=2))
        return

    def show(p: Proportion) -> str:
        if p.proportion is None or p.low is None or p.high is None:
            return "no data".ljust(26)
        text = f"{p.positive:>2}/{p.known:<2} {p.proportion:5.0%} ({p.low:.0%}-{p.high:.0%})"
        return text.ljust(26)

    typer.echo("feature      anti-HMGCR (95% CI)         anti-SRP (95% CI)           "
               "odds ratio  Fisher p")
    for c in comparisons:
        odds = f"{c.odds_ratio:.2f}" if c.odds_ratio is not None else "-"
        p = f"{c.p_value:.3g}" if c.p_value is not None else "-"
        typer.echo(f"{c.feature:<12} {show(c.hmgcr)}  {show(c.srp)}  {odds:>10}  {p:>8}")
    typer.echo("\nProportions are over children with the feature reported (NA left out). "
               "Counts are study-level aggregates: read p-values as descriptive.")
    if written:
        typer.echo(f"figure: {written}")


@evidence_app.command("add")
def evidence_add(
    file: Annotated[Path, typer.Argument(help="A literature-database export (JSON record).",
                                         show_default=False)],
    store: StoreOption = None,
) -> None:
    """Import a literature record (title, authors, DOI, journal, date, abstract)."""
    from imnm.evidence.records import add_literature, default_store, parse_export

    try:
        record = parse_export(file.read_text(encoding="utf-8"))
    except OSError as exc:
        _report(str(file), [Problem("(file)", repr(str(file)),
                                    f"a readable file ({type(exc).__name__})")])
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except InputError as exc:
        _report(str(file), exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        path, written = add_literature(record, store or default_store())
    except InputError as exc:
        _report(str(store or default_store()), exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except OSError as exc:
        typer.echo(f"imnm evidence add: --store: cannot write there ({exc.strerror})", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    typer.echo(f"{'added' if written else 'already present, unchanged'}: {record.id} "
               f"({record.title}; {record.date or 'no date'}) -> {path}")


@evidence_app.command("add-case")
def evidence_add_case(
    file: Annotated[Path, typer.Argument(help="A patient JSON file for one published child.",
                                         show_default=False)],
    literature_id: Annotated[str, typer.Option("--literature", help="Id of the literature "
                                               "record (as `imnm evidence add` printed).")],
    initial_diagnosis: Annotated[str | None, typer.Option(
        "--initial-diagnosis", help="The first diagnosis the child was given.")] = None,
    store: StoreOption = None,
) -> None:
    """Add one published child as a patient-level case record linked to its paper."""
    from pydantic import ValidationError

    from imnm.evidence.records import CaseRecord, add_case, default_store

    patient = _load_one(file)
    try:
        path, written = add_case(CaseRecord(literature_id=literature_id,
                                            initial_diagnosis=initial_diagnosis,
                                            patient=patient), store or default_store())
    except InputError as exc:
        _report(str(file), exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except ValidationError:
        typer.echo(f"imnm evidence add-case: --literature: got {literature_id[:80]!r}; expected "
                   "a literature id as `imnm evidence add` printed (doi_...)", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except OSError as exc:
        typer.echo(f"imnm evidence add-case: --store: cannot write there ({exc.strerror})",
                   err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    typer.echo(f"{'added' if written else 'already present, unchanged'}: {patient.id} -> {path}")


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


def _unwritable(path: Path | None) -> str | None:
    """Why a file cannot be written at ``path`` (None when it can, or no path was given):
    checked by creating and removing a file beside it."""
    import os
    import tempfile

    if path is None:
        return None
    if path.is_dir():
        return "expected a file name, not a folder"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"expected a file imnm may write ({exc.strerror or type(exc).__name__})"
    return None


@app.command()
def screen(
    omop: Annotated[str | None, typer.Option(
        "--omop", help="OMOP CDM: a DuckDB file, a folder of Parquet/CSV, or spark:<db>.")
    ] = None,
    fhir: Annotated[Path | None, typer.Option(
        "--fhir", help="Folder of bulk FHIR NDJSON (or of FHIR Bundles, *.json[.gz]).")
    ] = None,
    cdm_schema: Annotated[str | None, typer.Option(
        "--cdm-schema", help="Schema of the CDM tables in the DuckDB file (or Spark database); "
        "default: the schema holding PERSON.")] = None,
    vocab: Annotated[str | None, typer.Option(
        "--vocab", help="Vocabulary tables (CONCEPT, CONCEPT_ANCESTOR, CONCEPT_RELATIONSHIP) "
        "elsewhere: a schema of the --omop DuckDB file, a folder, or a DuckDB file.")] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="JSON report: tiers, missing inputs, notes and the coverage counts.")
    ] = None,
    engine: Annotated[EngineName, typer.Option("--engine", help="duckdb (default) or spark.")
                      ] = EngineName.duckdb,
    out: Annotated[Path | None, typer.Option("--out", help="Worklist file, .csv or .parquet.")
                   ] = None,
    aggregate: Annotated[Path | None, typer.Option(
        "--aggregate", help="Counts per tier and sex as CSV (under 10 suppressed), with the "
        "coverage counts.")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Screen date YYYY-MM-DD "
                                              "(default today).")] = None,
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="Spark master URL (default local[2]).")] = None,
    show: Annotated[int, typer.Option("--show", help="Rows of the worklist to print.")] = 20,
) -> None:
    """Population case finding: children to test for anti-HMGCR/anti-SRP, dystrophy labels to
    review, IMNM left on corticosteroid alone."""
    import csv
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    from imnm.screen.definition import ScreenDefinitionError
    from imnm.screen.engines import EngineUnavailable, InputUnusable
    from imnm.screen.run import run_screen, write_worklist

    if (omop is None) == (fhir is None):
        typer.echo("imnm screen: give exactly one of --omop PATH or --fhir DIR", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        when = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        typer.echo(f"imnm screen: --as-of: got {as_of!r}; expected a date YYYY-MM-DD", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for option, target in (("--out", out), ("--aggregate", aggregate), ("--report", report)):
        problem = _unwritable(target)
        if problem:  # said before a long run, not after it
            typer.echo(f"imnm screen: {option}: got {str(target)!r}; {problem}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
    console = Console(stderr=True)

    def step(label: str) -> object:
        return console.status(f"[bold]imnm screen[/]: {label} ({engine.value})")

    try:
        engine_obj = None
        if engine is EngineName.spark:
            from imnm.screen.run import make_engine

            with console.status("starting Spark"):
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
        with aggregate.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["section", "tier", "sex", "item",
                                                        "count"])
            writer.writeheader()
            writer.writerows(result.aggregate())
    table = Table(title=f"imnm worklist: {result.population:,} children screened "
                        f"({result.source}, {result.engine}, as of {result.as_of})")
    for column in ("person", "tier", "codes", "peak CK", "x ULN", "anti-HMGCR", "anti-SRP",
                   "months CS alone"):
        table.add_column(column)
    for row in result.rows[:show]:
        table.add_row(row.person_id, row.tier, row.diagnosis_codes or "",
                      f"{row.peak_ck_u_per_l:,.0f}" if row.peak_ck_u_per_l else "",
                      f"{row.peak_ck_multiple_of_uln:.1f}" if row.peak_ck_multiple_of_uln
                      else "", row.anti_hmgcr, row.anti_srp,
                      f"{row.months_on_corticosteroid_alone:g}"
                      if row.months_on_corticosteroid_alone is not None else "")
    out_console = Console(width=None if sys.stdout.isatty() else 150)
    out_console.print(table)
    counts = result.counts()
    out_console.print("per tier: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                                      or "no child listed"))
    if len(result.rows) > show:
        out_console.print(f"(first {show} of {len(result.rows)} rows; --out writes them all)")
    for missing in result.missing:
        out_console.print(f"[yellow]not assessable: missing {missing}[/]")
    for note in result.notes:
        out_console.print(f"note: {note}")
    read = Table(title="what the screen read (records)", title_justify="left")
    for column in ("input", "count", "what"):
        read.add_column(column)
    for line in sorted(result.coverage, key=lambda c: (not c.unread, c.input, c.item)):
        if line.count or line.item in ("rows", "in_code_set"):
            read.add_row(line.input, f"{line.count:,}",
                         f"[yellow]{line.meaning}[/]" if line.unread else line.meaning)
    out_console.print(read)
    if not result.rows:
        unread = sum(c.count for c in result.unread())
        out_console.print("no child listed: nobody matched among what was read"
                          + (f"; {unread:,} records could not be read or used (above)"
                             if unread else ""))
    if report is not None:
        import json

        report.write_text(json.dumps(result.report(), indent=2) + "\n", encoding="utf-8")
        out_console.print(f"report: {report}")
    if out is not None:
        out_console.print(f"worklist: {out}")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8000,
    issuer: Annotated[list[str] | None, typer.Option(
        "--issuer", help="Allowed token issuer as ISS=JWKS (a JWKS URL or file); repeatable.")
    ] = None,
    insecure_development: Annotated[bool, typer.Option(
        "--insecure-development", help="Run WITHOUT authentication (local development only).")
    ] = False,
    registry: Annotated[str | None, typer.Option(
        "--registry", help="Registry database URL: serve the web pages (sqlite:///file.db or "
        "postgresql+psycopg://...).")] = None,
    web_secret: Annotated[str | None, typer.Option(
        "--web-secret", envvar="IMNM_WEB_SECRET",
        help="Secret that signs report links (default: random at each start).")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", envvar="IMNM_BASE_URL",
        help="The URL clients call, e.g. https://imnm.example.org behind a TLS proxy (tokens' "
        "audience, card links, the clinic's origin). Default: http://HOST:PORT.")] = None,
    max_body_mb: Annotated[float, typer.Option(
        "--max-body-mb", min=0.001, help="Largest request body accepted, in MiB.")] = 16.0,
) -> None:
    """Serve the REST API (/assess, /knowledge, /docs), the CDS Hooks service and, with
    --registry, the clinic's web pages."""
    import uvicorn

    from imnm.service.app import create_app
    from imnm.service.security import TokenVerifier

    issuers = {}
    for item in issuer or []:
        name, sep, jwks = item.partition("=")
        if not sep or not name or not jwks:
            typer.echo(f"imnm serve: --issuer: got {item!r}; expected ISS=JWKS", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
        issuers[name] = jwks
    if not issuers and not insecure_development:
        typer.echo("imnm serve: give at least one --issuer ISS=JWKS, or --insecure-development "
                   "to run without authentication", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    if insecure_development:
        typer.echo("WARNING: imnm serve in development mode: NO AUTHENTICATION. "
                   "Do not expose this port.", err=True)
    store = None
    if registry is not None:
        from imnm.registry import Registry, schema_problem

        problem = schema_problem(registry)
        if problem:
            typer.echo(f"imnm serve: --registry: {problem}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
        store = Registry(registry)
    base = (base_url or f"http://{host}:{port}").rstrip("/")
    try:
        app_ = create_app(TokenVerifier(issuers) if issuers else None,
                          development=insecure_development, registry=store,
                          link_secret=web_secret, base_url=base,
                          max_body_bytes=int(max_body_mb * 1024 * 1024))
    except ValueError as exc:
        typer.echo(f"imnm serve: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    typer.echo(f"imnm service on http://{host}:{port}, called as {base} "
               "(API docs at /docs)", err=True)
    log_config = dict(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"] = {**log_config["loggers"], "imnm": {
        "handlers": ["default"], "level": "INFO", "propagate": False}}
    uvicorn.run(app_, host=host, port=port, log_level="info", log_config=log_config,
                proxy_headers=True)


registry_app = typer.Typer(help="The registry of patients, visits and assessments.",
                           no_args_is_help=True)
app.add_typer(registry_app, name="registry")
RegistryUrl = Annotated[str, typer.Option("--url", help="Database URL (sqlite:///file.db or "
                                          "postgresql+psycopg://user@host/db).")]


@registry_app.command("init")
def registry_init(url: RegistryUrl) -> None:
    """Create or upgrade the registry schema (Alembic migrations)."""
    from imnm.registry import migrate

    migrate(url)
    typer.echo(f"registry schema up to date at {url.split('@')[-1]}")


@registry_app.command("add-user")
def registry_add_user(
    url: RegistryUrl,
    username: Annotated[str, typer.Argument(show_default=False)],
    role: Annotated[str, typer.Option("--role", help="clinician or researcher")] = "clinician",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input "
        "(for scripts); without it, imnm asks for it twice at the terminal.")] = False,
) -> None:
    """Add a user who logs in to the web pages."""
    from imnm.registry import Registry, RegistryError, schema_problem

    problem = schema_problem(url)
    if problem:
        typer.echo(f"imnm registry add-user: {problem}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        typer.echo("imnm registry add-user: no terminal to ask for the password; give "
                   "--password-stdin and write it on standard input", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    registry = Registry(url)
    try:
        registry.create_user(username, password, role)  # type: ignore[arg-type]
    except RegistryError as exc:
        typer.echo(f"imnm registry add-user: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        registry.close()
    typer.echo(f"user {username} added ({role})")


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--folder", help="Where to put the demo files.")
                      ] = Path("imnm-demo"),
    patients: Annotated[int, typer.Option("--patients", help="Synthetic population size.")
                        ] = 20_000,
    examples: Annotated[Path, typer.Option("--examples", help="Folder of patient files.")
                        ] = Path("examples"),
) -> None:
    """The main job end to end on the embedded default: a synthetic population screened on
    DuckDB, the first 2025 case-series patient assessed, and a registry with the examples,
    ending with how to open the web page."""
    import secrets as secrets_

    from imnm.assessment import assess as run
    from imnm.knowledge import load_knowledge
    from imnm.patient import load_patient
    from imnm.registry import Registry, migrate
    from imnm.screen import synth
    from imnm.screen.run import run_screen

    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "omop.duckdb"
    synth.write_omop(synth.population(patients, 1), database)
    result = run_screen("omop", str(database), as_of=synth.AS_OF)
    kb_ = load_knowledge()
    counts = ", ".join(f"{kb_.label('tier', k)} {v}" for k, v in sorted(result.counts().items()))
    typer.echo(f"1. screened {result.population:,} synthetic children on DuckDB: {counts}")
    example_files = sorted(examples.glob("*.json")) if examples.is_dir() else []
    case = examples / "case-series-2025-patient-1.json"
    if case.exists():
        assessed = run(load_patient(case.read_text(encoding="utf-8")))
        label = kb_.label("enmc_class", assessed.classification.enmc_2017.cls)
        review = "yes" if assessed.suspicion.review_dystrophy_label else "no"
        typer.echo(f"2. case-series patient 1: ENMC 2017 {label}; review the dystrophy label: "
                   f"{review}")
    url = f"sqlite:///{(folder / 'registry.db').resolve()}"
    migrate(url)
    store = Registry(url)
    password = secrets_.token_urlsafe(9)
    username = f"clinician-{secrets_.token_hex(2)}"
    store.create_user(username, password, "clinician")
    account = store.login(username, password)
    assert account is not None  # noqa: S101 - created just above
    for path in example_files:
        store.save_patient(load_patient(path.read_text(encoding="utf-8")), account)
    typer.echo(f"3. registry with {len(example_files)} example children at {url}")
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "imnm"
    program = sys.argv[0] if program == "imnm" and "/" in sys.argv[0] else "imnm"
    typer.echo("\nOpen the clinic's page:\n"
               f"  {program} serve --insecure-development --registry {url}\n"
               f"  then browse http://127.0.0.1:8000/ and log in as {username} / {password}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the patient file."""
    from imnm.patient import Patient

    document = Patient.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["$id"] = "https://imnm.invalid/schema/patient-1.json"
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


@app.command()
def knowledge(
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")
                   ] = TextOrJson.text,
) -> None:
    """List the sources and what each supports, with the status of the facts taken from it."""
    from imnm.knowledge import load_knowledge

    kb = load_knowledge()
    uses: dict[str, list[str]] = {s: [] for s in kb.sources}
    statuses: dict[str, set[str]] = {s: set() for s in kb.sources}
    for file, entry, cited in kb.cited_entries():
        uses[cited.source].append(f"{file.removesuffix('.toml')}: {entry}")
        statuses[cited.source].add(cited.status.value)
    if fmt is TextOrJson.json:
        typer.echo(json.dumps([
            {"id": s.id, "citation": s.citation, "doi": s.doi, "url": s.url, "kind": s.kind,
             "note": s.note, "statuses": sorted(statuses[s.id]), "supports": uses[s.id]}
            for s in kb.sources.values()], indent=2, ensure_ascii=False))
        return
    for s in kb.sources.values():
        typer.echo(f"{s.id}  ({s.kind}; {', '.join(sorted(statuses[s.id])) or 'not cited'})")
        typer.echo(f"  {s.citation}" + (f" doi:{s.doi}" if s.doi else ""))
        if s.note:
            typer.echo(f"  note: {s.note}")
        shown = uses[s.id][:8]
        more = len(uses[s.id]) - len(shown)
        typer.echo("  supports: " + ("; ".join(shown) if shown else "(nothing yet)")
                   + (f"; and {more} more" if more > 0 else ""))
        typer.echo("")
    typer.echo(f"drug product map (results.toml): {len(kb.products)} RxNorm products; "
               f"{kb.results_version}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except InputError as exc:  # pragma: no cover - every command handles its own input
        _report("(input)", exc.problems)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
