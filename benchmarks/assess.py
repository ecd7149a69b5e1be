"""How long one assessment takes: `imnm assess` cold start, and in-process `assess()`.

Run by hand (never by the test suite):  .venv/bin/python benchmarks/assess.py [--runs N]
Prints the figures and writes them to benchmarks/results/assess.txt.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

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


def cold_start(runs: int) -> dict[str, list[float]]:
    """`imnm assess` from process start to exit, interleaved with three floors run the same
    way (the bare interpreter; importing pydantic and typer; typer and one pydantic model, which
    any CLI built on them pays), so that a slow moment of the machine shows in all four."""
    commands = {"imnm assess": [sys.executable, "-m", "imnm.cli", "assess", str(EXAMPLE),
                                "-f", "json"], **FLOORS}
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
    args = parser.parse_args()
    cold = cold_start(args.runs)
    first, warm, n = in_process(args.rounds)
    warm_ms = sorted(t * 1000 for t in warm)
    lines = [
        f"machine: {platform.platform()}, python {platform.python_version()}",
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
