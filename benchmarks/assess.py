"""How long one assessment takes: `imnm assess` cold start, and in-process `assess()`.

Run by hand (never by the test suite):  .venv/bin/python benchmarks/assess.py [--runs N]
Prints the figures and writes them to benchmarks/results/assess.txt.

    .venv/bin/python benchmarks/assess.py --instructions

counts instead the instructions each cold start executes (valgrind's callgrind, Debian's
`valgrind`; about a minute): `imnm assess` and the same floors, plus a typer command line of
the same shape as `imnm assess` (a list of paths, an enum option) that validates one pydantic
model, which pays what typer does per parameter on every start. This machine's speed moves by
half from minute to minute and the floors move with it; an instruction count does not (with
PYTHONHASHSEED fixed two runs agree to within a few thousand), so it shows how much of a
start is imnm's own. Written to benchmarks/results/assess-instructions.txt.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # this folder's benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "case-series-2025-patient-1.json"


ONE_MODEL = ("import typer\nfrom pydantic import BaseModel\n"
             "class M(BaseModel):\n    x: int\nM(x=1)")
FLOORS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import pydantic, typer'": [sys.executable, "-c", "import pydantic, typer"],
    # `import pydantic` defers its model machinery until the first model is defined: this is
    # what any typer CLI with one pydantic model pays before its own code.
    "python -c 'import typer; one pydantic model'": [sys.executable, "-c", ONE_MODEL],
}


# A typer command line of `imnm assess`'s shape with one pydantic model: typer builds a
# validator for each parameter when the command runs, which importing typer does not show.
TYPER_CLI = """
import enum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

app = typer.Typer()


class Format(str, enum.Enum):
    text = "text"
    json = "json"


@app.command()
def assess(files: Annotated[list[Path], typer.Argument()],
           fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.text) -> None:
    class M(BaseModel):
        x: int

    typer.echo(M(x=len(files)).model_dump_json())


@app.command()
def other() -> None:
    pass


app()
"""


TYPER_FLOOR = "a typer command line of the same shape, one pydantic model"


def _commands(folder: Path) -> dict[str, list[str]]:
    """`imnm assess` and its floors, the typer command line written into ``folder``; each is
    run once first, so that bytecode and imnm's knowledge cache are written before anything is
    measured (after a change to imnm, its first start loads the knowledge from its files)."""
    cli = folder / "typer_cli.py"
    cli.write_text(TYPER_CLI, encoding="utf-8")
    commands = {"imnm assess": [sys.executable, "-m", "imnm.cli", "assess", str(EXAMPLE),
                                "-f", "json"],
                **FLOORS,
                TYPER_FLOOR: [sys.executable, str(cli), "assess", str(EXAMPLE), "-f", "json"]}
    for command in commands.values():
        subprocess.run(command, check=True, capture_output=True)
    return commands


def count_instructions() -> list[str]:
    from instructions import callgrind, valgrind_version  # this folder's, run under callgrind

    version = valgrind_version()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        counts = {name: callgrind(command, {"PYTHONHASHSEED": "0"})
                  for name, command in _commands(Path(tmp)).items()}
    own = counts["imnm assess"] - counts[TYPER_FLOOR]
    return [f"{describe()}, {version}; process start to exit, PYTHONHASHSEED=0",
            *(f"{name}: {n / 1e6:,.0f} million instructions" for name, n in counts.items()),
            f"imnm's own start (imnm assess less the typer command line): {own / 1e6:,.0f} "
            f"million instructions, {own / counts['imnm assess']:.0%} of it"]


def cold_start(runs: int) -> dict[str, list[float]]:
    """`imnm assess` from process start to exit, interleaved with four floors run the same
    way (the bare interpreter; importing pydantic and typer; typer and one pydantic model, which
    any CLI built on them pays; a typer command line of the same shape that validates one
    model), so that a slow moment of the machine shows in all five."""
    with tempfile.TemporaryDirectory() as tmp:
        commands = _commands(Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
    return times


def in_process(rounds: int) -> tuple[float, list[float], int]:
    start = time.perf_counter()
    import imnm  # first import, knowledge load and pint registry on first use

    patients = [imnm.load_patient(p.read_text(encoding="utf-8"))
                for p in sorted((ROOT / "examples").glob("*.json"))]
    imnm.assess(patients[0])
    first = time.perf_counter() - start
    per_patient = []
    for _ in range(rounds):
        for patient in patients:
            t0 = time.perf_counter()
            imnm.assess(patient)
            per_patient.append(time.perf_counter() - t0)
    return first, per_patient, len(patients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="cold starts to time")
    parser.add_argument("--rounds", type=int, default=50, help="passes over the examples")
    parser.add_argument("--instructions", action="store_true",
                        help="count each cold start's instructions under callgrind instead")
    args = parser.parse_args()
    if args.instructions:
        text = "\n".join(count_instructions()) + "\n"
        print(text, end="")
        (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
        (ROOT / "benchmarks" / "results" / "assess-instructions.txt").write_text(
            text, encoding="utf-8")
        return
    cold = cold_start(args.runs)
    first, warm, n = in_process(args.rounds)
    warm_ms = sorted(t * 1000 for t in warm)
    lines = [
        describe(),
        *(f"{name} (process start to exit, {args.runs} runs, interleaved): "
          f"median {statistics.median(t):.3f} s, min {min(t):.3f} s, max {max(t):.3f} s"
          for name, t in cold.items()),
        f"in process, import + knowledge load + first assessment: {first:.3f} s",
        f"in process assess() per patient ({n} examples x {args.rounds} rounds): "
        f"median {statistics.median(warm_ms):.2f} ms, "
        f"p99 {warm_ms[int(0.99 * (len(warm_ms) - 1))]:.2f} ms, max {warm_ms[-1]:.2f} ms",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "assess.txt").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
