"""Ground truth, regret and the statistics of a comparison. Only the harness reads test values."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from benchmarks.tabular import TabularBenchmark


class GroundTruth:
    """Max-epoch validation and test metrics of a table (means over repeats) and its best validation value."""

    def __init__(self, table: TabularBenchmark):
        self.higher_is_better = table.higher_is_better
        self.final_valid = table.final("valid")
        self.final_test = table.final("test") if "test" in table.curves else np.full(len(table), np.nan)
        finite = self.final_valid[~np.isnan(self.final_valid)]
        self.best_valid = float(finite.max() if self.higher_is_better else finite.min())

    def regret(self, row: int | None) -> float:
        """How far the chosen architecture's final validation metric is from the best (>= 0; NaN if none)."""
        if row is None:
            return float("nan")
        value = float(self.final_valid[row])
        return self.best_valid - value if self.higher_is_better else value - self.best_valid


def regret_at(anytime: pd.DataFrame, moments: Sequence[float]) -> np.ndarray:
    """Regret of the incumbent at each moment, from one run's (time, regret) steps; NaN before the first."""
    times = anytime["time"].to_numpy()
    regrets = anytime["regret"].to_numpy()
    index = np.searchsorted(times, np.asarray(moments, dtype=float), side="right") - 1
    return np.where(index >= 0, regrets[np.maximum(index, 0)], np.nan)


BUDGET_FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def regrets_at_fraction(runs: pd.DataFrame, anytime: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """(seed × method) regret of each run's incumbent at ``fraction`` of its budget."""
    values = {}
    for (method, seed), steps in anytime.groupby(["method", "seed"], sort=False):
        budget = float(runs[(runs["method"] == method) & (runs["seed"] == seed)]["budget"].iloc[0])
        values[(method, seed)] = float(regret_at(steps, [fraction * budget])[0])
    frame = pd.Series(values).unstack(0) if values else pd.DataFrame()
    return frame.reindex(columns=list(dict.fromkeys(runs["method"])))
