"""How far the offline RAG answer scorers can be trusted, measured on the project's own support set.

No model is called: the *reference* answers of ``data/support_qa.jsonl`` stand in for replies.
For every answerable question (``single``, ``multi``), the reference is scored

- by lexical :class:`~workbench.judge.grounding.Faithfulness` with its gold articles as the
  retrieved context (should be high: the references are grounded in them), and with 3 other
  random articles instead (should be low): the gap is what the approximation can tell apart;
- by :class:`~workbench.scorers.citations.CitationCorrectness`, each reference sentence cited
  with its gold article, then with a random other (retrieved) article;

and :func:`~workbench.scorers.refusal.is_refusal` is run on every reference: unanswerable ones
should read as refusals, the others should not. Prints the figures and the time per case.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/rag_scorer_calibration.py [--root /path/to/project]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path

from workbench.core.chunks import Chunk
from workbench.judge.grounding import Faithfulness
from workbench.scorers.citations import CitationCorrectness
from workbench.scorers.context import ScoringContext
from workbench.scorers.refusal import RefusalCorrectness, is_refusal
from workbench.scorers.support import sentences


def load_kb(folder: Path) -> dict[str, str]:
    """Article id -> body (the YAML front matter dropped)."""
    kb = {}
    for path in sorted(folder.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        body = text.split("---", 2)[2] if text.startswith("---") else text
        kb[path.stem] = body.strip()
    return kb


def context(ids: list[str], kb: dict[str, str]) -> tuple[Chunk, ...]:
    return tuple(Chunk(f"{doc}#0", doc, kb[doc], rank) for rank, doc in enumerate(ids, start=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project folder holding data/kb and data/support_qa.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(args.root)
    kb = load_kb(root / "data" / "kb")
    rows = [json.loads(line) for line in (root / "data" / "support_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(args.seed)
    faithful, citations = Faithfulness(), CitationCorrectness(kb=sorted(kb))
    gold, other, cite_gold, cite_other, languages = [], [], [], [], []
    started = time.perf_counter()
    for row in rows:
        if row["kind"] not in ("single", "multi") or not all(d in kb for d in row["relevant_ids"]):
            continue
        wrong = rng.sample([d for d in kb if d not in row["relevant_ids"]], 3)
        languages.append(row["language"])
        for ids, out in ((row["relevant_ids"], gold), (wrong, other)):
            ctx = ScoringContext(inputs={}, output=row["reference"], expectations={}, retrieved=context(ids, kb))
            out.append(asyncio.run(faithful.score(inputs={}, outputs=row["reference"], expectations={}, context=ctx)))
        for cited, out in ((row["relevant_ids"][0], cite_gold), (wrong[0], cite_other)):
            answer = " ".join(f"{s} [{cited}]" for s in sentences(row["reference"]))
            retrieved = context([*row["relevant_ids"], wrong[0]], kb)
            ctx = ScoringContext(inputs={}, output=answer, expectations=row, retrieved=retrieved)
            out.append(citations.score(inputs={}, outputs=answer, expectations=row, context=ctx))
    elapsed = time.perf_counter() - started

    def mean(scores: list) -> str:
        values = [s.value for s in scores if s.value == s.value]
        shown = f"{statistics.fmean(values):.3f}" if values else "-"
        return f"{shown} (n={len(values)}, NaN {len(scores) - len(values)})"

    print(f"{len(kb)} articles, {len(rows)} questions, {len(gold)} answerable references scored")
    print(f"faithfulness, gold articles as context:      {mean(gold)}")
    print(f"faithfulness, 3 random other articles:       {mean(other)}")
    for language in sorted(set(languages)):
        picked = [i for i, lang in enumerate(languages) if lang == language]

        def part(scores: list) -> str:
            return mean([scores[i] for i in picked])  # noqa: B023  # called at once, in this iteration

        print(f"  {language}: gold {part(gold)}, random {part(other)}")
        print(f"      citations: gold {part(cite_gold)}, wrong {part(cite_other)}")
    print(f"citations, each sentence cites a gold article: {mean(cite_gold)}")
    print(f"citations, each sentence cites a wrong article: {mean(cite_other)}")
    refusal = RefusalCorrectness()
    outputs = [r["reference"] for r in rows]
    rates = refusal.aggregate(outputs, rows, inputs=[{}] * len(rows))
    print(f"refusal markers on the references: {rates}")
    for kind in ("unanswerable", "clarify", "single", "multi"):
        for language in ("en", "ru"):
            picked = [r for r in rows if r["kind"] == kind and r["language"] == language]
            if picked:
                hits = sum(is_refusal(r["reference"]) for r in picked)
                print(f"  {kind:12} {language}: {hits}/{len(picked)} references read as refusals")
    turns_path = root / "data" / "support_conversations.jsonl"
    if turns_path.exists():
        turns = [json.loads(line) for line in turns_path.read_text(encoding="utf-8").splitlines()]
        rates = refusal.aggregate([t["reference"] for t in turns], turns, inputs=[{}] * len(turns))
        print(f"refusal markers on the conversation turns' references: {rates}")
    print(f"{elapsed / max(len(gold), 1) * 1000:.1f} ms per answerable case (2 faithfulness + 2 citation scores)")


if __name__ == "__main__":
    main()
