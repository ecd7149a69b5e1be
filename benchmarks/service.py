"""Latency and throughput of the CDS Hooks patient-view service on loopback. Run by hand:

    .venv/bin/python benchmarks/service.py [--requests 400]

Starts `imnm serve` (one uvicorn worker, development mode so that the client's token signing
does not count) on a free loopback port, sends a bounded number of patient-view calls with
prefetch at 1, 10 and 50 concurrent clients, and prints p50/p99 latency and throughput
(also written to benchmarks/results/service.txt). The spec asks for answers "on the order of
500 ms".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def payload() -> dict[str, object]:
    from imnm import load_patient
    from imnm.fhir import to_bundle

    patient = load_patient((ROOT / "examples" / "lgmd-label-never-tested.json").read_text())
    resources = [e["resource"] for e in to_bundle(patient)["entry"]]

    def searchset(kind: str) -> dict[str, object]:
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": r} for r in resources if r["resourceType"] == kind]}

    person = next(r for r in resources if r["resourceType"] == "Patient")
    return {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/bench", "patientId": person["id"]},
            "prefetch": {"patient": person, "conditions": searchset("Condition"),
                         "observations": searchset("Observation"), "medications": None}}


async def run(url: str, body: dict[str, object], concurrency: int, total: int
              ) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue = list(range(total))
    async with httpx.AsyncClient(timeout=30) as client:
        async def worker() -> None:
            while queue:
                queue.pop()
                start = time.perf_counter()
                response = await client.post(url, json=body)
                latencies.append(time.perf_counter() - start)
                assert response.status_code == 200, response.status_code

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="calls per concurrency level")
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "imnm.cli", "serve", "--port", str(port),
                               "--insecure-development"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/knowledge", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        url = f"{base}/cds-services/imnm-patient-view"
        body = payload()
        asyncio.run(run(url, body, 1, 20))  # warm-up
        lines = [f"machine: {platform.platform()}, python {platform.python_version()}; one "
                 f"uvicorn worker; {args.requests} calls per level; payload "
                 f"{len(json.dumps(body)):,} bytes"]
        for concurrency in (1, 10, 50):
            latencies, elapsed = asyncio.run(run(url, body, concurrency, args.requests))
            ms = sorted(t * 1000 for t in latencies)
            lines.append(
                f"{concurrency:>3} concurrent: p50 {statistics.median(ms):7.1f} ms  "
                f"p99 {ms[int(0.99 * (len(ms) - 1))]:7.1f} ms  max {ms[-1]:7.1f} ms  "
                f"throughput {len(ms) / elapsed:6.1f} calls/s")
    finally:
        server.terminate()
        server.wait(timeout=10)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "service.txt").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
