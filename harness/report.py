"""The summary of a comparison as Markdown."""
from __future__ import annotations

import pandas as pd

from benchmarks.tabular import TabularBenchmark
from harness.metrics import BUDGET_FRACTIONS, regrets_at_fraction, wilcoxon_table


def _fmt(value: float) -> str:
    return "nan" if pd.isna(value) else f"{value:.4g}"


def summary_markdown(runs: pd.DataFrame, anytime: pd.DataFrame, table: TabularBenchmark) -> str:
    """Per method: regret mean ± std and median, final valid/test; Wilcoxon tests at several budget fractions."""
    meta = table.metadata
    direction = "higher" if meta.higher_is_better else "lower"
    lines = [f"# Comparison on {meta.name}", "",
             f"Metric: {meta.metric} ({direction} is better). Regret = distance of the chosen architecture's "
             f"max-epoch validation metric from the best in the benchmark ({_fmt(table.best_final('valid')[1])}). "
             f"Budget: {_fmt(runs['budget'].iloc[0])} simulated seconds; {runs['seed'].nunique()} seeds per method.", "",
             "| method | runs | regret mean ± std | regret median | final valid (mean) | final test (mean) | evaluations (mean) | epochs paid (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for method, group in runs.groupby("method", sort=False):
        lines.append(f"| {method} | {len(group)} | {_fmt(group['regret'].mean())} ± {_fmt(group['regret'].std())} | "
                     f"{_fmt(group['regret'].median())} | {_fmt(group['final_valid'].mean())} | "
                     f"{_fmt(group['final_test'].mean())} | {_fmt(group['n_evaluations'].mean())} | "
                     f"{_fmt(group['epochs_paid'].mean())} |")
    for fraction in BUDGET_FRACTIONS:
        regrets = regrets_at_fraction(runs, anytime, fraction)
        tests = wilcoxon_table(regrets)
        lines += ["", f"## Wilcoxon signed-rank tests at {fraction:.0%} of the budget", "",
                  "Paired by seed; runs with no incumbent yet at that time are left out of the pair.", "",
                  "| method A | method B | pairs | median regret A | median regret B | p-value |", "|---|---|---|---|---|---|"]
        for test in tests.itertuples():
            lines.append(f"| {test.method_a} | {test.method_b} | {test.n} | {_fmt(test.median_a)} | "
                         f"{_fmt(test.median_b)} | {_fmt(test.p_value)} |")
    return "\n".join(lines) + "\n"

