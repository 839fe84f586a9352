"""Benchmark the Ray executor: one process vs Ray with 2 workers, on this machine.

Three workloads, each run once in this process and once with ``RayExecutor(workers=2)`` on a
local Ray cluster (2 CPUs, 127.0.0.1, started before timing; its start is printed apart):

- ``remote``: N cases x 2 variants against the fake OpenAI server (its own process) at
  100 ms latency, ``max_concurrency=16``, the openai-compatible transport: the calls wait on
  the network, so one process is already enough; Ray adds its overhead.
- ``heavy-scorer``: the same calls, plus a CPU-bound scorer (~``--score-ms`` of pure Python per
  row): one process scores on one core, Ray on two.
- ``local-model`` (``--local``): ``local/gemma-3-270m`` on M cases (each worker loads its own
  copy once; llama.cpp already uses both cores in one process).

The **per-worker overhead** is the wall time of a 1-case Ray run (starting 2 worker
processes that import the workbench, and shutting them down). Nothing is cached, nothing is
logged to MLflow. The machine is shared: the load average is printed with the table.

    .venv/bin/python benchmarks/bench_ray.py               # remote + heavy-scorer, 400 cases
    .venv/bin/python benchmarks/bench_ray.py --local 20    # and 20 local-model cases
    .venv/bin/python benchmarks/bench_ray.py --cases 0 --local 10   # only the local model
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WORKBENCH_RUNS", tempfile.mkdtemp(prefix="bench-ray-runs-"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_process import ServerProcess  # noqa: E402

import workbench as wb  # noqa: E402

LATENCY_S = 0.1
CONCURRENCY = 16


def burn(outputs: str) -> float:
    """A CPU-bound scorer: SCORE_MS milliseconds of hashing (pure Python, holds the GIL)."""
    deadline = time.process_time() + float(os.environ["BENCH_SCORE_MS"]) / 1000
    digest = outputs.encode()
    while time.process_time() < deadline:
        digest = hashlib.sha256(digest).digest()
    return float(digest[0] % 2)


def experiment(n: int, *, base_url: str | None, heavy: bool, model: str) -> wb.Experiment:
    params: dict[str, object] = {"temperature": 0}
    params.update({"api_base": base_url, "api_key": "sk-fake"} if base_url else {"max_tokens": 8})
    return wb.Experiment(
        name="bench-ray",
        variants=[
            wb.PromptVariant(name="a", prompt="Echo this: {{ text }}", params=params),
            wb.PromptVariant(name="b", prompt="Please repeat: {{ text }}", params=params),
        ],
        dataset=wb.Dataset.from_records([{"id": f"c{i:05d}", "text": f"case number {i}"} for i in range(n)]),
        models=[model],
        scorers=[wb.scorer(burn)] if heavy else [],
        settings=wb.RunSettings(max_concurrency=CONCURRENCY, transport="openai-compatible"),
    )


def timed(exp: wb.Experiment, executor: wb.RayExecutor | None) -> tuple[float, wb.ExperimentResult]:
    started = time.perf_counter()
    result = exp.run(log_to_mlflow=False, progress=False, cache=False, executor=executor)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=400, help="cases for the remote workloads (0: skip them)")
    parser.add_argument("--score-ms", type=float, default=20.0)
    parser.add_argument("--local", type=int, default=0, help="cases for the local-model workload (0: skip it)")
    args = parser.parse_args()
    os.environ["BENCH_SCORE_MS"] = str(args.score_ms)  # workers inherit it

    import ray

    started = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")  # fmt: skip
    print(f"ray.init (local cluster, 2 CPUs): {time.perf_counter() - started:.1f} s")
    ray_2 = wb.RayExecutor(workers=2)
    rows: list[tuple[str, int, float, float]] = []
    with ServerProcess(latency_s=LATENCY_S) as server:
        overhead, _ = timed(experiment(1, base_url=server.base_url, heavy=False, model="openai/fake"), ray_2)
        print(f"per-run overhead of 2 Ray workers (a 1-case run): {overhead:.1f} s")
        for name, heavy in (("remote", False), ("heavy-scorer", True)) if args.cases else ():
            exp = experiment(args.cases, base_url=server.base_url, heavy=heavy, model="openai/fake")
            one, local = timed(exp, None)
            two, sharded = timed(exp, ray_2)
            assert sharded.cases["output"].tolist() == local.cases["output"].tolist()
            rows.append((name, exp.n_calls, one, two))
    if args.local:
        exp = experiment(args.local, base_url=None, heavy=False, model="local/gemma-3-270m")
        timed(exp.with_overrides(limit=1), None)  # load the model in this process first
        one, local = timed(exp, None)
        two, sharded = timed(exp, ray_2)
        assert sharded.cases["output"].tolist() == local.cases["output"].tolist()
        rows.append(("local-model", exp.n_calls, one, two))
    load = os.getloadavg()
    print(f"\nload average (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print(f"{'workload':<14} {'calls':>6} {'1 process s':>12} {'Ray 2 workers s':>16} {'speed-up':>9}")
    for name, calls, one, two in rows:
        print(f"{name:<14} {calls:>6} {one:>12.1f} {two:>16.1f} {one / two:>8.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
