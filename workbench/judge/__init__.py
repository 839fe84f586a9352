"""LLM-as-judge: grade outputs with a model, compare two variants pairwise, check the judge against people.

- :class:`LLMJudge` is a scorer (spec type ``llm_judge``): a rubric, any litellm
  model as the judge, a robustly parsed verdict, cached calls, and its own
  tokens and cost in the ``judge.<name>.*`` columns.
- :class:`Faithfulness` and :class:`AnswerRelevance` score RAG answers: a lexical
  approximation offline, per-claim verdicts (ragas-style) with ``judge_model``.
- :func:`pairwise_preference` asks a :class:`PairwiseJudge` which of two
  variants' outputs is better, in both orders to cancel position bias.
- :func:`judge_agreement` compares judge verdicts with human labels: agreement
  rate, Cohen's kappa and the confusion table, so a team knows whether to
  trust its judge.

Example:
    >>> import workbench as wb
    >>> judge = wb.LLMJudge(rubric="The label is right and nothing else is said.", model="openai/gpt-4o-mini")
    >>> exp = wb.Experiment(..., scorers=[judge])  # doctest: +SKIP
    >>> result = exp.run()  # doctest: +SKIP
    >>> print(wb.judge_agreement(result, "data/labels/sentiment.jsonl"))  # doctest: +SKIP
"""

from workbench.judge.agreement import JudgeAgreement, judge_agreement
from workbench.judge.grounding import AnswerRelevance, Faithfulness
from workbench.judge.llm import LLMJudge
from workbench.judge.pairwise import PairwiseJudge, PairwisePreference, pairwise_preference
from workbench.judge.parsing import Scale, Verdict, parse_verdict

__all__ = [
    "AnswerRelevance",
    "Faithfulness",
    "JudgeAgreement",
    "LLMJudge",
    "PairwiseJudge",
    "PairwisePreference",
    "Scale",
    "Verdict",
    "judge_agreement",
    "pairwise_preference",
    "parse_verdict",
]
