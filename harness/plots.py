"""Plots of comparisons (matplotlib, headless)."""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.metrics import regret_at  # noqa: E402
from benchmarks.files import atomic_output


def plot_anytime(anytime: pd.DataFrame, runs: pd.DataFrame, path: Path, title: str = "") -> None:
    """Median and inter-quartile band of incumbent regret against simulated time (log axis), one line per method."""
    budget = float(runs["budget"].max())
    first = anytime["time"][anytime["time"] > 0].min() if (anytime["time"] > 0).any() else budget / 1000
    grid = np.geomspace(max(first, budget / 1e4), budget, 200)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(runs["method"]):
        curves = [regret_at(steps, grid) for _, steps in anytime[anytime["method"] == method].groupby("seed")]
        if not curves:
            continue
        stacked = np.vstack(curves)
        with warnings.catch_warnings():
            # Before a run's first result its regret is NaN; a grid point where every run is NaN stays blank.
            warnings.simplefilter("ignore", RuntimeWarning)
            q25, median, q75 = np.nanpercentile(stacked, [25, 50, 75], axis=0)
        line, = axis.plot(grid, median, label=method)
        axis.fill_between(grid, q25, q75, color=line.get_color(), alpha=0.2)
    axis.set_xscale("log")
    axis.set_xlabel("simulated time (s)")
    axis.set_ylabel("regret of the incumbent (median, IQR)")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    try:
        with atomic_output(path, suffix=".tmp.png") as tmp:
            figure.savefig(tmp, dpi=120)
    finally:
        plt.close(figure)
