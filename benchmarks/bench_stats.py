"""Time the statistics behind ``compare`` at the sizes the issue promises.

Run with ``python benchmarks/bench_stats.py``. Prints one row per scenario; the goal is
10,000 bootstrap resamples on 10,000 cases in under a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from workbench.analysis.stats import paired_bootstrap_ci, paired_permutation_test

N_CASES = 10_000
N_RESAMPLES = 10_000


def _best_of(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    cont_a = rng.uniform(size=N_CASES)
    cont_b = np.clip(cont_a + rng.normal(0.01, 0.1, size=N_CASES), 0, 1)
    bin_a = (rng.uniform(size=N_CASES) < 0.7).astype(float)
    bin_b = (rng.uniform(size=N_CASES) < 0.72).astype(float)
    rep_a = rng.uniform(size=N_CASES * 5)
    rep_b = rep_a + rng.normal(0.01, 0.1, size=N_CASES * 5)
    clusters = np.repeat(np.arange(N_CASES), 5)
    scenarios = {
        "bootstrap CI, continuous scores": lambda: paired_bootstrap_ci(cont_a, cont_b, n_resamples=N_RESAMPLES),
        "bootstrap CI, pass/fail scores": lambda: paired_bootstrap_ci(bin_a, bin_b, n_resamples=N_RESAMPLES),
        "cluster bootstrap CI, 5 repeats": lambda: paired_bootstrap_ci(
            rep_a, rep_b, clusters=clusters, n_resamples=N_RESAMPLES
        ),
        "sign-flip permutation test": lambda: paired_permutation_test(cont_a, cont_b, n_resamples=N_RESAMPLES),
    }
    print(f"{N_CASES:,} cases x {N_RESAMPLES:,} resamples (best of 3)")
    print(f"{'scenario':<36} {'seconds':>8}")
    for name, fn in scenarios.items():
        print(f"{name:<36} {_best_of(fn):>8.3f}")


if __name__ == "__main__":
    main()
