"""Commands about one child: assess, plan, dose, course; and what imnm rests on: schema,
knowledge."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from imnm.knowledge import Knowledge

from imnm.cli._common import (
    EXIT_BAD_INPUT,
    Format,
    InputError,
    Problem,
    TextOrJson,
    app,
    load_one,
    report,
)


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
            report(str(path), [Problem("(file)", repr(str(path)),
                                        f"a readable UTF-8 file ({type(exc).__name__})")])
            failed = True
            continue
        try:
            patient, imported = load_any(text)
            results.append(run(patient))
        except InputError as exc:
            report(str(path), exc.problems)
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

    patient = load_one(file)
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

    patient = load_one(file)
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
    export_concept_sets: Annotated[Path | None, typer.Option(
        "--export-concept-sets", help="Write the screen's code sets to this folder as OHDSI "
        "ATLAS concept-set JSON (one file per set, and index.json).")] = None,
    vocab: Annotated[str | None, typer.Option(
        "--vocab", help="With --export-concept-sets: the site's vocabulary (a DuckDB file or "
        "a folder of CSV/Parquet with CONCEPT), to give each code its concept id.")] = None,
) -> None:
    """List the sources and what each supports, with the status of the facts taken from it;
    or export the screen's code sets as ATLAS concept sets."""
    from imnm.knowledge import load_knowledge

    kb = load_knowledge()
    if export_concept_sets is not None:
        _export_concept_sets(kb, export_concept_sets, vocab)
        return
    if vocab is not None:
        typer.echo("imnm knowledge: --vocab goes with --export-concept-sets", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
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


def _export_concept_sets(kb: "Knowledge", directory: Path, vocab: str | None) -> None:
    from imnm.screen.concept_sets import ConceptSetError, export

    if directory.exists() and not directory.is_dir():
        typer.echo(f"imnm knowledge: --export-concept-sets: got {str(directory)!r}; expected "
                   "a folder", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        done = export(kb, directory, vocab)
    except (ConceptSetError, OSError) as exc:
        typer.echo(f"imnm knowledge: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    typer.echo(f"{len(done.files)} ATLAS concept sets, {done.items} items -> {directory} "
               "(index.json lists them)")
    for column, n in done.unreadable.items():
        typer.echo(f"{n} values of {column} in the vocabulary could not be read (those rows "
                   "were not used)")
    if done.unresolved:
        typer.echo(f"{len(done.unresolved)} codes have no concept id"
                   + (" in the vocabulary given" if vocab else
                      " (give the site's vocabulary with --vocab)")
                   + "; ATLAS cannot import those items until they have one: "
                   + "; ".join(done.unresolved[:5]) + (" ..." if len(done.unresolved) > 5
                                                         else ""))
