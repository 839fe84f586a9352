"""Listing extraction on the embedded models: validity, field F1 and hallucination per variant.

Runs ``experiments/extraction.yaml`` (variants ``instructions``, ``few_shot``, ``constrained``:
sampling constrained to ``data/listing.schema.json`` by a llama.cpp grammar) on the first
``--limit`` listings of ``data/listings.jsonl`` for each model, and prints per variant: JSON
validity, schema validity, micro and macro field F1, the hallucination rate (values the listing
does not support; category exempt), the per-case share of fields right, then the paired verdicts
of each variant against ``instructions`` and of ``constrained`` against ``few_shot`` (per-case
scores, Holm-adjusted; hallucination is compared only where both replies are JSON). No network, no MLflow.

Calls go through the response cache, so a second run prints the same tables in seconds.
On this shared 2-core machine SmolLM2 took about 2.4 s a call (48 listings x 3 variants: 344 s).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/extraction_rates.py
    PYTHONPATH=$PWD .venv/bin/python benchmarks/extraction_rates.py \\
        --model local/smollm2-135m-instruct --model local/gemma-3-270m
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pandas as pd  # noqa: E402

import workbench as wb  # noqa: E402

COLUMNS = {
    "json_valid": "json_valid",
    "json_schema_valid": "schema_valid",
    "field_match.micro_f1": "micro_f1",
    "field_match.macro_f1": "macro_f1",
    "grounded.hallucination_rate": "halluc_rate",
    "field_match": "fields_right",
    "error_rate": "error_rate",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=48, help="the first N listings (default 48)")
    parser.add_argument("--model", action="append", help="litellm model string (repeatable); default SmolLM2")
    args = parser.parse_args()
    base = wb.load_experiment("experiments/extraction.yaml").with_overrides(limit=args.limit)
    for model in args.model or base.models:
        experiment = base.with_overrides(models=[model])
        started = time.perf_counter()
        result = experiment.run(log_to_mlflow=False, progress=False)
        elapsed = time.perf_counter() - started
        summary = result.summary.reset_index()
        table = summary[["variant", *[c for c in COLUMNS if c in summary.columns]]].rename(columns=COLUMNS)
        print(f"\n{model}: {args.limit} listings x {len(experiment.variants)} variants ({elapsed:.0f} s)")
        with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
            print(table.to_string(index=False))
            fields = wb.field_report(result).reset_index()
            grounded = wb.field_report(result, scorer="grounded").reset_index()
            print("\nPer-field F1 (field_match) and hallucination rate (grounded):")
            f1 = fields.pivot(index="field", columns="variant", values="f1")
            halluc = grounded.pivot(index="field", columns="variant", values="hallucination_rate")
            print(pd.concat({"f1": f1, "hallucination_rate": halluc}, axis=1).to_string())
        print("\nPaired verdicts (Holm-adjusted within each comparison):")
        comparisons = [
            *result.compare_all("instructions", model=model),
            result.compare("few_shot", "constrained", model=model),
        ]
        for comparison in comparisons:
            for verdict in comparison.verdicts:
                print(f"  {comparison.candidate} vs {comparison.baseline}: {verdict}")


if __name__ == "__main__":
    main()
