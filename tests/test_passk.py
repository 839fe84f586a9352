"""pass@k and pass^k against brute force: every k-subset of the repeats."""

from __future__ import annotations

import itertools

import pytest

from workbench.analysis.passk import pass_at_k, pass_hat_k


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_estimators_equal_the_share_of_k_subsets(n: int) -> None:
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(outcomes, k))
            assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
            assert pass_hat_k(n, c, k) == pytest.approx(sum(all(s) for s in subsets) / len(subsets))
