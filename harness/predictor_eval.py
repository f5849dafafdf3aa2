"""``pmfnas predictor-eval``: how well predictors rank unseen architectures from early curves.

For each seed: K architectures are drawn as the training set (their complete curves are what a search
would have paid for); every other architecture that has a complete curve is a test architecture, seen
only up to fraction F of max epochs. Reported per predictor and F: Spearman ρ, Kendall τ, MAE and the
coverage of the 90 % interval (mean ± 1.645·std) on the test architectures.

On large tables ``max_test`` bounds the test set to a seeded random sample (the first ``max_test`` of
the split's random order), and a progress bar on stderr shows the seeds and fractions done.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.files import atomic_output, atomic_write
from benchmarks.oracle import TabularOracle
from benchmarks.registry import load_benchmark, space_for
from benchmarks.tabular import TabularBenchmark, check_searchable
from search.base import Problem
from search.predictor import (LastValuePredictor, LearningCurvePredictor, PartialCurve, PowerLawPredictor,
                              spread_epochs, training_set)

PREDICTORS = ("forest", "last_value", "power_law")
Z90 = 1.6448536269514722


def evaluate_predictors(benchmark: str | TabularBenchmark, fractions: Sequence[float] = (0.05, 0.1, 0.25, 0.5),
                        train_archs: int = 50, seeds: int = 5, max_test: int | None = None,
                        progress: bool = False) -> pd.DataFrame:
    """One row per (seed, fraction, predictor) with spearman, kendall, mae, coverage90.

    ``benchmark`` is a name or path for :func:`benchmarks.registry.load_benchmark`, or a loaded table.
    ``max_test`` keeps a seeded random sample of at most that many test architectures per seed (default:
    all). ``progress`` shows a bar on stderr.
    """
    table = benchmark if isinstance(benchmark, TabularBenchmark) else load_benchmark(benchmark)
    name = table.metadata.name if isinstance(benchmark, TabularBenchmark) else benchmark
    check_searchable(table)
    if table.epochs.size < 2:
        raise ValueError(f"benchmark {name!r} has {table.epochs.size} fidelity; predictor-eval needs learning curves")
    if not all(0 < f < 1 for f in fractions):
        raise ValueError(f"fractions {list(fractions)} must lie strictly between 0 and 1")
    if len(set(fractions)) != len(fractions):
        raise ValueError(f"fractions {list(fractions)} name a fraction twice (its rows would count twice in the std)")
    if max_test is not None and (isinstance(max_test, bool) or not isinstance(max_test, (int, np.integer))
                                 or max_test < 1):
        raise ValueError(f"max_test={max_test!r} must be a positive number of test architectures")
    space = space_for(table)
    rows = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=seeds * (1 + len(fractions)), desc="predictor-eval", unit="step", file=sys.stderr)
    for seed in range(seeds):
        oracle_seed, split_seed, model_seed = np.random.SeedSequence(seed).spawn(3)
        oracle = TabularOracle(table, space, np.random.default_rng(oracle_seed))
        problem = Problem(space, oracle.fidelities, oracle.higher_is_better)
        curves = {}
        for arch in table.arch_ids.tolist():
            evaluation = oracle.evaluate(arch, oracle.max_epochs)
            if not evaluation.failed:
                curves[arch] = (evaluation.epochs, evaluation.values)
        archs = sorted(curves)
        if train_archs < 2 or train_archs >= len(archs):
            raise ValueError(f"train_archs={train_archs} must be in [2, {len(archs) - 1}] for {name!r}")
        order = np.random.default_rng(split_seed).permutation(len(archs))
        train = [archs[i] for i in order[:train_archs]]
        test = [archs[i] for i in order[train_archs:]]
        if max_test is not None:
            test = test[:max_test]  # the split order is random, so its head is a seeded sample
        samples, targets = training_set([space.encode(a) for a in train], [curves[a] for a in train],
                                        oracle.max_epochs, spread_epochs(oracle.fidelities[:-1], 20))
        models = {
            "forest": LearningCurvePredictor(oracle.max_epochs, np.random.default_rng(model_seed)).fit(
                samples, targets),
            "last_value": LastValuePredictor(oracle.max_epochs).fit(samples, targets),
            "power_law": PowerLawPredictor(oracle.max_epochs).fit(samples, targets),
        }
        truth = np.array([curves[a][1][-1] for a in test])
        if bar is not None:
            bar.set_postfix(seed=seed)
            bar.update(1)
        for fraction in fractions:
            cut = problem.fidelity_at_least(fraction * oracle.max_epochs)
            partial = []
            for arch in test:
                epochs, values = curves[arch]
                upto = int(np.searchsorted(epochs, cut, side="right"))
                partial.append(PartialCurve(space.encode(arch), epochs[:upto], values[:upto]))
            for name, model in models.items():
                mean, std = model.predict(partial)
                rows.append({
                    "seed": seed, "fraction": fraction, "cut_epoch": cut, "predictor": name,
                    "spearman": float(stats.spearmanr(mean, truth).statistic),
                    "kendall": float(stats.kendalltau(mean, truth).statistic),
                    "mae": float(np.mean(np.abs(mean - truth))),
                    "coverage90": float(np.mean(np.abs(truth - mean) <= Z90 * std)),
                    "n_train": len(train), "n_test": len(test)})
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows)


METRICS = ("spearman", "kendall", "mae", "coverage90")


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every metric, per predictor and fraction (columns ``<metric>_mean/_std``)."""
    summary = results.groupby(["predictor", "fraction"])[list(METRICS)].agg(["mean", "std"])
    summary.columns = [f"{a}_{b}" for a, b in summary.columns]
    return summary.reset_index()


def summary_markdown(results: pd.DataFrame, title: str, command: str | None = None) -> str:
    """The summary as Markdown: per fraction, each predictor's metrics (mean ± std over seeds)."""
    summary = summary_table(results)
    seeds = results["seed"].nunique()
    n_train = sorted(results["n_train"].unique().tolist())
    low, high = int(results["n_test"].min()), int(results["n_test"].max())
    n_test = f"{low}" if low == high else f"{low}–{high}"
    lines = [f"# Predictor evaluation: {title}", ""]
    if command:
        lines += [f"Made by `{command}`.", ""]
    lines += [f"{seeds} seeds (train/test splits); {', '.join(map(str, n_train))} training architectures with "
              f"complete curves; {n_test} test architectures per seed, each seen only up "
              "to fraction F of max epochs. Spearman ρ and Kendall τ: rank agreement of the predicted and true "
              "max-epoch values (higher is better); MAE: mean absolute error; coverage90: share of true values inside "
              "the 90 % interval mean ± 1.645·std (0.9 is calibrated). Mean ± std over seeds.", "",
              "| F | predictor | Spearman ρ | Kendall τ | MAE | coverage90 |", "|---|---|---|---|---|---|"]
    for row in summary.sort_values(["fraction", "predictor"]).itertuples():
        cells = [f"{getattr(row, f'{m}_mean'):.3f} ± {getattr(row, f'{m}_std'):.3f}" if seeds > 1
                 else f"{getattr(row, f'{m}_mean'):.3f}" for m in METRICS]
        lines.append(f"| {row.fraction:g} | {row.predictor} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_predictor_eval(results: pd.DataFrame, out: str | os.PathLike, title: str, command: str | None = None) -> None:
    """results.csv (per seed), summary.csv (mean ± std over seeds), summary.md and rank_correlation.png.

    ``command`` (the command line that made the results) is stated in summary.md.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.csv", results.to_csv(index=False, float_format="%.6g"))
    atomic_write(out / "summary.csv", summary_table(results).to_csv(index=False, float_format="%.6g"))
    atomic_write(out / "summary.md", summary_markdown(results, title, command))
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, group in results.groupby("predictor"):
        stats_by_f = group.groupby("fraction")["spearman"].agg(["mean", "std"])
        axis.errorbar(stats_by_f.index, stats_by_f["mean"], yerr=stats_by_f["std"], marker="o", capsize=3, label=name)
    axis.set_xlabel("fraction of max epochs observed (F)")
    axis.set_ylabel("Spearman ρ on unseen architectures")
    axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    try:
        with atomic_output(out / "rank_correlation.png", suffix=".tmp.png") as tmp:
            figure.savefig(tmp, dpi=120)
    finally:
        plt.close(figure)
