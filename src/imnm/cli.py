"""The ``imnm`` command.

Exit codes: 0 success; 2 bad input (every problem printed to stderr, one per line, naming
the file, the field, the value and what was expected; never a traceback).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from imnm.errors import InputError, Problem

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
