"""What stopping early (``exp.run(stop_early=wb.Sequential(...))``) costs and saves.

Two parts, each printed as a table:

1. Simulation: thousands of experiments of paired pass/fail outcomes, run through the
   same :meth:`SequentialDesign.assess` a live run uses (5 looks, alpha 0.05). Under A/A
   (both variants right 70% of the time) it is the false-positive rate, which must stay at
   alpha however often the run looks; under a true 10-point difference (60% -> 70%) it is
   the power, how often the run stopped before the full sample, and the share of calls saved.
2. One real engine run per scenario with an in-process fake completion (20 ms a call,
   concurrency 16, no network, no MLflow, no cache): calls planned against calls made.

    .venv/bin/python benchmarks/sequential.py            # 20,000 simulated experiments per row
    .venv/bin/python benchmarks/sequential.py --quick    # 2,000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import zlib

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import workbench as wb  # noqa: E402
from workbench.analysis.group_sequential import BENEFIT, FUTILITY, HARM, SequentialDesign  # noqa: E402

LOOKS = 5
ALPHA = 0.05
MDD = 0.10
SCENARIOS = {"A/A (70% vs 70%)": (0.7, 0.7), "+10 pts (60% vs 70%)": (0.6, 0.7)}
LATENCY_S = 0.02


def simulate(n_cases: int, p_baseline: float, p_candidate: float, experiments: int, seed: int) -> dict[str, float]:
    """Rates over ``experiments`` simulated runs, drawn in chunks to bound memory."""
    design = SequentialDesign.plan(n_cases, alpha=ALPHA, looks=LOOKS, min_cases=None, min_detectable_diff=MDD)
    rng = np.random.default_rng(seed)
    decisions, used = [], []
    chunk = max(1, 4_000_000 // n_cases)
    for start in range(0, experiments, chunk):
        size = min(chunk, experiments - start)
        a = rng.random((size, n_cases)) < p_baseline
        b = rng.random((size, n_cases)) < p_candidate
        replay = design.replay(b.astype(float) - a.astype(float))
        decisions.append(replay.decision)
        used.append(replay.cases_used)
    decision, cases_used = np.concatenate(decisions), np.concatenate(used)
    return {
        "benefit or harm": float(np.isin(decision, [BENEFIT, HARM]).mean()),
        "benefit": float((decision == BENEFIT).mean()),
        "futility": float((decision == FUTILITY).mean()),
        "stopped early": float((cases_used < n_cases).mean()),
        "calls saved": float(1 - cases_used.mean() / n_cases),
    }


def engine_run(n_cases: int, p_baseline: float, p_candidate: float) -> tuple[wb.ExperimentResult, float]:
    """One run of the engine on a fake completion whose variants are right with these rates."""
    import litellm

    replies = {
        label: litellm.completion(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}], mock_response=label
        )
        for label in ("positive", "negative")
    }
    labels = ["positive", "negative"]
    data = wb.Dataset.from_records(
        [{"id": f"c{i:05d}", "text": f"review {i}", "label": labels[i % 2]} for i in range(n_cases)],
        expected=["label"],
    )
    variants = [
        wb.PromptVariant(name=name, system=name, prompt="{{ text }}", params={"temperature": 0})
        for name in ("baseline", "candidate")
    ]

    async def acompletion(*, messages: list[dict[str, str]], **kwargs: object) -> object:
        await asyncio.sleep(LATENCY_S)
        variant, text = messages[0]["content"], messages[-1]["content"]
        truth = labels[int(text.split()[-1]) % 2]
        rate = p_candidate if variant == "candidate" else p_baseline
        right = zlib.crc32(f"{variant}|{text}".encode()) % 1000 < rate * 1000
        return replies[truth if right else labels[1 - labels.index(truth)]]

    exp = wb.Experiment(
        name="sequential-bench",
        variants=variants,
        dataset=data,
        models=["openai/gpt-4o-mini"],
        scorers=[wb.LabelMatch(labels=labels, expected="label")],
        settings=wb.RunSettings(max_concurrency=16),
    )
    os.environ.setdefault("OPENAI_API_KEY", "sk-fake-key-for-the-benchmark")
    started = time.perf_counter()
    result = exp.run(
        log_to_mlflow=False,
        progress=False,
        cache=False,
        acompletion=acompletion,
        stop_early=wb.Sequential(alpha=ALPHA, looks=LOOKS, min_detectable_diff=MDD),
    )
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 simulated experiments per row")
    args = parser.parse_args()
    experiments = 2_000 if args.quick else 20_000
    print(f"Simulation: {experiments:,} experiments per row, {LOOKS} looks, alpha {ALPHA}, futility margin {MDD:g}")
    header = ("cases", "scenario", "benefit or harm", "futility", "stopped early", "calls saved")
    print(f"{header[0]:>6} {header[1]:<22} {header[2]:>16} {header[3]:>9} {header[4]:>14} {header[5]:>12}")
    for n_cases in (200, 400, 1000):
        for seed, (scenario, (p1, p2)) in enumerate(SCENARIOS.items()):
            r = simulate(n_cases, p1, p2, experiments, seed)
            print(
                f"{n_cases:>6} {scenario:<22} {r['benefit or harm']:>16.2%} {r['futility']:>9.1%} "
                f"{r['stopped early']:>14.1%} {r['calls saved']:>12.1%}"
            )
    print("(benefit or harm under A/A is the false-positive rate; under +10 pts it is the power)")
    print()
    print(f"Engine: 400 cases x 2 variants, fake completion ({LATENCY_S * 1000:.0f} ms a call, concurrency 16)")
    print(f"{'scenario':<22} {'planned':>8} {'made':>6} {'saved':>6} {'decision':>9} {'look':>5} {'seconds':>8}")
    for scenario, (p1, p2) in {**SCENARIOS, "+40 pts (50% vs 90%)": (0.5, 0.9)}.items():
        result, seconds = engine_run(400, p1, p2)
        stop = result.early_stop
        assert stop is not None
        print(
            f"{scenario:<22} {stop.calls_planned:>8} {result.calls_made:>6} {stop.calls_saved:>6} "
            f"{stop.decision or '-':>9} {f'{stop.look}/{stop.looks}':>5} {seconds:>8.2f}"
        )
        print(f"  {result.notes[0]}")


if __name__ == "__main__":
    main()
