"""RAG answer scorers that may ask a judge: faithfulness to the retrieved context, relevance to the question.

Both work offline by default with a *lexical approximation* (:mod:`workbench.scorers.support`:
content-word overlap and exact numbers, not entailment; it says so in every reason), and with
``judge_model="..."`` ask a model instead, through the run's call path (cached, retried, its
tokens and cost in the ``judge.<name>.*`` columns), by way of :class:`~workbench.judge.llm.LLMJudge`.
They live in the judge layer because they may call a model; the offline checks they build on are
scorers (:mod:`workbench.scorers.support`, :mod:`workbench.scorers.refusal`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.core.chunks import format_context
from workbench.core.exceptions import ScorerError
from workbench.core.redaction import REDACTOR, redact
from workbench.judge.llm import LLMJudge
from workbench.judge.usage import Usage, judge_params, models_of
from workbench.scorers.base import BaseScorer, Score
from workbench.scorers.context import ScoringContext
from workbench.scorers.json import parse_json_output
from workbench.scorers.refusal import answerable, is_refusal
from workbench.scorers.support import claims, comparable, content_words, coverage, support, without_citations

LEXICAL = "lexical approximation: content-word overlap and exact numbers, not entailment"
_CLAIM_RUBRIC = (
    "The response is one claim taken from an assistant's answer. PASS if the claim can be directly "
    "inferred from the context given as input (it states it, or it follows from it without outside "
    "knowledge); FAIL if the context does not say it or contradicts it."
)
_RELEVANCE_RUBRIC = (
    "Does the response address the user's question given as input? Judge relevance only, not whether "
    "it is correct: 5 = answers exactly what was asked, 3 = partly, or with much that was not asked, "
    "1 = off-topic or evasive."
)
_EXTRACT = (
    "Break the answer below into short, self-contained factual claims (each understandable without "
    "the others; pronouns replaced by what they refer to). Leave out greetings and offers of help. "
    'Reply with a JSON list of strings and nothing else.\n\nQuestion: {question}\n\nAnswer:\n"""\n{answer}\n"""'
)


def _question(inputs: Mapping[str, Any], name: str | None, scorer: str) -> str:
    if name is None:
        if "question" in inputs:
            return str(inputs["question"])
        if len(inputs) == 1:
            return str(next(iter(inputs.values())))
        raise ScorerError(f"{scorer} needs `question=` to say which of the inputs {sorted(inputs)} is the question")
    if name not in inputs:
        raise ScorerError(f"{scorer} reads the question from input {name!r}, but the inputs are {sorted(inputs)}")
    return str(inputs[name])


def _judged(scores: Sequence[Score], usage: Usage | None = None) -> dict[str, Any]:
    """The usage fields of a Score summing the judge calls behind ``scores`` (and ``usage``)."""
    usage = usage or Usage()
    cost = usage.cost_usd + sum(math.nan if s.cost_usd is None else s.cost_usd for s in scores)
    return {
        "cost_usd": cost,
        "prompt_tokens": usage.prompt_tokens + sum(s.prompt_tokens or 0 for s in scores),
        "completion_tokens": usage.completion_tokens + sum(s.completion_tokens or 0 for s in scores),
        "cached": all(s.cached for s in scores) and usage.cached_calls == usage.calls,
    }


@dataclass(frozen=True)
class _Judged(BaseScorer):
    """Shared: an optional judge model and its params, checked before a run and kept out of logs."""

    judge_model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)  # may hold a key
    question: str | None = None
    metric_name: str | None = None

    rubric = ""
    scale = "pass_fail"

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params or {}))
        REDACTOR.learn(self.params)
        judge = None
        if self.judge_model is not None:
            judge = LLMJudge(
                rubric=self.rubric, model=self.judge_model, scale=self.scale, params=self.params,
                include_expected=False, metric_name=self.name,
            )  # fmt: skip
        object.__setattr__(self, "_judge", judge)

    @property
    def calls_models(self) -> bool:
        """Whether scoring calls a model (the engine then reports the judge's usage)."""
        return self.judge_model is not None

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        if self.params:
            spec["params"] = redact(self.params)
        else:
            spec.pop("params", None)
        return spec

    def check(self, expectations: Mapping[str, Any]) -> None:
        """Fail before any call when the judge model cannot work (unknown, no key)."""
        if self._judge is not None:  # type: ignore[attr-defined]
            self._judge.check(expectations)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Faithfulness(_Judged):
    """Share of the answer's claims that the retrieved context supports (column ``faithfulness``).

    Offline (the default) the claims are the answer's sentences with at least two content words
    or a number, and a claim is supported when one retrieved chunk holds ``threshold`` of its
    content words and every number it writes (:mod:`workbench.scorers.support`): a **lexical
    approximation**, said so in the reason. With ``judge_model``, as ragas defines it: the judge
    breaks the answer into claims (one call; sentences if its reply is not a JSON list) and gives
    a PASS/FAIL verdict per claim against the context (one call each, cached).

    Not scored (NaN): no retrieval (``retrieved`` is None), a refusal (it claims nothing; see
    :class:`~workbench.scorers.refusal.RefusalCorrectness`), an answer with no claims. The reason
    lists the unsupported claims. ``1 - faithfulness`` is the hallucination rate.

    Args:
        judge_model: litellm model string of a judge; None: the lexical approximation.
        params: litellm params of the judge calls (over ``temperature=0, max_tokens=256``).
        question: The input holding the question (shown to the claim extractor); default
            ``question`` or the only input.
        threshold: Lexical: least share of a claim's content words one chunk must hold.
        extract_claims: Judge: let the judge split the answer into claims (else: sentences).
        metric_name: Column and metric name.

    Example:
        >>> from workbench.core.chunks import Chunk
        >>> text = "Items can be returned within 14 days."
        >>> ctx = ScoringContext(inputs={}, output="", expectations={},
        ...                      retrieved=(Chunk("returns-window#0", "returns-window", text, 1),))
        >>> answer = "Items can be returned within 14 days. Refunds arrive within 2 hours."
        >>> r = asyncio.run(Faithfulness().score(inputs={}, outputs=answer, expectations={}, context=ctx))
        >>> r.value, r.reason[:38]
        (0.5, '1 of 2 claims supported (lexical appro')
    """

    threshold: float = 0.6
    extract_claims: bool = True

    rubric = _CLAIM_RUBRIC

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.threshold <= 1:
            raise ScorerError(f"faithfulness `threshold` is a share in (0, 1], got {self.threshold!r}")

    async def score(  # type: ignore[override]
        self,
        *,
        inputs: Mapping[str, Any],
        outputs: str,
        expectations: Mapping[str, Any],
        context: ScoringContext | None = None,
    ) -> Score:
        if context is None or context.retrieved is None:
            return Score(math.nan, "no retrieval for this case (context.retrieved is None): nothing to be faithful to")
        if is_refusal(outputs):
            return Score(math.nan, "a refusal claims nothing: scored by refusal_correctness")
        if self._judge is None:  # type: ignore[attr-defined]
            passages = [c.text for c in context.retrieved]
            if passages and not comparable(outputs, passages):
                return Score(math.nan, f"not scored: the answer and the context are in different scripts ({LEXICAL}); "
                             "give `judge_model` to score answers in another language")  # fmt: skip
            return self._lexical(outputs, passages)
        return await self._with_judge(inputs, outputs, context)

    def _lexical(self, answer: str, passages: list[str]) -> Score:
        found = claims(answer)
        if not found:
            return Score(math.nan, "no claims to check")
        checked = [support(c, passages, threshold=self.threshold) for c in found]
        bad = [s.claim for s in checked if not s.supported]
        reason = f"{len(found) - len(bad)} of {len(found)} claims supported ({LEXICAL})"
        return Score(1 - len(bad) / len(found), reason + _listed(bad))

    async def _with_judge(self, inputs: Mapping[str, Any], answer: str, context: ScoringContext) -> Score:
        usage, note = Usage(), ""
        found = [without_citations(c) for c in claims(answer)]
        if self.extract_claims:
            question = _question(inputs, self.question, "faithfulness") if inputs else ""
            prompt = _EXTRACT.format(question=question, answer=answer)
            try:
                reply = await models_of(context).complete(
                    model=str(self.judge_model), messages=[{"role": "user", "content": prompt}],
                    params=judge_params({"max_tokens": 512, **self.params}),
                )  # fmt: skip
                usage.add(reply)
                extracted = parse_json_output(reply.reply.output)
                if not isinstance(extracted, list) or not all(isinstance(c, str) for c in extracted):
                    raise ValueError("not a JSON list of strings")
                found = [c.strip() for c in extracted if c.strip()]
            except Exception as exc:  # noqa: BLE001  # any failure: fall back to sentences, say so
                note = f"; claims are sentences (extraction failed: {REDACTOR.text(str(exc))[:120]})"
        if not found:
            return Score(math.nan, "no claims to check" + note, **_judged([], usage))
        shown = {"context": format_context(context.retrieved or ())}
        judge: LLMJudge = self._judge  # type: ignore[attr-defined]
        verdicts = await asyncio.gather(
            *(judge.score(inputs=shown, outputs=c, expectations={}, context=context) for c in found)
        )
        parsed = [(c, v) for c, v in zip(found, verdicts, strict=True) if not math.isnan(v.value)]
        bad = [c for c, v in parsed if v.value < 0.5]
        failed = len(found) - len(parsed)
        value = 1 - len(bad) / len(parsed) if parsed else math.nan
        reason = f"{len(parsed) - len(bad)} of {len(parsed)} claims supported (judge {self.judge_model})"
        if failed:
            reason += f"; {failed} verdict(s) unreadable or failed"
        return Score(value, reason + _listed(bad) + note, **_judged(verdicts, usage))


@dataclass(frozen=True)
class AnswerRelevance(_Judged):
    """How well the answer addresses the question, 0..1 (column ``answer_relevance``).

    Offline (the default): the share of the question's content words the answer uses
    (:func:`~workbench.scorers.support.coverage`), a **lexical approximation** (no embeddings;
    ragas compares questions generated from the answer by embedding). With ``judge_model`` a judge
    grades relevance on 1-5 (mapped to 0..1). A refusal of an answerable question scores 0 (as
    ragas scores noncommittal answers); on unanswerable cases (relevant ids ``[]``) it is not
    scored: :class:`~workbench.scorers.refusal.RefusalCorrectness` is the score there.

    Args:
        judge_model: litellm model string of a judge; None: the lexical approximation.
        params: litellm params of the judge calls.
        question: The input holding the question; default ``question`` or the only input.
        metric_name: Column and metric name.

    Example:
        >>> s = AnswerRelevance()
        >>> r = asyncio.run(s.score(inputs={"question": "How long is the return window?"},
        ...                         outputs="The return window is 14 days.", expectations={}))
        >>> r.value
        1.0
    """

    rubric = _RELEVANCE_RUBRIC
    scale = "1-5"

    async def score(  # type: ignore[override]
        self,
        *,
        inputs: Mapping[str, Any],
        outputs: str,
        expectations: Mapping[str, Any],
        context: ScoringContext | None = None,
    ) -> Score:
        question = _question(inputs, self.question, "answer_relevance")
        try:
            should_answer = answerable(expectations, inputs)
        except ScorerError:  # no labels: every question is taken to be answerable
            should_answer = True
        if not should_answer:
            return Score(math.nan, "unanswerable case: scored by refusal_correctness")
        if is_refusal(outputs):
            return Score(0.0, "a refusal does not answer the question")
        if self._judge is not None:  # type: ignore[attr-defined]
            judge: LLMJudge = self._judge  # type: ignore[attr-defined]
            return await judge.score(inputs={"question": question}, outputs=outputs, expectations={}, context=context)
        if not comparable(outputs, [question]):
            return Score(math.nan, f"not scored: the question and the answer are in different scripts ({LEXICAL})")
        wanted = content_words(question)
        if not wanted:
            return Score(math.nan, "the question has no content words to look for")
        share = coverage(wanted, content_words(outputs))
        return Score(share, f"{share:.0%} of the question's content words in the answer ({LEXICAL})")


def _listed(claims_: Sequence[str]) -> str:
    return "; unsupported: " + "; ".join(f'"{c}"' for c in claims_) if claims_ else ""
