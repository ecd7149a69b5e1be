"""Where the CDS Hooks service's latency tail comes from. Run by hand:

    .venv/bin/python benchmarks/service_tail.py [--seconds 10] [--clients 50] [--rounds 2]

One worker serves the patient-view hook (the app `imnm serve` builds, development mode, on the
same uvicorn, event loop and HTTP parser) behind a thin ASGI layer that records, for every
call: which connection it came on, when it started and ended, and the CPU time the call took.
wrk (or the Python client from benchmarks/service.py where wrk is missing; the output says
which) keeps --clients connections busy for --seconds. The worker then reports:

- the order of service: how many calls were served between a connection's response and its
  next call starting. With C connections always waiting, strict arrival order gives C - 1 for
  every call;
- the wall and CPU time of each run of C consecutive calls (a call waits for about the C - 1
  calls before it, so this is what the client sees if service is in order);
- the CPU time the hypervisor took from this machine (steal, from /proc/stat).

and the client's latency is printed beside them. Written to
benchmarks/results/service_tail.txt. The order of service means something only when the
load generator keeps every connection busy: wrk does; the Python client, a single Python
process on the same cores as the server, falls behind and leaves connections idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # this folder's benchmarks/machine.py

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service as bench  # benchmarks/service.py: payload, wrk, the Python client

ROOT = bench.ROOT

TRACED_WORKER = """
import json, signal, sys, time
import uvicorn
from imnm.cli.service import EVENT_LOOP, HTTP_PARSER
from imnm.service.app import create_app, settle_for_serving

inner = create_app(development=True)
settle_for_serving()
calls = []  # (connection, start, end, cpu seconds)

async def app(scope, receive, send):
    if scope["type"] != "http":
        await inner(scope, receive, send)
        return
    # Timed from the moment the whole body is in: from there the call runs to its response
    # without giving the loop up, so no two calls' times overlap.
    began = []

    async def received():
        message = await receive()
        if not message.get("more_body", False):
            began.append((time.perf_counter(), time.thread_time()))
        return message

    await inner(scope, received, send)
    if began:
        start, cpu = began[0]
        calls.append((scope.get("client"), start, time.perf_counter(),
                      time.thread_time() - cpu))

def dump(*_):
    with open(sys.argv[2], "w") as out:
        json.dump([[str(c), s, e, u] for c, s, e, u in calls], out)
    sys.exit(0)

signal.signal(signal.SIGTERM, dump)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, loop=EVENT_LOOP, http=HTTP_PARSER)
"""


def steal_ticks() -> int | None:
    """The machine's stolen CPU time so far, in clock ticks (None off Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return None


def spread(values: list[float]) -> str:
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[int(p * (len(ordered) - 1))]

    return (f"p10 {q(0.1):6.1f}  p50 {q(0.5):6.1f}  p90 {q(0.9):6.1f}  p99 {q(0.99):6.1f}  "
            f"max {ordered[-1]:6.1f}")


Call = tuple[str, float, float, float]  # connection, start, end (s), CPU seconds


def analyse(calls: list[Call], clients: int, skip: int) -> list[str]:
    """The order of service and the cost of each run of ``clients`` consecutive calls, after
    the first ``skip`` calls (the load starting)."""
    ordered = sorted(calls, key=lambda c: c[1])
    served = 0
    last: dict[str, int] = {}
    between: list[float] = []
    for i, (connection, *_rest) in enumerate(ordered):
        if connection in last and i >= skip:
            between.append(served - last[connection])
        served += 1
        last[connection] = served
    kept = ordered[skip:]
    per_call = [(end - start) * 1000 for _c, start, end, _cpu in kept]
    cpu = [used * 1000 for *_rest, used in kept]
    walls = [sum(per_call[i:i + clients]) for i in range(len(kept) - clients)]
    cpus = [sum(cpu[i:i + clients]) for i in range(len(kept) - clients)]
    in_order = sum(1 for b in between if b == clients - 1)
    return [
        f"  calls served between a connection's response and its next call: {spread(between)}"
        f"  ({in_order:,} of {len(between):,} exactly {clients - 1})",
        f"  one call, wall ms:                 {spread(per_call)}",
        f"  {clients} consecutive calls, wall ms:   {spread(walls)}",
        f"  {clients} consecutive calls, CPU ms:    {spread(cpus)}",
    ]


def one_round(args: argparse.Namespace, tool: str, body: dict[str, object], body_path: Path,
              script: Path, folder: Path) -> list[str]:
    port = bench.free_port()
    dump = folder / f"calls-{port}.json"
    server = subprocess.Popen([sys.executable, "-c", TRACED_WORKER, str(port), str(dump)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=os.environ | {"PYTHONPATH": str(ROOT / "src")})
    url = f"http://127.0.0.1:{port}/cds-services/imnm-patient-view"
    try:
        bench.wait_until_up(server, f"http://127.0.0.1:{port}/knowledge")
        asyncio.run(bench.python_client(url, body, 1, 2))  # warm-up
        steal_before, started = steal_ticks(), time.monotonic()
        if tool == "wrk":
            p50, p99, rate, calls, errors = bench.run_wrk(url, body_path, script, args.clients,
                                                          args.seconds)
            client = (f"client (wrk): p50 {p50:.1f} ms  p99 {p99:.1f} ms  {rate:.0f} calls/s  "
                      f"({calls:,} calls, {errors} errors)")
        else:
            latencies, errors = asyncio.run(bench.python_client(url, body, args.clients,
                                                                args.seconds))
            ms = sorted(t * 1000 for t in latencies)
            client = (f"client (Python; it falls behind, so the order below is not "
                      f"meaningful): {spread(ms)} ms  {len(ms) / args.seconds:.0f} "
                      f"calls/s ({len(ms):,} calls, {errors} errors)")
        steal_after, took = steal_ticks(), time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    calls_seen = [(str(c), float(s), float(e), float(u))
                  for c, s, e, u in json.loads(dump.read_text(encoding="utf-8"))]
    ticks = os.sysconf("SC_CLK_TCK")
    steal = ("steal: not available" if steal_before is None or steal_after is None else
             f"steal: {(steal_after - steal_before) / ticks:.2f} CPU-s of "
             f"{took * (os.cpu_count() or 1):.0f}")
    return [client, *analyse(calls_seen, args.clients, skip=200), f"  {steal}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tool = "wrk" if shutil.which("wrk") else "python"
    body = bench.payload()
    lines = [f"{describe()}; 1 worker, {args.clients} clients, {args.seconds:g} s per "
             f"round; load generator: {tool}; development mode (no token check); "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
    print(lines[0], flush=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        body_path = folder / "body.json"
        body_path.write_text(json.dumps(body), encoding="utf-8")
        script = folder / "post.lua"
        script.write_text(bench.WRK_SCRIPT, encoding="utf-8")
        for number in range(1, args.rounds + 1):
            found = one_round(args, tool, body, body_path, script, folder)
            lines += [f"round {number}: {found[0]}", *found[1:]]
            print("\n".join(lines[-len(found):]), flush=True)
    text = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "service_tail.txt").write_text(text, encoding="utf-8")
    print("written to benchmarks/results/service_tail.txt")


if __name__ == "__main__":
    main()
