"""The evidence commands: the review's Table 1, its statistics, new published cases."""

import json
from pathlib import Path
from typing import Annotated

import typer

from imnm.cli._common import (
    EXIT_BAD_INPUT,
    InputError,
    Problem,
    TextOrJson,
    app,
    load_one,
    report,
)

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
        report(str(where), exc.problems)
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
        report(str(file), [Problem("(file)", repr(str(file)),
                                    f"a readable file ({type(exc).__name__})")])
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except InputError as exc:
        report(str(file), exc.problems)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        path, written = add_literature(record, store or default_store())
    except InputError as exc:
        report(str(store or default_store()), exc.problems)
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

    patient = load_one(file)
    try:
        path, written = add_case(CaseRecord(literature_id=literature_id,
                                            initial_diagnosis=initial_diagnosis,
                                            patient=patient), store or default_store())
    except InputError as exc:
        report(str(file), exc.problems)
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
