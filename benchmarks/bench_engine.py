"""Benchmark the execution engine against a fake OpenAI-compatible server (and promptfoo).

Workload (issue #3): 1000 cases x 2 variants = 2000 calls, 100 ms server latency,
concurrency 16. The physical floor is 2000 x 0.1 s / 16 = 12.5 s.

The cold run is timed with both transports (``RunSettings.transport``): the
lean ``openai-compatible`` HTTP path and ``litellm`` (the default, ~6 ms of CPU
per call here). A bare aiohttp loop sending the same requests shows what the
fake server itself allows.

    .venv/bin/python benchmarks/bench_engine.py            # full run, prints a table
    .venv/bin/python benchmarks/bench_engine.py --quick    # 200 cases, no 100k run

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
    base_url: str, n: int, *, concurrency: int = CONCURRENCY, transport: str = "litellm"
) -> wb.Experiment:
    data = wb.Dataset.from_records([{"id": f"c{i:06d}", "text": f"case {i}"} for i in range(n)])
    params = {"api_base": base_url, "api_key": "sk-fake", "temperature": 0}
    variants = [wb.PromptVariant(name=f"v{i}", prompt=p, params=params) for i, p in enumerate(PROMPTS)]
    return wb.Experiment(
        name="bench",
        variants=variants,
        dataset=data,
        models=["openai/fake"],
        scorers=[wb.RegexMatch(pattern=r"^echo:[0-9a-f]{16}$")],
        settings=wb.RunSettings(max_concurrency=concurrency, transport=transport),
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
from bench_engine import make_experiment
# litellm's HTTP path costs ~8 ms of CPU a call here (200k calls: ~30 min), so the
# memory run injects a completion function returning a real litellm ModelResponse.
response = litellm.completion(model="openai/gpt-4o-mini", messages=[{{"role": "user", "content": "x"}}],
                              mock_response="echo:0123456789abcdef")
async def acompletion(**kwargs):
    await asyncio.sleep(0)
    return response
exp = make_experiment("http://127.0.0.1:9/v1", {n}, concurrency=64)
started = time.perf_counter()
result = exp.run(tracking_uri={uri!r}, progress=False, acompletion=acompletion)
elapsed = time.perf_counter() - started
assert len(result.cases) == {calls} and result.cases["error"].isna().all()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, elapsed)
"""


def memory_run(n: int, tmp: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall time of an n-case run (cache + MLflow on) in a fresh process."""
    env = {**os.environ, "WORKBENCH_CACHE": str(tmp / "mem-cache.sqlite")}
    script = MEMORY_SCRIPT.format(
        bench=str(Path(__file__).resolve().parent),
        n=n,
        uri=f"sqlite:///{tmp / 'mem-mlflow.db'}",
        calls=2 * n,
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    rss, elapsed = out.stdout.split()[-2:]
    return float(rss), float(elapsed)


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
    parser.add_argument("--quick", action="store_true", help="200 cases, skip the 100k memory run")
    args = parser.parse_args()
    n = 200 if args.quick else args.cases
    floor = 2 * n * LATENCY_S / CONCURRENCY
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
        # The engine alone: an in-process completion function that sleeps 100 ms and
        # returns a real litellm ModelResponse (no HTTP, no litellm request path).
        engine_s = engine_only(n, uri)
        rows.insert(1, ("workbench engine only (fake 100 ms completion)", f"{engine_s:.2f} s",
                        f"{floor / engine_s:.0%} of the floor: no HTTP at all"))  # fmt: skip
        if not args.quick:
            rss, elapsed = memory_run(args.memory_cases, tmp)
            rows.append((f"{args.memory_cases:,} cases x 2 variants, peak RSS", f"{rss:.0f} MB",
                         f"{elapsed:.0f} s, in-process fake completion, cache + MLflow on"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"\n{2 * n} calls ({n} cases x 2 variants), latency {LATENCY_S * 1000:.0f} ms, concurrency {CONCURRENCY}")
    print(f"{'measure':<{width}}  {'value':>9}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")


if __name__ == "__main__":
    main()
