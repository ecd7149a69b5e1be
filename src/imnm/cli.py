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
    from imnm.patient import load_patient
    from imnm.report import render_markdown, render_text

    results = []
    failed = False
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _report(str(path), [Problem("(file)", repr(str(path)),
                                        f"a readable UTF-8 file ({type(exc).__name__})")])
            failed = True
            continue
        try:
            results.append(run(load_patient(text)))
        except InputError as exc:
            _report(str(path), exc.problems)
            failed = True
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
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
) -> None:
    """Treatment plan for the child's ENMC subtype: regimen, doses for their size,
    monitoring, when to reassess, cumulative cyclophosphamide."""
    from imnm.assessment import assess as run
    from imnm.knowledge import load_knowledge
    from imnm.report.treatment import render_plan
    from imnm.rules.treatment import build_plan

    patient = _load_one(file)
    enmc_class = run(patient).classification.enmc_2017.cls
    result = build_plan(patient, load_knowledge(), enmc_class)
    if fmt is Format.json:
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
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
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
    if fmt is Format.json:
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
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the CK/strength plot "
                                              "here (.png or .svg); default <id>-course.png")
                    ] = None,
    no_plot: Annotated[bool, typer.Option("--no-plot", help="Do not draw the plot.")] = False,
) -> None:
    """The course over time: timeline, Total Improvement Score or trends, refractory disease,
    and a plot of CK and strength against treatment bars."""
    from imnm.assessment import assess as run
    from imnm.knowledge import load_knowledge
    from imnm.report.treatment import render_course
    from imnm.rules.response import evaluate

    patient = _load_one(file)
    enmc_class = run(patient).classification.enmc_2017.cls
    result = evaluate(patient, load_knowledge(), enmc_class)
    written = None
    if not no_plot:
        from imnm.report.plot import plot_course

        target = plot or Path(f"{patient.id}-course.png")
        try:
            written = plot_course(patient, target, refractory_since=result.refractory_since)
        except ValueError as exc:
            typer.echo(f"imnm course: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    if fmt is Format.json:
        payload = result.model_dump(mode="json")
        payload["plot"] = str(written) if written else None
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_course(result), nl=False)
        if written:
            typer.echo(f"plot: {written}")


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
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
) -> None:
    """List the sources and what each supports, with the status of the facts taken from it."""
    from imnm.knowledge import load_knowledge

    kb = load_knowledge()
    uses: dict[str, list[str]] = {s: [] for s in kb.sources}
    statuses: dict[str, set[str]] = {s: set() for s in kb.sources}
    for file, entry, cited in kb.cited_entries():
        uses[cited.source].append(f"{file.removesuffix('.toml')}: {entry}")
        statuses[cited.source].add(cited.status.value)
    if fmt is Format.json:
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except InputError as exc:  # pragma: no cover - every command handles its own input
        _report("(input)", exc.problems)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
