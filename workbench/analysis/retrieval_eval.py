"""Retrieval on its own: score retrievers against the labelled article ids without calling a model.

Retrieval is local and free, so the whole golden set can be searched with every retriever,
``k`` and chunking before a single answer is paid for. :func:`retrieval_report` runs each
:class:`~workbench.core.retrieval_spec.Retrieval` over a dataset's cases and scores the
ranking with the same functions the RAG scorers use (recall@k, precision@k, MRR, nDCG@k over
distinct documents, :mod:`workbench.scorers.retrieval_metrics`). Means come with bootstrap 95%
intervals (``scipy.stats.bootstrap``, percentile); cases labelled with no relevant article
are left out and counted, as the scorers do.

Example:
    >>> configs = {"bm25 k=3": Retrieval(kb="data/kb", k=3),
    ...            "hybrid k=5": Retrieval(kb="data/kb", retriever="hybrid", k=5)}
    >>> report = retrieval_report(dataset, configs)  # doctest: +SKIP
    >>> report.table  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.core.chunks import doc_ids
from workbench.core.dataset import Dataset
from workbench.core.retrieval_spec import Retrieval
from workbench.retrieval.run import prepare
from workbench.scorers.retrieval_metrics import ndcg_at_k, precision_at_k, recall_at_k, reciprocal_rank, relevant_ids

#: The metrics of the report, in table order.
METRICS = ("recall", "precision", "mrr", "ndcg")


@dataclass
class RetrievalReport:
    """Per-case retrieval scores of several retrieval specs, and their summary.

    Attributes:
        cases: One row per config x case: ``config``, ``case_id``, the metrics, ``hit`` (a
            relevant article in the top k), ``retrieved`` (document ids in rank order), ``latency_ms``
            and the dataset's ``by`` columns.
        table: One row per config: ``n`` scored cases, ``no_relevant`` cases left out, each
            metric's mean with its 95% interval (``<metric>_low``, ``<metric>_high``), and the
            query latency p50/p95 in milliseconds.
    """

    cases: pd.DataFrame
    table: pd.DataFrame

    def by(self, column: str) -> pd.DataFrame:
        """Mean metrics per config and a dataset column (``language``, ``kind``...)."""
        grouped = self.cases.groupby(["config", column], sort=False)[list(METRICS)]
        return grouped.mean().join(grouped.size().rename("n")).reset_index()

    def missed(self, config: str) -> pd.DataFrame:
        """The cases where ``config`` retrieved no relevant article in its top k."""
        rows = self.cases[(self.cases["config"] == config) & ~self.cases["hit"]]
        return rows.drop(columns=["config"]).reset_index(drop=True)


def retrieval_report(
    dataset: Dataset,
    retrievals: Mapping[str, Retrieval],
    *,
    relevant: str = "relevant_ids",
    by: Sequence[str] = ("kind", "language"),
    n_resamples: int = 2000,
    seed: int = 0,
) -> RetrievalReport:
    """Search every case with every spec and score the rankings at each spec's ``k``.

    Args:
        dataset: Cases with the query's columns and the ``relevant`` expected column.
        retrievals: Named specs, e.g. ``{"bm25 k=3": Retrieval(kb="data/kb", k=3)}``.
        relevant: The expected column of relevant document ids.
        by: Dataset columns kept on :attr:`RetrievalReport.cases` for breakdowns (when present).
        n_resamples: Bootstrap resamples per interval.
        seed: The bootstrap's seed.
    """
    rows = []
    for name, spec in retrievals.items():
        prepared = prepare(spec)  # builds (or reopens) the index once
        for case in dataset.cases():
            wanted = relevant_ids(case.expectations, relevant)
            started = time.perf_counter()
            ranked = doc_ids(prepared.retrieve(case.inputs, where=case.where))
            latency_ms = (time.perf_counter() - started) * 1000
            extra = {c: case.inputs.get(c, case.expectations.get(c)) for c in by}
            if not wanted:
                rows.append({"config": name, "case_id": case.id, "relevant": False, "latency_ms": latency_ms, **extra})
                continue
            rows.append(
                {
                    "config": name,
                    "case_id": case.id,
                    "relevant": True,
                    "recall": recall_at_k(ranked, wanted, spec.k),
                    "precision": precision_at_k(ranked, wanted, spec.k),
                    "mrr": reciprocal_rank(ranked, wanted, spec.k),
                    "ndcg": ndcg_at_k(ranked, wanted, spec.k),
                    "hit": bool(set(ranked[: spec.k]) & set(wanted)),
                    "retrieved": ranked[: spec.k],
                    "expected": wanted,
                    "latency_ms": latency_ms,
                    **extra,
                }
            )
    frame = pd.DataFrame(rows)
    scored = frame[frame["relevant"]].drop(columns=["relevant"]).reset_index(drop=True)
    scored["hit"] = scored["hit"].astype(bool)
    table = pd.DataFrame(
        [
            _summary(name, spec, scored[scored["config"] == name], frame[frame["config"] == name], n_resamples, seed)
            for name, spec in retrievals.items()
        ]
    )
    return RetrievalReport(cases=scored, table=table)


def _summary(
    name: str, spec: Retrieval, scored: pd.DataFrame, every: pd.DataFrame, n_resamples: int, seed: int
) -> dict[str, object]:
    row: dict[str, object] = {
        "config": name,
        "retriever": spec.retriever if isinstance(spec.retriever, str) else getattr(spec.retriever, "__name__", "fn"),
        "k": spec.k,
        "chunk_size": spec.chunk_size,
        "n": len(scored),
        "no_relevant": int((~every["relevant"]).sum()),
    }
    for metric in METRICS:
        values = scored[metric].to_numpy(dtype=float)
        row[metric] = float(values.mean()) if len(values) else np.nan
        row[f"{metric}_low"], row[f"{metric}_high"] = _interval(values, n_resamples, seed)
    latency = every["latency_ms"].to_numpy(dtype=float)
    row["p50_ms"], row["p95_ms"] = (float(np.percentile(latency, q)) for q in (50, 95))
    return row


def _interval(values: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    """The bootstrap 95% percentile interval of the mean (the mean itself when all values agree)."""
    if len(values) < 2 or np.all(values == values[0]):
        mean = float(values.mean()) if len(values) else np.nan
        return mean, mean
    from scipy import stats  # on use: scipy.stats costs ~1 s at import

    result = stats.bootstrap(
        (values,), np.mean, n_resamples=n_resamples, method="percentile", random_state=np.random.default_rng(seed)
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
