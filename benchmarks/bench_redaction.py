"""Benchmark the PII link of the redaction chain: throughput, and its cost on a 10,000-case run.

1. Throughput: the texts of ``tests/data/pii_corpus.jsonl`` (marketplace listings and chats,
   ~120 characters, two or three PII values each), and the same number of review texts with no
   PII, each through ``REDACTOR.text`` with the per-text memo cleared between passes.
2. First use: a fresh process imports the workbench and redacts one e-mail (Presidio's import
   and analyzer build), against one that redacts a text with no PII.
3. A 10,000-case run x 2 variants on the in-process fake completion (it echoes the input, so
   the outputs hold the PII too), MLflow on, cache off, with the PII link off and on, one after
   the other in this process; the ratio of wall times is the overhead. Redaction happens where
   text leaves: at MLflow logging (``result.timings["mlflow_s"]``). Two datasets: every case
   holding PII (the worst case), and plain reviews.

    .venv/bin/python benchmarks/bench_redaction.py            # prints a Markdown table (~2-3 min)
    .venv/bin/python benchmarks/bench_redaction.py --cases 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import litellm  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.tracking.store import MlflowWriter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "pii_corpus.jsonl"
PLAIN = [
    "Great kettle, boils fast and the handle stays cool. Would buy again for my parents.",
    "The zipper broke the first time I used it. Waste of money, the seller never replied.",
    "Lovely soft towels, the colour is exactly as in the photos. Washed twice, no fading.",
    "Honestly better than the expensive brand I used to buy; size runs a little small.",
]


def corpus_texts() -> list[str]:
    return [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def throughput(texts: list[str], *, passes: int) -> float:
    """Texts per second through REDACTOR.text, memo cleared before each pass."""
    pii = wb.REDACTOR.pii
    assert pii is not None
    elapsed = 0.0
    for _ in range(passes):
        pii.configure()  # clears the per-text memo: every text is analysed
        started = time.perf_counter()
        for text in texts:
            wb.REDACTOR.text(text)
        elapsed += time.perf_counter() - started
    return len(texts) * passes / elapsed


def first_use(text: str) -> float:
    """Seconds for a fresh process to import the workbench and redact ``text``."""
    code = (
        "import time; s = time.perf_counter(); import workbench as wb; "
        f"wb.REDACTOR.text({text!r}); print(time.perf_counter() - s)"
    )
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def echo_completion():
    """An in-process completion: a real litellm ModelResponse echoing the last message."""
    template = litellm.completion(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}], mock_response="x"
    )

    async def acompletion(*, messages: list[dict[str, str]], **kwargs: object) -> object:
        await asyncio.sleep(0)
        response = template.model_copy(deep=True)
        response.choices[0].message.content = "Contact details: " + messages[-1]["content"]
        return response

    return acompletion


def experiment(texts: list[str], n: int) -> wb.Experiment:
    rows = [{"id": f"c{i:06d}", "text": f"{texts[i % len(texts)]} (#{i})"} for i in range(n)]
    params = {"api_base": "http://127.0.0.1:9/v1", "api_key": "sk-fake", "temperature": 0}  # never called
    variants = [
        wb.PromptVariant(name="summary", prompt="Summarise the listing: {{ text }}", params=params),
        wb.PromptVariant(name="contacts", prompt="Extract the contacts: {{ text }}", params=params),
    ]
    return wb.Experiment(
        name="bench-redaction",
        variants=variants,
        dataset=wb.Dataset.from_records(rows),
        models=["openai/gpt-4o-mini"],
        scorers=[wb.RegexMatch(pattern="@")],
    )


def run(exp: wb.Experiment, uri: str, *, pii_on: bool) -> tuple[float, float]:
    """Wall time and MLflow logging time of one run."""
    pii = wb.REDACTOR.pii
    assert pii is not None
    pii.configure(enabled=pii_on)
    started = time.perf_counter()
    result = exp.run(tracking_uri=uri, progress=False, cache=False, acompletion=echo_completion())
    return time.perf_counter() - started, result.timings.get("mlflow_s", float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    texts = corpus_texts()
    wb.REDACTOR.text("warm up: ann@example.com")  # build the analyzer before timing
    rows = [
        ("redaction, texts with PII (corpus, ~120 chars)", f"{throughput(texts, passes=args.passes):,.0f} cases/s", ""),
        ("redaction, texts without PII", f"{throughput(PLAIN * 60, passes=args.passes):,.0f} cases/s", ""),
        ("fresh process: import + first text without PII", f"{first_use('Great kettle.'):.2f} s", ""),
        ("fresh process: import + first text with PII", f"{first_use('mail ann@example.com'):.2f} s", ""),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        run(experiment(texts, 200), f"sqlite:///{Path(tmp) / 'warm.db'}", pii_on=True)  # imports, first store
        for label, data in (("every case with PII", texts), ("plain reviews", PLAIN)):
            exp = experiment(data, args.cases)
            timings = {}
            for pii_on in (False, True):
                uri = f"sqlite:///{Path(tmp) / f'{label[:5]}-{pii_on}.db'}"
                MlflowWriter(uri).experiment_id("bench-redaction")  # the store exists before timing
                timings[pii_on] = run(exp, uri, pii_on=pii_on)
                print(f"{label}, PII {'on' if pii_on else 'off'}: {timings[pii_on][0]:.1f} s", file=sys.stderr)
            (off, off_log), (on, on_log) = timings[False], timings[True]
            n = f"{args.cases:,} cases x 2 variants, {label}"
            rows.append((f"{n}: PII link off", f"{off:.1f} s", f"of which MLflow logging {off_log:.1f} s"))
            rows.append((f"{n}: PII link on", f"{on:.1f} s", f"of which MLflow logging {on_log:.1f} s"))
            rows.append((f"{n}: on / off", f"{on / off:.2f}x", f"+{on - off:.1f} s"))
    print("| measure | value | note |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
