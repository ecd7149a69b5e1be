"""Load and soak of the service and the clinic under mixed valid and hostile calls, on loopback.
Run by hand (bounded: a few minutes, one server process):

    .venv/bin/python benchmarks/soak.py [--seconds 180] [--clients 20]

Starts `imnm serve` as it is deployed (a token issuer from a JWKS file, a base URL, a SQLite
registry with the clinic, a 1 MiB body cap) and keeps ``--clients`` concurrent clients busy with
a mix of calls, each with the status it must get:

- valid patient-view calls with fresh RS384 tokens (200);
- forged, replayed and missing tokens, the last with a 2 MiB junk body (401);
- a valid token with a body over the cap (413);
- prefetch that is not FHIR: a Bundle nested 300 deep, an unknown resourceType (422);
- report links without a signature (403);
- the clinic: a page with a session (200), a cross-site POST with the session cookie (403),
  a login guess for an unknown user (401, or 429 once the address is throttled).

Prints, and writes to benchmarks/results/soak.txt: calls, unexpected answers (any 5xx counts),
p50/p99 per kind and overall, and the server's resident memory at start, peak and end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from machine import describe  # this folder's benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from service import payload  # noqa: E402 - the same prefetch as the latency benchmark

ISSUER = "https://ehr.bench.example"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(audience: str, key: Any = KEY) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300,
                       "jti": str(uuid.uuid4())}, key, algorithm="RS384",
                      headers={"kid": "bench"})


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Mix:
    """The calls, each a coroutine returning (kind, status, expected statuses)."""

    def __init__(self, base: str, client: httpx.AsyncClient, cookie: str, csrf: str) -> None:
        self.base, self.client, self.cookie, self.csrf = base, client, cookie, csrf
        self.hook = f"{base}/cds-services/imnm-patient-view"
        self.body = payload()
        nested: dict[str, Any] = {"resourceType": "Bundle", "type": "collection", "entry": []}
        for _ in range(300):
            nested = {"resourceType": "Bundle", "type": "collection",
                      "entry": [{"resource": nested}]}
        self.nested = json.dumps(self.body | {"prefetch": {**self.body["prefetch"],  # type: ignore[dict-item]
                                                           "observations": nested}})
        self.spaceship = self.body | {"prefetch": {**self.body["prefetch"],  # type: ignore[dict-item]
                                                   "conditions": {"resourceType": "Spaceship"}}}
        self.junk = b"{" * (2 * 1024 * 1024)
        self.replayed = token(self.hook)

    def auth(self, key: Any = KEY) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(self.hook, key)}"}

    async def call(self, kind: str) -> tuple[int, set[int]]:
        c = self.client
        if kind == "valid hook":
            r = await c.post(self.hook, json=self.body, headers=self.auth())
            return r.status_code, {200}
        if kind == "forged token":
            r = await c.post(self.hook, json=self.body, headers=self.auth(OTHER))
            return r.status_code, {401}
        if kind == "replayed token":
            r = await c.post(self.hook, json=self.body,
                             headers={"Authorization": f"Bearer {self.replayed}"})
            return r.status_code, {401, 200}  # the very first use is valid
        if kind == "no token, 2 MiB junk":
            r = await c.post(self.hook, content=self.junk,
                             headers={"content-type": "application/json"})
            return r.status_code, {401}
        if kind == "body over the cap":
            r = await c.post(self.hook, content=self.junk, headers={
                "content-type": "application/json"} | self.auth())
            return r.status_code, {413}
        if kind == "nested 300 deep":
            r = await c.post(self.hook, content=self.nested, headers={
                "content-type": "application/json"} | self.auth())
            return r.status_code, {422}
        if kind == "unknown resourceType":
            r = await c.post(self.hook, json=self.spaceship, headers=self.auth())
            return r.status_code, {422}
        if kind == "unsigned report link":
            r = await c.get(f"{self.base}/reports/{uuid.uuid4()}")
            return r.status_code, {403}
        if kind == "clinic page":
            r = await c.get(f"{self.base}/patients", cookies={"imnm_session": self.cookie})
            return r.status_code, {200}
        if kind == "cross-site POST":
            r = await c.post(f"{self.base}/patients/new", data={"id": "x", "csrf": self.csrf},
                             cookies={"imnm_session": self.cookie},
                             headers={"Origin": "http://evil.example"})
            return r.status_code, {403}
        if kind == "login guess":
            async with httpx.AsyncClient(timeout=60) as guesser:  # its own cookie jar
                login = await guesser.get(f"{self.base}/login")
                found = re.search(r'name="csrf" value="([^"]+)"', login.text)
                r = await guesser.post(f"{self.base}/login", data={
                    "username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "guess",
                    "csrf": found.group(1) if found else ""})
            return r.status_code, {401, 429}
        raise ValueError(kind)


KINDS = {"valid hook": 8, "forged token": 1, "replayed token": 1, "no token, 2 MiB junk": 1,
         "body over the cap": 1, "nested 300 deep": 1, "unknown resourceType": 1,
         "unsigned report link": 1, "clinic page": 2, "cross-site POST": 1, "login guess": 1}


async def soak(base: str, seconds: float, clients: int, pid: int) -> dict[str, Any]:
    latencies: dict[str, list[float]] = defaultdict(list)
    unexpected: dict[str, int] = defaultdict(int)
    memory = [rss_kib(pid)]
    async with httpx.AsyncClient(timeout=60) as client:
        login = await client.get(f"{base}/login")
        found = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert found is not None
        response = await client.post(f"{base}/login", cookies=dict(login.cookies), data={
            "username": "bench", "password": "bench password", "csrf": found.group(1)})
        cookie = response.cookies.get("imnm_session") or ""
        page = await client.get(f"{base}/patients", cookies={"imnm_session": cookie})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert cookie and csrf is not None, "could not log in to the clinic"
        mix = Mix(base, client, cookie, csrf.group(1))
        kinds = [k for k, weight in KINDS.items() for _ in range(weight)]
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                kind = random.choice(kinds)  # noqa: S311 - a load mix, not a secret
                start = time.perf_counter()
                try:
                    status, expected = await mix.call(kind)
                except httpx.HTTPError:
                    status, expected = -1, set()
                latencies[kind].append(time.perf_counter() - start)
                if status not in expected or status >= 500:
                    unexpected[f"{kind}: {status}"] += 1

        async def sample() -> None:
            while time.monotonic() < deadline:
                await asyncio.sleep(5)
                memory.append(rss_kib(pid))

        await asyncio.gather(sample(), *(worker() for _ in range(clients)))
    memory.append(rss_kib(pid))
    return {"latencies": latencies, "unexpected": unexpected, "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        jwks = Path(folder) / "jwks.json"
        jwks.write_text(json.dumps({"keys": [json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
                                             | {"kid": "bench", "alg": "RS384"}]}))
        url = f"sqlite:///{folder}/registry.db"
        subprocess.run([sys.executable, "-m", "imnm.cli", "registry", "init", "--url", url],
                       check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "imnm.cli", "registry", "add-user", "--url", url,
                        "bench", "--role", "clinician", "--password-stdin"],
                       input="bench password\n", text=True, check=True, capture_output=True)
        server = subprocess.Popen(
            [sys.executable, "-m", "imnm.cli", "serve", "--port", str(port), "--base-url", base,
             "--issuer", f"{ISSUER}={jwks}", "--registry", url, "--max-body-mb", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/knowledge", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            result = asyncio.run(soak(base, args.seconds, args.clients, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=20)
    every = sorted(t * 1000 for ts in result["latencies"].values() for t in ts)
    calls = len(every)
    bad = sum(result["unexpected"].values())
    memory = result["memory"]
    lines = [f"{describe()}, "
             f"{args.clients} clients for {args.seconds:.0f} s, one uvicorn worker, "
             "SQLite registry, 1 MiB body cap",
             f"calls {calls:,} ({calls / args.seconds:.0f}/s); unexpected answers {bad} "
             f"(5xx included); p50 {statistics.median(every):.1f} ms, "
             f"p99 {every[int(0.99 * (calls - 1))]:.1f} ms",
             f"server memory (RSS): start {memory[0] / 1024:.0f} MiB, peak "
             f"{max(memory) / 1024:.0f} MiB, end {memory[-1] / 1024:.0f} MiB"]
    for kind, times in sorted(result["latencies"].items()):
        ms = sorted(t * 1000 for t in times)
        lines.append(f"  {kind:<22} {len(ms):>6} calls  p50 {statistics.median(ms):7.1f} ms  "
                     f"p99 {ms[int(0.99 * (len(ms) - 1))]:7.1f} ms")
    for what, count in sorted(result["unexpected"].items()):
        lines.append(f"  UNEXPECTED {what} x{count}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "soak.txt").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
