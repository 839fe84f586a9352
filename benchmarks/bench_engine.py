"""Benchmark the execution engine against a fake OpenAI-compatible server (and promptfoo).

Workload (issue #3): 1000 cases x 2 variants = 2000 calls, 100 ms server latency,
concurrency 16. The physical floor is 2000 x 0.1 s / 16 = 12.5 s.

The cold run is timed with both transports (``RunSettings.transport``): the
lean ``openai-compatible`` HTTP path and ``litellm`` (the default, ~6 ms of CPU
per call here). A bare aiohttp loop sending the same requests shows what the
fake server itself allows.

    .venv/bin/python benchmarks/bench_engine.py            # full run, prints a table
    .venv/bin/python benchmarks/bench_engine.py --quick    # 200 cases, no memory runs
    .venv/bin/python benchmarks/bench_engine.py --memory   # only the memory runs (100k x 2, 1M x 1)
    .venv/bin/python benchmarks/bench_engine.py --traces   # only traces off / on, side by side

The memory runs each start a fresh process that loads the cases from a CSV file
(``Dataset.load``) and runs them on an in-process fake completion; they print the
peak RSS, the wall time (load and run) and rows per second; a run with MLflow on also starts
the trace writer process (its first 2,000 calls are traced), whose peak RSS is printed apart.
The 100k x 2 run logged to
MLflow is then reopened with ``wb.load_run`` in another fresh process (nothing local, so
its files are downloaded) and compared: seconds for each. A run whose RSS passes
``--rss-limit-mb`` is stopped and reported as such. ``PYTHONPATH`` chooses the
workbench they import, so two checkouts can be measured with the same script.

The traces rows run, after one warm-up run (imports, first store), the same cold run
(``openai-compatible`` transport, a fresh cache and store each time) with MLflow traces off,
on without assessments and on (the default: traces, and scores as assessments), in turn,
``--trace-rounds`` times; each row is the median, the overhead is against the median with
traces off. The machine's load (1-minute average) is printed with them. These runs trace
2,000 calls, so the trace writer is a process of its own (``workbench/tracking/trace_store.py``).

The server runs in its own process. MLflow logs to a fresh SQLite store that is
created before timing starts (a user's store already exists). promptfoo runs on the
same server, cases and concurrency when it is installed
(``npm install --prefix benchmarks promptfoo@0.121``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_process import ServerProcess  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.engine.cache import ResponseCache  # noqa: E402

LATENCY_S = 0.1
CONCURRENCY = 16
PROMPTS = ["Echo this: {{ text }}", "Please repeat: {{ text }}"]


def make_experiment(
    base_url: str,
    n: int,
    *,
    concurrency: int = CONCURRENCY,
    transport: str = "litellm",
    dataset: wb.Dataset | None = None,
    variants: int = len(PROMPTS),
    traces: bool = True,
) -> wb.Experiment:
    data = dataset or wb.Dataset.from_records([{"id": f"c{i:06d}", "text": f"case {i}"} for i in range(n)])
    params = {"api_base": base_url, "api_key": "sk-fake", "temperature": 0}
    prompts = PROMPTS[:variants]
    variants_ = [wb.PromptVariant(name=f"v{i}", prompt=p, params=params) for i, p in enumerate(prompts)]
    return wb.Experiment(
        name="bench",
        variants=variants_,
        dataset=data,
        models=["openai/fake"],
        scorers=[wb.RegexMatch(pattern=r"^echo:[0-9a-f]{16}$")],
        settings=wb.RunSettings(max_concurrency=concurrency, transport=transport, traces=traces),
    )


def timed_run(exp: wb.Experiment, uri: str, cache: Path) -> tuple[float, wb.ExperimentResult]:
    started = time.perf_counter()
    result = exp.run(tracking_uri=uri, progress=False, cache=ResponseCache(cache))
    return time.perf_counter() - started, result


def raw_aiohttp(base_url: str, n: int) -> float:
    """Wall time of the same requests from a bare aiohttp loop: what this server allows at best."""
    import asyncio
    import json

    import aiohttp

    async def main() -> float:
        limit = asyncio.Semaphore(CONCURRENCY)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(prompt: str, i: int) -> None:
                body = {
                    "model": "fake",
                    "messages": [{"role": "user", "content": prompt.replace("{{ text }}", f"raw {i}")}],
                }
                async with limit, session.post(f"{base_url}/chat/completions", data=json.dumps(body)) as response:
                    assert response.status == 200, await response.text()
                    await response.json()

            started = time.perf_counter()
            await asyncio.gather(*(one(p, i) for i in range(n) for p in PROMPTS))
            return time.perf_counter() - started

    return asyncio.run(main())


MEMORY_SCRIPT = """
import asyncio, resource, sys, time
sys.path.insert(0, {bench!r})
import litellm
import workbench as wb
from bench_engine import make_experiment
# litellm's HTTP path costs ~8 ms of CPU a call here (200k calls: ~30 min), so the
# memory run injects a completion function returning a real litellm ModelResponse.
response = litellm.completion(model="openai/gpt-4o-mini", messages=[{{"role": "user", "content": "x"}}],
                              mock_response="echo:0123456789abcdef")
async def acompletion(**kwargs):
    await asyncio.sleep(0)
    return response
started = time.perf_counter()
dataset = wb.Dataset.load({data!r})
exp = make_experiment("http://127.0.0.1:9/v1", {n}, concurrency=64, dataset=dataset, variants={variants})
result = exp.run(log_to_mlflow={mlflow}, tracking_uri={uri!r}, progress=False, acompletion=acompletion)
elapsed = time.perf_counter() - started
rows = int(result.summary["n"].sum())  # not len(result.cases): that would read every row back
assert rows == {calls} and int(result.summary["errors"].sum()) == 0
print(result.run_id, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, elapsed, rows)
"""

# Reopen a logged run in a fresh process with nothing local (download included), then compare.
LOAD_SCRIPT = """
import resource, time
import workbench as wb
started = time.perf_counter()
result = wb.load_run({run_id!r}, tracking_uri={uri!r})
opened = time.perf_counter() - started
started = time.perf_counter()
verdict = result.compare().verdicts[0]
compared = time.perf_counter() - started
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, opened, compared)
"""


@dataclass(frozen=True)
class MemoryRun:
    """What one memory run measured; ``stopped`` when its RSS passed the limit first."""

    peak_mb: float
    wall_s: float
    rows: int
    stopped: bool = False
    run_id: str | None = None
    #: Peak RSS of the run's own child processes (the MLflow trace writer), sampled every 0.2 s.
    children_peak_mb: float = 0.0


def write_cases(n: int, tmp: Path) -> Path:
    """The benchmark's n cases as a CSV file (what a user's golden set or traffic dump is)."""
    path = tmp / f"cases-{n}.csv"
    if not path.exists():
        with path.open("w") as handle:
            handle.write("id,text\n")
            handle.writelines(f"c{i:07d},case {i}\n" for i in range(n))
    return path


def memory_run(
    n: int, tmp: Path, *, variants: int = 2, mlflow: bool = True, rss_limit_mb: float = 4000, pii: bool = True
) -> MemoryRun:
    """Peak RSS (MB), wall time and rows of an n-case run (cache on) in a fresh process.

    ``pii=False`` turns the redaction chain's PII link off (a ``pii.yaml`` with ``enabled: false``).
    """
    label = f"{n}-{variants}-{'mlflow' if mlflow else 'plain'}-{'pii' if pii else 'nopii'}"
    cache = tmp / f"mem-cache-{label}.sqlite"  # every run starts cold
    env = {**os.environ, "WORKBENCH_CACHE": str(cache), "WORKBENCH_RUNS": str(tmp / "runs")}
    if not pii:
        config = tmp / "pii-off.yaml"
        config.write_text("enabled: false\n")
        env["WORKBENCH_PII_CONFIG"] = str(config)
    script = MEMORY_SCRIPT.format(
        bench=str(Path(__file__).resolve().parent),
        data=str(write_cases(n, tmp)),
        n=n,
        variants=variants,
        mlflow=mlflow,
        uri=f"sqlite:///{tmp / 'mem-mlflow.db'}",
        calls=variants * n,
    )
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = children_peak = 0.0
    while child.poll() is None:
        peak = max(peak, _rss_mb(child.pid))
        children_peak = max(children_peak, sum(_rss_mb(pid) for pid in _children(child.pid)))
        if peak > rss_limit_mb:
            child.kill()
            child.wait()
            return MemoryRun(peak, time.perf_counter() - started, 0, stopped=True)
        time.sleep(0.2)
    out, err = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(err.decode()[-3000:])
    run_id, rss, elapsed, rows = out.decode().split()[-4:]
    run_id_ = None if run_id == "None" else run_id
    return MemoryRun(float(rss), float(elapsed), int(rows), run_id=run_id_, children_peak_mb=children_peak)


def load_run_timing(run_id: str, tmp: Path) -> tuple[float, float, float]:
    """Peak RSS (MB), seconds to reopen ``run_id`` (download included) and to compare its variants."""
    env = {**os.environ, "WORKBENCH_RUNS": str(tmp / "fresh-runs")}
    script = LOAD_SCRIPT.format(run_id=run_id, uri=f"sqlite:///{tmp / 'mem-mlflow.db'}")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=True, timeout=1800)
    rss, opened, compared = out.stdout.decode().split()[-3:]
    return float(rss), float(opened), float(compared)


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux: ``/proc/<pid>/task/*/children``)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1]) / 1024


def memory_rows(tmp: Path, *, cases: int, million: int, rss_limit_mb: float) -> list[tuple[str, str, str]]:
    """The memory table: 100k x 2 with MLflow on and off, and 1M x 1 with MLflow on and off,
    after the floor: the same run on 1,000 cases, where the peak is the stack's fixed cost
    (imports, MLflow's SQL store, the PII analyzer, plotly), not the data's."""
    floor = memory_run(1000, tmp, variants=2, mlflow=True, rss_limit_mb=rss_limit_mb)
    rows = [("1,000 cases x 2 variants, MLflow on, peak RSS (the floor)", f"{floor.peak_mb:.0f} MB", "fixed cost")]
    for n, variants in ((cases, 2), (million, 1)):
        for mlflow in (True, False):
            run = memory_run(n, tmp, variants=variants, mlflow=mlflow, rss_limit_mb=rss_limit_mb)
            label = f"{n:,} cases x {variants} variant{'s' if variants > 1 else ''}, MLflow {'on' if mlflow else 'off'}"
            if run.stopped:
                rows.append((f"{label}, peak RSS", f"> {rss_limit_mb:.0f} MB", f"stopped after {run.wall_s:.0f} s"))
                continue
            rate = run.rows / run.wall_s
            note = f"{run.wall_s:.0f} s, {rate:,.0f} rows/s; in-process fake completion, cache on, load included"
            if run.children_peak_mb:
                note += f"; its trace writer process: {run.children_peak_mb:.0f} MB more at peak"
            rows.append((f"{label}, peak RSS", f"{run.peak_mb:.0f} MB", note))
            if variants == 2 and mlflow and run.run_id:
                rss, opened, compared = load_run_timing(run.run_id, tmp)
                note = f"download + open; then result.compare() {compared:.1f} s; peak RSS {rss:.0f} MB"
                rows.append(("  wb.load_run of that run (fresh process)", f"{opened:.1f} s", note))
    return rows


def traces_rows(base_url: str, n: int, tmp: Path, *, rounds: int) -> list[tuple[str, str, str]]:
    """Cold runs with traces off, on without assessments and on, interleaved; medians and overheads."""
    import statistics

    from workbench.tracking import traces as tracing

    feedback = tracing.TraceWriter._feedback
    kinds = ("off", "on, no assessments", "on")
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    flushes: dict[str, list[float]] = {k: [] for k in kinds}
    loads = []
    from mlflow.tracking import MlflowClient

    warm = f"sqlite:///{tmp / 'traces-warm-up.db'}"
    MlflowClient(warm).search_experiments()
    timed_run(make_experiment(base_url, n, transport="openai-compatible"), warm, tmp / "cache-traces-warm-up.sqlite")
    for i in range(rounds):
        for kind in kinds:
            exp = make_experiment(base_url, n, transport="openai-compatible", traces=kind != "off")
            tracing.TraceWriter._feedback = feedback if kind == "on" else (lambda self, row: [])  # type: ignore[method-assign]
            uri = f"sqlite:///{tmp / f'traces-{i}-{kinds.index(kind)}.db'}"
            MlflowClient(uri).search_experiments()  # create the store before timing
            loads.append(os.getloadavg()[0])
            wall, result = timed_run(exp, uri, tmp / f"cache-traces-{i}-{kinds.index(kind)}.sqlite")
            walls[kind].append(wall)
            flushes[kind].append(result.timings.get("traces_flush_s", 0.0))
    tracing.TraceWriter._feedback = feedback  # type: ignore[method-assign]
    base = statistics.median(walls["off"])
    rows = []
    for kind in kinds:
        wall = statistics.median(walls[kind])
        note = f"median of {rounds}: {', '.join(f'{w:.2f}' for w in walls[kind])} s"
        if kind != "off":
            note += (
                f"; overhead {wall - base:+.2f} s ({(wall - base) / base:+.1%}); "
                f"waiting for the trace writer after the calls {statistics.median(flushes[kind]):.2f} s"
            )
        rows.append((f"cold run, traces {kind}", f"{wall:.2f} s", note))
    rows.append(("  machine load (1-min average) during them", f"{statistics.median(loads):.1f}",
                 f"min {min(loads):.1f}, max {max(loads):.1f}, {os.cpu_count()} cores"))  # fmt: skip
    return rows


def engine_only(n: int, uri: str) -> float:
    import asyncio

    import litellm

    response = litellm.completion(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}], mock_response="echo:0123456789abcdef"
    )

    async def acompletion(**kwargs: object) -> object:
        await asyncio.sleep(LATENCY_S)
        return response

    exp = make_experiment("http://127.0.0.1:9/v1", n)
    started = time.perf_counter()
    exp.run(tracking_uri=uri, progress=False, cache=False, acompletion=acompletion)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--memory-cases", type=int, default=100_000)
    parser.add_argument("--million-cases", type=int, default=1_000_000)
    parser.add_argument("--rss-limit-mb", type=float, default=4000, help="stop a memory run past this RSS")
    parser.add_argument("--quick", action="store_true", help="200 cases, skip the memory runs")
    parser.add_argument("--memory", action="store_true", help="only the memory runs")
    parser.add_argument("--traces", action="store_true", help="only the traces off / on runs")
    parser.add_argument("--trace-rounds", type=int, default=2, help="runs of each traces setting")
    args = parser.parse_args()
    if args.memory:
        with tempfile.TemporaryDirectory() as tmp_dir:
            table = memory_rows(
                Path(tmp_dir), cases=args.memory_cases, million=args.million_cases, rss_limit_mb=args.rss_limit_mb
            )
        print_table(table)
        return
    n = 200 if args.quick else args.cases
    floor = 2 * n * LATENCY_S / CONCURRENCY
    if args.traces:
        with tempfile.TemporaryDirectory() as tmp_dir, ServerProcess(latency_s=LATENCY_S) as server:
            table = traces_rows(server.base_url, n, Path(tmp_dir), rounds=args.trace_rounds)
        print(f"\n{2 * n} calls ({n} cases x 2 variants), latency {LATENCY_S * 1000:.0f} ms, concurrency {CONCURRENCY}")
        print_table(table)
        return
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        from mlflow.tracking import MlflowClient

        MlflowClient(uri).search_experiments()  # create the store before timing
        with ServerProcess(latency_s=LATENCY_S) as server:
            raw_s = raw_aiohttp(server.base_url, n)
            for transport in ("openai-compatible", "litellm"):
                exp = make_experiment(server.base_url, n, transport=transport)
                before = server.stats().requests
                cold_s, cold = timed_run(exp, uri, tmp / f"cache-{transport}.sqlite")
                sent_cold = server.stats().requests - before
                assert cold.cases["error"].isna().all() and (cold.cases["score.regex_match"] == 1).all()
                mlflow_s = cold.timings["mlflow_s"]
                rows += [
                    (f"workbench cold run, transport={transport}", f"{cold_s:.2f} s",
                     f"{floor / cold_s:.0%} of the {floor:.1f} s floor; {sent_cold} requests, with MLflow"),
                    ("  of which MLflow logging", f"{mlflow_s:.2f} s", f"{mlflow_s / cold_s:.1%} of the cold run"),
                ]  # fmt: skip
                if transport == "openai-compatible":
                    before = server.stats().requests
                    warm_s, _ = timed_run(exp, uri, tmp / f"cache-{transport}.sqlite")
                    sent_warm = server.stats().requests - before
                    rows.append(
                        ("workbench cached re-run", f"{warm_s:.2f} s", f"{sent_warm} requests reached the server")
                    )
            rows.insert(0, ("bare aiohttp loop, same requests (no engine)", f"{raw_s:.2f} s",
                            f"{floor / raw_s:.0%} of the floor: the fake server's own overhead"))  # fmt: skip
            try:
                from promptfoo_runner import promptfoo_available, run_promptfoo
            except ImportError:
                promptfoo_available = None  # type: ignore[assignment]
            if promptfoo_available is not None and promptfoo_available():
                cases = [{"text": f"case {i}"} for i in range(n)]
                prompts = [p.replace("{{ text }}", "{{text}}") for p in PROMPTS]
                for label, use_cache in (("cold", False), ("cached", True)):
                    if use_cache:
                        run_promptfoo(
                            server.base_url, prompts, cases, concurrency=CONCURRENCY, workdir=tmp / "pf", cache=True
                        )  # fmt: skip  (fill the cache)
                    before = server.stats().requests
                    out = run_promptfoo(server.base_url, prompts, cases, concurrency=CONCURRENCY,
                                        workdir=tmp / "pf", cache=use_cache)  # fmt: skip
                    sent = server.stats().requests - before
                    rows.append((f"promptfoo 0.121 {label}", f"{out['wall_s']:.2f} s", f"{sent} requests"))
            else:
                rows.append(("promptfoo", "not run", "install: npm install --prefix benchmarks promptfoo@0.121"))
            rows += traces_rows(server.base_url, n, tmp, rounds=args.trace_rounds)
        # The engine alone: an in-process completion function that sleeps 100 ms and
        # returns a real litellm ModelResponse (no HTTP, no litellm request path).
        engine_s = engine_only(n, uri)
        rows.insert(1, ("workbench engine only (fake 100 ms completion)", f"{engine_s:.2f} s",
                        f"{floor / engine_s:.0%} of the floor: no HTTP at all"))  # fmt: skip
        if not args.quick:
            rows += memory_rows(
                tmp, cases=args.memory_cases, million=args.million_cases, rss_limit_mb=args.rss_limit_mb
            )
    print(f"\n{2 * n} calls ({n} cases x 2 variants), latency {LATENCY_S * 1000:.0f} ms, concurrency {CONCURRENCY}")
    print_table(rows)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>9}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")


if __name__ == "__main__":
    main()
