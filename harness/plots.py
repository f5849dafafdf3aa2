"""Plots of comparisons (matplotlib, headless): anytime regret, final regret, mean ranks.

Regret is often exactly 0 (the best architecture was found), so the regret axes are symlog: linear
from 0 up to a threshold (the smallest positive regret any run reached, rounded down to a power of
ten), logarithmic above, so both zeros and the spread of small final differences stay visible. The
threshold is written in the axis label.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.files import atomic_output  # noqa: E402
from harness.metrics import regret_at  # noqa: E402
from harness.statistics import final_regrets, ranks_by_seed  # noqa: E402

#: With more methods than this the anytime plot becomes small multiples, one highlighted method per panel.
MAX_METHODS_IN_ONE_PANEL = 5


def _methods(runs: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(runs["method"]))


def method_colours(methods: list[str]) -> dict[str, str]:
    # tab10 without its grey, which the small multiples use for the other methods.
    cycle = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7]
    return {m: matplotlib.colors.to_hex(cycle[i % len(cycle)]) for i, m in enumerate(methods)}


def linear_threshold(regrets: np.ndarray) -> float:
    """Where the symlog regret axis turns logarithmic: the smallest positive regret, rounded down to a power of 10."""
    values = np.asarray(regrets, dtype=float)
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return 1.0
    return 10.0 ** math.floor(math.log10(positive.min()))


def _regret_axis(axis, threshold: float, label: str | None) -> None:
    axis.set_yscale("symlog", linthresh=threshold, linscale=0.5)
    axis.set_ylim(bottom=0)
    if label is not None:
        axis.set_ylabel(f"{label}\n(symlog: linear below {threshold:g})")


def _title(benchmark: str, runs: pd.DataFrame) -> str:
    budget = float(runs["budget"].max())
    return f"{benchmark}: budget {budget:,.0f} simulated s, {runs['seed'].nunique()} seeds per method"


def _save(figure, path: Path) -> None:
    try:
        with atomic_output(path, suffix=".tmp.png") as tmp:
            figure.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)


def anytime_quantiles(anytime: pd.DataFrame, method: str, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """25th, 50th and 75th percentile of ``method``'s incumbent regret on ``grid``, over its runs.

    NaN where fewer than half of the runs have an incumbent yet: a median of the few early runs would
    describe them, not the method.
    """
    curves = [regret_at(steps, grid) for _, steps in anytime[anytime["method"] == method].groupby("seed")]
    if not curves:
        return (np.full(grid.size, np.nan),) * 3
    stacked = np.vstack(curves)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns, masked below anyway
        q25, median, q75 = np.nanpercentile(stacked, [25, 50, 75], axis=0)
    enough = np.sum(~np.isnan(stacked), axis=0) >= stacked.shape[0] / 2
    return tuple(np.where(enough, q, np.nan) for q in (q25, median, q75))


def plot_anytime(anytime: pd.DataFrame, runs: pd.DataFrame, path: Path, benchmark: str = "") -> None:
    """Median and inter-quartile band of incumbent regret against simulated time (log x, symlog y).

    Up to :data:`MAX_METHODS_IN_ONE_PANEL` methods share one panel with the legend outside it; more
    become small multiples, each panel one method in colour over the others' medians in grey.
    """
    methods = _methods(runs)
    budget = float(runs["budget"].max())
    first = anytime["time"][anytime["time"] > 0].min() if (anytime["time"] > 0).any() else budget / 1000
    grid = np.geomspace(max(first, budget / 1e4), budget, 200)
    bands = {m: anytime_quantiles(anytime, m, grid) for m in methods}
    threshold = linear_threshold(anytime["regret"].to_numpy())
    colours = method_colours(methods)
    label = "regret of the incumbent\n(median, IQR)"
    if len(methods) <= MAX_METHODS_IN_ONE_PANEL:
        figure, axis = plt.subplots(figsize=(8, 4.5))
        for method in methods:
            q25, median, q75 = bands[method]
            axis.plot(grid, median, label=method, color=colours[method])
            axis.fill_between(grid, q25, q75, color=colours[method], alpha=0.2)
        axes, columns = [axis], 1
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        axis.set_title(_title(benchmark, runs))
    else:
        columns = 3
        rows = math.ceil(len(methods) / columns)
        figure, grid_axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), sharex=True, sharey=True,
                                         squeeze=False)
        axes = list(grid_axes.flat)
        for axis, method in zip(axes, methods):
            for other in methods:
                if other != method:
                    axis.plot(grid, bands[other][1], color="0.75", linewidth=0.8)
            q25, median, q75 = bands[method]
            axis.plot(grid, median, color=colours[method], linewidth=1.8)
            axis.fill_between(grid, q25, q75, color=colours[method], alpha=0.25)
            axis.set_title(method, fontsize=10)
        for axis in axes[len(methods):]:
            axis.set_visible(False)
        figure.suptitle(_title(benchmark, runs) + "\n(each panel: one method in colour, the others' medians in grey)")
        axes = axes[:len(methods)]
    for index, axis in enumerate(axes):
        axis.set_xscale("log")
        _regret_axis(axis, threshold, label if index % columns == 0 else None)
        axis.grid(True, which="both", alpha=0.3)
    for axis in axes[-min(columns, len(axes)):]:
        axis.set_xlabel("simulated time (s)")
        axis.xaxis.set_tick_params(labelbottom=True)
    figure.tight_layout()
    _save(figure, path)


def plot_final_regret(runs: pd.DataFrame, path: Path, benchmark: str = "") -> None:
    """Box plot of each method's final regret over seeds, with every run as a dot; methods by median."""
    methods = sorted(_methods(runs), key=lambda m: (runs.loc[runs["method"] == m, "regret"].median(), _methods(runs).index(m)))
    values = [runs.loc[runs["method"] == m, "regret"].dropna().to_numpy() for m in methods]
    figure, axis = plt.subplots(figsize=(max(6, 0.9 * len(methods) + 2), 4.5))
    axis.boxplot(values, tick_labels=methods, showfliers=False, medianprops={"color": "black"})
    rng = np.random.default_rng(0)  # jitter only: fixed so the figure is the same each time
    colours = method_colours(_methods(runs))
    for position, (method, regrets) in enumerate(zip(methods, values), start=1):
        axis.scatter(position + rng.uniform(-0.15, 0.15, regrets.size), regrets, s=10, alpha=0.6,
                     color=colours[method], zorder=3)
    _regret_axis(axis, linear_threshold(runs["regret"].to_numpy()), "final regret")
    axis.tick_params(axis="x", labelrotation=30)
    axis.grid(True, axis="y", which="both", alpha=0.3)
    axis.set_title(_title(benchmark, runs) + "\nfinal regret (box: quartiles; dots: runs)")
    figure.tight_layout()
    _save(figure, path)


def draw_ranks(axis, runs: pd.DataFrame, colours: dict[str, str] | None = None, rows: int | None = None) -> None:
    """On ``axis``: each method's mean rank by final regret across seeds (1 = best) with ± 1 standard error.

    ``colours`` maps methods to colours (default: by order in ``runs``); ``rows`` fixes the height of the
    y axis in methods, so that panels with fewer methods keep the same spacing.
    """
    ranks = ranks_by_seed(final_regrets(runs))
    mean = ranks.mean().sort_values()
    error = (ranks.std(ddof=1) / np.sqrt(len(ranks))).reindex(mean.index) if len(ranks) > 1 else None
    positions = np.arange(len(mean))
    colours = colours or method_colours(_methods(runs))
    axis.errorbar(mean.to_numpy(), positions, xerr=None if error is None else error.to_numpy(), fmt="none",
                  ecolor="0.4", capsize=3)
    axis.scatter(mean.to_numpy(), positions, color=[colours[m] for m in mean.index], zorder=3)
    axis.set_yticks(positions, mean.index)
    axis.set_ylim((rows or len(mean)) - 0.5, -0.5)
    axis.set_xlim(0.5, len(mean) + 0.5)
    axis.set_xlabel(f"mean rank by final regret (1 = best; ± 1 s.e.; {len(ranks)} seeds)")
    axis.grid(True, axis="x", alpha=0.3)


def plot_ranks(runs: pd.DataFrame, path: Path, benchmark: str = "") -> None:
    """Mean rank of each method by final regret across seeds (1 = best), with ± 1 standard error."""
    figure, axis = plt.subplots(figsize=(6.5, max(2.5, 0.45 * runs["method"].nunique() + 1.2)))
    draw_ranks(axis, runs)
    axis.set_title(_title(benchmark, runs))
    figure.tight_layout()
    _save(figure, path)
