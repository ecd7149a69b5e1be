"""Instructions per CDS Hooks call, counted by valgrind's callgrind. Run by hand:

    .venv/bin/python benchmarks/instructions.py [--extra 0 140] [--calls 100] [--src DIR]

This machine's speed changes by a third from one minute to the next, which hides a change of a
tenth in any wall-clock figure; the number of instructions a call executes does not change with
it. It does change with Python's string hash seed (by up to a tenth: the order of sets and
dicts of strings), so each run fixes PYTHONHASHSEED, and the figure is given for several seeds
(``--seeds``) and their mean; with a seed fixed, two runs agree exactly. Each figure is the hook
call served in
process through the whole ASGI app (development mode, the in-memory report store, no HTTP
server or kernel), as `benchmarks/service.py` sends it: the benchmark's prefetch, with
``--extra`` unused laboratory results added (140 is a real child's record, issue 14). It is
``(Ir(10 + calls) - Ir(10)) / calls``: two runs under callgrind, so imports and the first calls
cancel out. ``--src`` measures another checkout's ``src`` (to compare two versions). The
figures go to benchmarks/results/instructions.txt. Needs Debian's ``valgrind``; a few minutes.
Instructions are not time (a C library that does more per instruction is under-counted), so
a change this shows should still be seen under load with `benchmarks/service.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import describe  # this folder's benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "instructions.txt"
WARM = 10

# The driver run under callgrind: the app built, then N hook calls through its ASGI interface.
# imnm is imported from ``src`` before benchmarks/service.py (the payload), which puts this
# checkout's src first on the path: the package's own modules then come from ``src`` still.
DRIVER = """
import asyncio, json, sys
sys.path.insert(0, {src!r})
import imnm
assert imnm.__file__.startswith({src!r}), imnm.__file__
sys.path.insert(0, {bench!r})
import service as bench
import imnm.service.app
assert imnm.service.app.__file__.startswith({src!r}), imnm.service.app.__file__
from imnm.service.app import create_app, settle_for_serving
app = create_app(development=True)
settle_for_serving()
body = json.dumps(bench.payload({extra})).encode()
path = "/cds-services/imnm-patient-view"
scope = {{"type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1", "method": "POST",
         "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
         "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"),
         (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
         "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}}

async def call():
    sent = False
    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {{"type": "http.request", "body": body, "more_body": False}}
        await asyncio.sleep(3600)
    out = []
    async def send(message):
        out.append(message)
    await app(dict(scope), receive, send)
    assert out[0]["status"] == 200, out

async def main():
    for _ in range({n}):
        await call()

asyncio.run(main())
"""


def callgrind(command: list[str], env: dict[str, str]) -> int:
    """Instructions callgrind counts for ``command`` from start to exit, run with ``env``
    added to this process's environment (benchmarks/assess.py counts cold starts with it)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out",
             *command], capture_output=True, text=True, check=False, env=os.environ | env)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or found is None:
        sys.exit(f"the run under callgrind failed (exit {out.returncode}):\n"
                 + out.stderr[-2000:])
    return int(found.group(1))


def valgrind_version() -> str:
    """valgrind's version line; exits with a word of how to install it when it is missing."""
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def instructions(src: Path, extra: int, n: int, seed: int) -> int:
    """Instructions callgrind counted for the driver making ``n`` calls, hash seed ``seed``."""
    return callgrind([sys.executable, "-c", DRIVER.format(
        bench=str(ROOT / "benchmarks"), src=str(src), extra=extra, n=n)],
        {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": str(seed)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extra", type=int, nargs="+", default=[0, 140],
                        help="unused laboratory results added to the prefetch")
    parser.add_argument("--calls", type=int, default=100, help="calls counted")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="PYTHONHASHSEED values, one pair of runs each")
    parser.add_argument("--src", type=Path, default=ROOT / "src",
                        help="the src folder of the checkout to measure")
    args = parser.parse_args()
    version = valgrind_version()
    import service  # this folder's benchmarks/service.py: the payload

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(args.src)], check=True)
    # One call outside callgrind first: a checkout never run here has no knowledge cache yet,
    # and the first counted run would pay the knowledge's full load (about a billion
    # instructions, 50 million "per call" at --calls 20).
    subprocess.run([sys.executable, "-c", DRIVER.format(
        bench=str(ROOT / "benchmarks"), src=str(args.src), extra=0, n=1)],
        check=True, capture_output=True)
    lines = [f"{describe()}, {version}; "
             f"src {args.src}; each figure (Ir({WARM} + {args.calls}) - Ir({WARM})) / "
             f"{args.calls}, the hook call in process (development mode)"]
    for extra in args.extra:
        body = service.payload(extra)
        size = len(json.dumps(body).encode())
        prefetch = body["prefetch"]
        assert isinstance(prefetch, dict)
        count = sum(len(v["entry"]) if v.get("resourceType") == "Bundle" else 1
                    for v in prefetch.values() if isinstance(v, dict))
        per_seed = [(instructions(args.src, extra, WARM + args.calls, seed)
                     - instructions(args.src, extra, WARM, seed)) / args.calls / 1e6
                    for seed in args.seeds]
        line = (f"prefetch of {count} resources ({size:,} bytes; {extra} unused results): "
                f"{sum(per_seed) / len(per_seed):.2f} million instructions per call (hash seeds "
                + ", ".join(f"{seed}: {value:.2f}" for seed, value in zip(args.seeds, per_seed,
                                                                         strict=True)) + ")")
        print(line, flush=True)
        lines.append(line)
    if args.src.resolve() == (ROOT / "src").resolve():
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
