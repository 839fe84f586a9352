"""Logging throughput: 8 concurrent writers into SQLite vs the PostgreSQL-backed team server.

Each writer is a process of its own running ``tests/team_server_job.py``: one experiment of
``--cases`` cases x 2 variants on litellm's ``mock_response`` (no network, no delay), logged
to MLflow with everything a workbench run logs (parent and child runs, params, metrics,
``cases.json`` tables, ``run/cases.parquet``, ``charts.html``, registered prompts). All 8
start at once, against

- ``sqlite``: one local SQLite store (``sqlite:///.../mlflow.db``), artifacts on disk, as a
  laptop logs by default;
- ``team server``: ``workbench server`` (PostgreSQL 15, ``mlflow server --app-name basic-auth``,
  2 workers, artifacts proxied), on 127.0.0.1, with a user's credentials.

Printed per target: the wall time until the last writer is done (process start and imports
included), runs per second and result rows per second over that wall time, and the median of
the writers' own run time (``exp.run()`` alone: calls, scoring and logging).

    .venv/bin/python benchmarks/bench_team_server.py [--cases 200] [--writers 8]

Needs PostgreSQL's initdb (Debian: ``apt-get install postgresql``); runs as root or not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.server import Accounts, TeamServer  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def writers(env: dict[str, str], work: Path, *, n: int, cases: int, name: str) -> dict[str, float]:
    """Start ``n`` writers at once; wall time, runs/s, rows/s, median in-process run time."""
    jobs = []
    started = time.perf_counter()
    for i in range(n):
        run_env = {**env, "WORKBENCH_RUNS": str(work / f"runs{i}"), "WORKBENCH_CACHE": str(work / f"cache{i}.db")}
        command = [sys.executable, str(ROOT / "tests" / "team_server_job.py"), name, "--cases", str(cases)]
        jobs.append(subprocess.Popen(command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [job.communicate() for job in jobs]
    wall = time.perf_counter() - started
    for job, (_, err) in zip(jobs, outputs, strict=True):
        if job.returncode != 0:
            raise SystemExit(f"a writer failed:\n{err[-3000:]}")
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    rows = sum(r["rows"] for r in reports)
    return {
        "wall_s": wall,
        "runs_per_s": n / wall,
        "rows_per_s": rows / wall,
        "median_run_s": statistics.median(r["seconds"] for r in reports),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    base.update(OPENAI_API_KEY="sk-bench-FAKE-KEY-000000000000", PYTHONPATH=str(ROOT))
    root = Path(tempfile.mkdtemp(prefix="wb-bench-", dir="/tmp"))
    root.chmod(0o755)  # the postgres user must reach pgdata/ when this runs as root
    results = {}
    server = TeamServer(root / "server", port=_free_port(), pg_port=_free_port())
    try:
        sqlite_env = {**base, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'sqlite' / 'mlflow.db'}"}
        (root / "sqlite").mkdir()
        # The store is made before timing starts (a user's store already exists).
        subprocess.run(
            [sys.executable, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"],
            env=sqlite_env,
            check=True,
        )
        results["sqlite (one local file)"] = writers(
            sqlite_env, root / "w-sqlite", n=args.writers, cases=args.cases, name="bench"
        )
        started = time.perf_counter()
        server.start()
        print(f"team server started in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        password = "bench-" + os.urandom(8).hex()
        Accounts(server.url, server.admin, server.secrets()["MLFLOW_AUTH_ADMIN_PASSWORD"]).add_user("bench", password)
        server_env = {
            **base,
            "MLFLOW_TRACKING_URI": server.url,
            "MLFLOW_TRACKING_USERNAME": "bench",
            "MLFLOW_TRACKING_PASSWORD": password,
        }
        results["team server (PostgreSQL, basic auth)"] = writers(
            server_env, root / "w-server", n=args.writers, cases=args.cases, name="bench"
        )
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.writers} concurrent writers, each {args.cases} cases x 2 variants ({os.cpu_count()} cores)\n")
    print("| target | wall | runs/s | rows/s | median run (in process) |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        rates = f"{r['runs_per_s']:.3f} | {r['rows_per_s']:.1f}"
        print(f"| {name} | {r['wall_s']:.1f} s | {rates} | {r['median_run_s']:.1f} s |")


if __name__ == "__main__":
    main()
