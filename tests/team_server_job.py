"""One experiment run in a process of its own, logged to whatever MLFLOW_TRACKING_URI says.

Used by tests/test_team_server.py (8 of these at once) and benchmarks/bench_team_server.py.
The model is litellm's ``mock_response`` (no network); prints ``{"run_id", "rows", "seconds"}``.

    python tests/team_server_job.py EXPERIMENT [--cases N] [--delay SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import litellm

import workbench as wb


async def fake_completion(*, model: str, messages: list[dict[str, str]], delay: float = 0.0, **_: Any) -> Any:
    await asyncio.sleep(delay)
    text = messages[-1]["content"].lower()
    reply = "negative" if any(w in text for w in ("broke", "awful", "never")) else "positive"
    return await litellm.acompletion(model=model, messages=messages, mock_response=reply)


def experiment(name: str, cases: int) -> wb.Experiment:
    words = ["Great kettle.", "Broke after a day.", "Awful smell.", "Lovely towels.", "Never arrived.", "Works fine."]
    rows = [
        {"id": f"c{i}", "review": f"{words[i % 6]} ({i})", "label": "negative" if i % 6 in (1, 2, 4) else "positive"}
        for i in range(cases)
    ]
    return wb.Experiment(
        name=name,
        variants=[
            wb.PromptVariant(name="zero_shot", prompt="Review: {{ review }}\nSentiment:", params={"temperature": 0}),
            wb.PromptVariant(name="terse", prompt="{{ review }}\n=>", params={"temperature": 0}),
        ],
        dataset=wb.Dataset.from_records(rows, expected=["label"]),
        models=["openai/gpt-4o-mini"],
        scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)

    async def completion(**kwargs: Any) -> Any:
        return await fake_completion(delay=args.delay, **kwargs)

    started = time.perf_counter()
    result = experiment(args.name, args.cases).run(progress=False, acompletion=completion, cache=False)
    print(json.dumps({"run_id": result.run_id, "rows": result.n_rows, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1:])
