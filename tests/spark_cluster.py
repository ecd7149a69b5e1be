"""A Spark standalone cluster on loopback for the tests: a master and two workers started
with the PySpark package's own launcher (bin/spark-class), each worker bounded to one core and
1 GiB, stopped (with every process it started) when the tests are done."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WORKERS = 2
WORKER_MEMORY = "1g"  # an executor's default memory: each worker runs one executor
DAEMON_MEMORY = "256m"  # the master's and the workers' own JVMs
WEB_UI: dict[str, str] = {}  # master URL -> its web UI, for tests that ask the master


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def cluster_environment() -> dict[str, str]:
    """What the cluster and its driver need: loopback only, and this Python for any Python
    worker an executor starts."""
    return os.environ | {"SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1",
                         "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
                         # the master's and workers' JVMs: C1 only, as the tests' drivers and
                         # executors (tests/spark-conf/spark-defaults.conf)
                         "SPARK_DAEMON_JAVA_OPTS": "-XX:TieredStopAtLevel=1",
                         "PYSPARK_PYTHON": sys.executable,
                         "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1"}


@contextmanager
def standalone_cluster(work: Path) -> Iterator[str]:
    """Start the cluster; yield its master URL (spark://127.0.0.1:PORT)."""
    launcher = str(spark_home() / "bin" / "spark-class")
    env = cluster_environment()
    port, ui = _free_port(), _free_port()
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [launcher, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))

    master = f"spark://127.0.0.1:{port}"
    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(port), "--webui-port", str(ui))
        for index in range(WORKERS):
            start(f"worker-{index}", "org.apache.spark.deploy.worker.Worker", master,
                  "--host", "127.0.0.1", "--cores", "1", "--memory", WORKER_MEMORY,
                  "--webui-port", str(_free_port()), "--work-dir", str(work / f"w{index}"))
        deadline = time.monotonic() + 120
        alive = 0
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/",
                                            timeout=2) as response:
                    alive = int(json.load(response).get("aliveworkers", 0))
            except (OSError, ValueError):  # not listening yet, or an empty page while
                alive = 0                      # the master's web UI starts (not JSON yet)
            if alive == WORKERS:
                break
            if any(p.poll() is not None for p in processes):
                break
            time.sleep(0.5)
        if alive != WORKERS:
            tail = "".join((logs / f).read_text(errors="replace")[-800:]
                           for f in sorted(os.listdir(logs)))
            raise RuntimeError(f"the Spark cluster did not start ({alive} workers): {tail}")
        WEB_UI[master] = f"http://127.0.0.1:{ui}"
        yield master
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
