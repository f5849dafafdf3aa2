"""``pmfnas predictor-eval``: how well predictors rank unseen architectures from early curves.

For each seed: K architectures are drawn as the training set (their complete curves are what a search
would have paid for); every other architecture that has a complete curve is a test architecture, seen
only up to fraction F of max epochs. Reported per predictor and F: Spearman ρ, Kendall τ, MAE and the
coverage of the 90 % interval (mean ± 1.645·std) on the test architectures.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.oracle import TabularOracle
from benchmarks.registry import load_benchmark, space_for
from search.base import Problem
from search.predictor import (LastValuePredictor, LearningCurvePredictor, PartialCurve, PowerLawPredictor,
                              spread_epochs, training_set)

PREDICTORS = ("forest", "last_value", "power_law")
Z90 = 1.6448536269514722


def evaluate_predictors(benchmark: str, fractions: Sequence[float] = (0.05, 0.1, 0.25, 0.5), train_archs: int = 50,
                        seeds: int = 5, max_test: int | None = None) -> pd.DataFrame:
    """One row per (seed, fraction, predictor) with spearman, kendall, mae, coverage90."""
    table = load_benchmark(benchmark)
    if table.epochs.size < 2:
        raise ValueError(f"benchmark {benchmark!r} has {table.epochs.size} fidelity; predictor-eval needs learning curves")
    if not all(0 < f < 1 for f in fractions):
        raise ValueError(f"fractions {list(fractions)} must lie strictly between 0 and 1")
    space = space_for(table)
    rows = []
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
            raise ValueError(f"train_archs={train_archs} must be in [2, {len(archs) - 1}] for {benchmark!r}")
        order = np.random.default_rng(split_seed).permutation(len(archs))
        train = [archs[i] for i in order[:train_archs]]
        test = [archs[i] for i in order[train_archs:]]
        if max_test is not None:
            test = test[:max_test]
        samples, targets = training_set([space.encode(a) for a in train], [curves[a] for a in train],
                                        oracle.max_epochs, spread_epochs(oracle.fidelities[:-1], 20))
        models = {
            "forest": LearningCurvePredictor(oracle.max_epochs, np.random.default_rng(model_seed)).fit(
                samples, targets),
            "last_value": LastValuePredictor(oracle.max_epochs).fit(samples, targets),
            "power_law": PowerLawPredictor(oracle.max_epochs).fit(samples, targets),
        }
        truth = np.array([curves[a][1][-1] for a in test])
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
    return pd.DataFrame(rows)


def write_predictor_eval(results: pd.DataFrame, out: str | os.PathLike, title: str) -> None:
    """results.csv (per seed), summary.csv (mean ± std over seeds) and rank_correlation.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False, float_format="%.6g")
    summary = results.groupby(["predictor", "fraction"])[["spearman", "kendall", "mae", "coverage90"]].agg(["mean", "std"])
    summary.columns = [f"{a}_{b}" for a, b in summary.columns]
    summary.reset_index().to_csv(out / "summary.csv", index=False, float_format="%.6g")
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
    figure.savefig(out / "rank_correlation.png", dpi=120)
    plt.close(figure)
