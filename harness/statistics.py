"""Statistics that answer "is method A better than method B": paired one-sided tests, Holm, ranks.

Regret is "lower is better". Runs of two methods with the same seed share the oracle's draws, so they
are compared in pairs (Wilcoxon signed-rank test on the paired differences, ``scipy.stats.wilcoxon``;
zero differences are dropped, its default). Each pair is tested in both directions, one-sided, and the
table keeps the direction with the smaller p; Holm's step-down correction runs over every directional
test of a table (two per pair), so the family-wise error rate of everything a table claims is at most
alpha. With ``n`` non-zero differences the exact one-sided p is at least ``2**-n``; :func:`seeds_needed`
says how many are needed before any corrected p can fall below alpha.
"""
from __future__ import annotations

import math
from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ALPHA", "holm", "final_regrets", "smallest_one_sided_p", "seeds_needed", "paired_tests", "mean_ranks", "ranks_by_seed"]

ALPHA = 0.05


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order; NaN stays NaN and is not counted.

    With the ``m`` p-values sorted ascending, the ``i``-th (from 0) becomes ``max_{j<=i} (m - j)·p_(j)``,
    capped at 1. A hypothesis is rejected at family-wise level alpha when its adjusted p is <= alpha.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    if tested.size == 0:
        return adjusted
    if np.any((p[tested] < 0) | (p[tested] > 1)):
        raise ValueError(f"p-values {p.tolist()} must lie in [0, 1]")
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def smallest_one_sided_p(n: int) -> float:
    """The smallest exact one-sided Wilcoxon signed-rank p with ``n`` non-zero differences: ``2**-n``."""
    return 0.5 ** n if n > 0 else 1.0


def seeds_needed(n_tests: int, alpha: float = ALPHA) -> int:
    """Non-zero paired differences needed before the smallest Holm-adjusted p of ``n_tests`` tests can be <= alpha.

    The smallest adjusted p is ``n_tests · 2**-n``, so ``n >= log2(n_tests / alpha)``.
    """
    if n_tests < 1:
        return 0
    return max(1, math.ceil(math.log2(n_tests / alpha) - 1e-12))


def paired_tests(regrets: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per pair of methods (columns of ``regrets``, rows = seeds; NaN = no incumbent, left out).

    Columns: ``better``, ``worse`` (the direction tested: "better has lower regret than worse"),
    ``pairs`` (seeds where both have a value), ``nonzero`` (pairs whose regrets differ),
    ``median_difference`` (median over pairs of better − worse: the effect size, <= 0 when the
    direction holds), ``p_value`` (one-sided), ``p_holm`` (Holm over both directions of every pair)
    and ``significant`` (``p_holm <= alpha``). A pair with no pairs or no non-zero difference is not
    tested: its p-values are NaN and ``note`` says why.
    """
    rows, directional = [], []
    for a, b in combinations(regrets.columns, 2):
        pair = regrets[[a, b]].dropna()
        difference = (pair[a] - pair[b]).to_numpy(dtype=float)
        nonzero = int(np.count_nonzero(difference))
        row = {"better": a, "worse": b, "pairs": len(pair), "nonzero": nonzero,
               "median_difference": float(np.median(difference)) if len(pair) else float("nan"),
               "p_value": float("nan"), "note": ""}
        if len(pair) == 0:
            row["note"] = "no seed where both have an incumbent"
        elif nonzero == 0:
            row["note"] = "identical regrets on every seed"
        else:
            p_less = float(stats.wilcoxon(difference, alternative="less").pvalue)
            p_greater = float(stats.wilcoxon(difference, alternative="greater").pvalue)
            if p_greater < p_less:  # b is the one with lower regret
                row.update(better=b, worse=a, median_difference=-row["median_difference"])
            row["p_value"] = min(p_less, p_greater)
            directional.append((len(rows), p_less, p_greater))
        rows.append(row)
    adjusted = holm([p for _, low, high in directional for p in (low, high)])
    for k, (index, low, high) in enumerate(directional):
        # The direction shown is the one with the smaller p: its adjusted value is the smaller of the two.
        rows[index]["p_holm"] = float(min(adjusted[2 * k], adjusted[2 * k + 1]))
    frame = pd.DataFrame(rows, columns=["better", "worse", "pairs", "nonzero", "median_difference", "p_value", "note"])
    frame["p_holm"] = [row.get("p_holm", float("nan")) for row in rows]
    frame["significant"] = frame["p_holm"] <= alpha
    return frame[["better", "worse", "pairs", "nonzero", "median_difference", "p_value", "p_holm", "significant",
                  "note"]]


def final_regrets(runs: pd.DataFrame) -> pd.DataFrame:
    """(seed × method) final regret from a runs.csv table, methods in the order they first appear."""
    return runs.pivot(index="seed", columns="method", values="regret").reindex(columns=list(dict.fromkeys(runs["method"])))


def ranks_by_seed(regrets: pd.DataFrame) -> pd.DataFrame:
    """Per seed (row), each method's rank by regret (1 = lowest; ties share the average rank).

    Only seeds where every method has a value are ranked, so every rank is among the same methods.
    """
    complete = regrets.dropna()
    ranked = stats.rankdata(complete.to_numpy(dtype=float), axis=1, method="average")
    return pd.DataFrame(ranked, index=complete.index, columns=regrets.columns)


def mean_ranks(regrets: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean rank over seeds, its standard error and the number of seeds ranked."""
    ranks = ranks_by_seed(regrets)
    n = len(ranks)
    return pd.DataFrame({"mean_rank": ranks.mean(), "rank_se": ranks.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan,
                         "seeds": n}, index=regrets.columns)
