"""Train / dev / test splits of a golden set, made once and recorded.

The search may read train (few-shot demonstrations, failures to reflect on) and dev (choosing
between candidates); test is read once, at the end, for the verdict. Each split's content hash
is kept so a resumed search can check it still has the same cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.core.dataset import Dataset
from workbench.core.exceptions import UsageError

SPLIT_NAMES = ("train", "dev", "test")


@dataclass(frozen=True)
class Splits:
    """The three splits of a golden set.

    Attributes:
        train: Cases the search may learn from (demonstrations, failures).
        dev: Cases the search selects on.
        test: Cases read once, for the final paired verdict.
        stratify: The column the splits were stratified by, if any.
        seed: The seed of the shuffle.
    """

    train: Dataset
    dev: Dataset
    test: Dataset
    stratify: str | None
    seed: int

    @property
    def hashes(self) -> dict[str, str]:
        """Each split's content hash (see :attr:`workbench.Dataset.content_hash`)."""
        return {name: getattr(self, name).content_hash for name in SPLIT_NAMES}

    @property
    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {self.sizes[n]} (hash {self.hashes[n]})" for n in SPLIT_NAMES)
        how = f"stratified by {self.stratify!r}, " if self.stratify else ""
        return f"splits: {parts}; {how}seed {self.seed}"


def split_dataset(
    dataset: Dataset,
    *,
    fractions: Sequence[float] = (0.4, 0.3, 0.3),
    stratify: str | None = None,
    seed: int = 0,
) -> Splits:
    """Split ``dataset`` into train / dev / test, reproducibly.

    Args:
        dataset: The golden set.
        fractions: Shares of train, dev and test (they must sum to 1).
        stratify: A column (an input or an expected column, e.g. ``"label"``) whose values are
            spread over the splits in the same proportions; ``None`` shuffles all cases together.
        seed: Seed of the shuffle.

    Returns:
        :class:`Splits`; each split keeps the cases in their original order.

    Raises:
        UsageError: fractions that do not sum to 1, a stratify column the dataset lacks, or a
            split that would be empty.

    Example:
        >>> splits = split_dataset(wb.Dataset.load("data/sentiment.csv", expected=["label"]),
        ...                        stratify="label", seed=0)  # doctest: +SKIP
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise UsageError(f"fractions must be three positive shares of train, dev, test summing to 1, got {fractions!r}")
    frame = dataset.frame
    if stratify is not None and stratify not in frame.columns:
        raise UsageError(
            f"cannot stratify dataset {dataset.source} by {stratify!r}: it has no such column; "
            f"its columns: {list(frame.columns)}"
        )
    rng = np.random.default_rng(seed)
    groups = [frame.index.to_numpy()] if stratify is None else [g.index.to_numpy() for _, g in frame.groupby(stratify)]
    parts: list[list[int]] = [[], [], []]
    for index in groups:
        shuffled = rng.permutation(index)
        cuts = np.round(np.cumsum(fractions)[:2] * len(shuffled)).astype(int)
        for i, chunk in enumerate(np.split(shuffled, cuts)):
            parts[i].extend(int(x) for x in chunk)
    for name, part in zip(SPLIT_NAMES, parts, strict=True):
        if not part:
            raise UsageError(
                f"the {name} split of dataset {dataset.source} ({len(frame)} cases) is empty; "
                "use more cases or larger fractions"
            )
    train, dev, test = (_subset(dataset, frame.loc[sorted(part)]) for part in parts)
    return Splits(train=train, dev=dev, test=test, stratify=stratify, seed=seed)


def _subset(dataset: Dataset, frame: pd.DataFrame) -> Dataset:
    return Dataset(
        frame.reset_index(drop=True).copy(),
        id_column=dataset.id_column,
        expected=dataset.expected,
        source=dataset.source,
    )
