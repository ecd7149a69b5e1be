"""What every command of ``imnm`` shares: the Typer app, exit codes, output formats and the
one way problems are printed (one line each, naming the input, the field, the value and what
was expected; never a traceback)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

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


def report(path: str, problems: list[Problem]) -> None:
    for problem in problems:
        typer.echo(f"{path}: {problem}", err=True)


def load_one(path: Path) -> Patient:
    """Read and validate one patient file, or exit 2 with the problems."""
    from imnm.patient import load_patient

    try:
        return load_patient(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        report(str(path), [Problem("(file)", repr(str(path)),
                                    f"a readable UTF-8 file ({type(exc).__name__})")])
    except InputError as exc:
        report(str(path), exc.problems)
    raise typer.Exit(EXIT_BAD_INPUT)


def unwritable(path: Path | None) -> str | None:
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


__all__ = ["EXIT_BAD_INPUT", "Format", "InputError", "Problem", "TextOrJson", "app",
           "load_one", "report", "unwritable"]
