"""Attack success rate per category for each embedded model, plain vs guarded system prompt.

Runs ``experiments/redteam.yaml`` (167 attacks as written, strategy ``none``, plus 24 clean
support questions; variants ``plain`` and ``guarded``) on each embedded model in turn and
prints, per model: the attack success rate per category and overall with 95% Wilson
intervals, the canary leak rate, utility on the clean cases, and the paired comparison
guarded vs plain (exact McNemar on the same attacks). No judge, no network, no MLflow.

Calls go through the response cache, so a second run prints the same tables in seconds.
On this shared 2-core machine a full run takes about 15-25 minutes per model.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/redteam_rates.py
    PYTHONPATH=$PWD .venv/bin/python benchmarks/redteam_rates.py --per-category 3   # a quick look
    PYTHONPATH=$PWD .venv/bin/python benchmarks/redteam_rates.py --model local/smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pandas as pd  # noqa: E402

import workbench as wb  # noqa: E402

MODELS = ["local/gemma-3-270m", "local/smollm2-135m-instruct"]


def pct(rate: float, low: float, high: float) -> str:
    return f"{100 * rate:5.1f}% [{100 * low:4.1f}, {100 * high:4.1f}]"


def model_tables(report: wb.RedTeamReport, model: str, variants: list[str]) -> str:
    lines = []
    by = report.by_category[report.by_category["model"] == model]
    header = f"| category | n | {' | '.join(variants)} |"
    lines += [header, "| --- | --- |" + " --- |" * len(variants)]
    for category in sorted(by["category"].unique()):
        rows = by[by["category"] == category].set_index("variant")
        cells = [pct(r.attack_success_rate, r.ci_low, r.ci_high) for r in (rows.loc[v] for v in variants)]
        lines.append(f"| {category} | {int(rows['n'].iloc[0])} | {' | '.join(cells)} |")
    overall = report.overall[report.overall["model"] == model].set_index("variant")
    cells = [pct(o.attack_success_rate, o.asr_ci_low, o.asr_ci_high) for o in (overall.loc[v] for v in variants)]
    lines.append(f"| **all attacks** | {int(overall['attacks'].iloc[0])} | {' | '.join(cells)} |")
    cells = [f"{int(overall.loc[v, 'echoes'])} of {int(overall.loc[v, 'successes'])}" for v in variants]
    lines.append(f"| successes that repeat the attack's text | | {' | '.join(cells)} |")
    cells = [f"{100 * overall.loc[v, 'canary_leak_rate']:5.1f}%" for v in variants]
    everything = int(overall["attacks"].iloc[0] + overall["clean_cases"].iloc[0])
    lines.append(f"| canary leaked (all cases) | {everything} | {' | '.join(cells)} |")
    cells = [pct(o.utility, o.utility_ci_low, o.utility_ci_high) for o in (overall.loc[v] for v in variants)]
    clean = int(overall["clean_cases"].iloc[0])
    lines.append(f"| utility (clean cases) | {clean} | {' | '.join(cells)} |")
    errors = {v: int(overall.loc[v, "errors"]) for v in variants}
    if any(errors.values()):
        lines.append(f"\nfailed calls (left out of every rate): {errors}")
    comparison = report.comparisons.get(model)
    if comparison is not None:
        lines.append("")
        lines += [f"- {verdict}" for verdict in comparison.verdicts]
        row = comparison["attack_resisted"]
        lines.append(
            f"- attack_resisted alone (unadjusted): exact McNemar p = {row.p_value:.3g}, n = {row.n_cases}, "
            f"{row.n_fixed} attacks resisted only by {variants[1]}, {row.n_regressed} only by {variants[0]}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help=f"model(s) to run (default: {MODELS})")
    parser.add_argument("--per-category", type=int, help="only the first N attacks per category (and N clean cases)")
    parser.add_argument("--file", default="experiments/redteam.yaml")
    args = parser.parse_args()
    base = wb.load_experiment(args.file)
    if args.per_category:
        base = wb.redteam(base, per_category=args.per_category, name=base.name)
    variants = [v.name for v in base.variants]
    print(f"{base.name}: {len(base.dataset)} cases x {len(variants)} variants {variants}; strategy none; temperature 0")
    for model in args.model or MODELS:
        started = time.perf_counter()
        result = base.with_overrides(models=[model]).run(log_to_mlflow=False, progress=False)
        report = wb.redteam_report(result, baseline=variants[0], candidate=variants[1])
        took = time.perf_counter() - started
        hits = int(result.summary["cache_hits"].sum())
        print(f"\n## {model}  ({len(result.cases)} calls, {hits} from the cache, {took:.0f} s)\n")
        with pd.option_context("display.width", 200):
            print(model_tables(report, model, variants))


if __name__ == "__main__":
    main()
