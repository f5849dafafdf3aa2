"""The summary of a comparison as Markdown."""
from __future__ import annotations

import pandas as pd

from benchmarks.tabular import TabularBenchmark
from harness.metrics import BUDGET_FRACTIONS, regrets_at_fraction
from harness.statistics import ALPHA, final_regrets, mean_ranks, paired_tests, seeds_needed, smallest_one_sided_p


def _fmt(value: float) -> str:
    return "nan" if pd.isna(value) else f"{value:.4g}"


def _p(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.2g}"


def paired_tests_markdown(tests: pd.DataFrame, alpha: float = ALPHA) -> list[str]:
    """The rows of :func:`harness.statistics.paired_tests` as a Markdown table, most convincing first,
    with a note when the number of seeds cannot give a corrected p below alpha."""
    tested = tests[tests["p_value"].notna()]
    lines = ["| better | worse | pairs (differing) | median paired difference | p (one-sided) | p (Holm) | |",
             "|---|---|---|---|---|---|---|"]
    for test in tests.sort_values(["p_holm", "p_value"], na_position="last").itertuples():
        verdict = f"better at {alpha:g}" if test.significant else test.note
        lines.append(f"| {test.better} | {test.worse} | {test.pairs} ({test.nonzero}) | {_fmt(test.median_difference)} | "
                     f"{_p(test.p_value)} | {_p(test.p_holm)} | {verdict} |")
    n_tests = 2 * len(tested)
    if n_tests:
        most = int(tested["nonzero"].max())
        if n_tests * smallest_one_sided_p(most) > alpha:
            lines += ["", f"**Note:** with at most {most} differing pairs the smallest one-sided p is "
                          f"2^-{most} = {smallest_one_sided_p(most):.3g}; Holm over the {n_tests} directional tests "
                          f"of this table multiplies the smallest by {n_tests}, so no adjusted p here can reach "
                          f"{alpha:g}. That needs at least {seeds_needed(n_tests, alpha)} seeds on which the two "
                          "methods' regrets differ."]
    return lines


def summary_markdown(runs: pd.DataFrame, anytime: pd.DataFrame, table: TabularBenchmark) -> str:
    """Per method: regret mean ± std, median and mean rank, final valid/test; then one-sided paired tests
    (Holm-corrected) of which method has lower regret at several budget fractions."""
    meta = table.metadata
    direction = "higher" if meta.higher_is_better else "lower"
    ranks = mean_ranks(final_regrets(runs))
    lines = [f"# Comparison on {meta.name}", "",
             f"Metric: {meta.metric} ({direction} is better). Regret = distance of the chosen architecture's "
             f"max-epoch validation metric from the best in the benchmark ({_fmt(table.best_final('valid')[1])}); "
             f"lower is better. Budget: {_fmt(runs['budget'].iloc[0])} simulated seconds; "
             f"{runs['seed'].nunique()} seeds per method. Mean rank: by final regret among all methods on the same "
             f"seed (1 = best, ties share), over {int(ranks['seeds'].iloc[0])} seeds.", "",
             "| method | runs | regret mean ± std | regret median | mean rank | final valid (mean) | final test (mean) | "
             "evaluations (mean) | epochs paid (mean) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method, group in runs.groupby("method", sort=False):
        lines.append(f"| {method} | {len(group)} | {_fmt(group['regret'].mean())} ± {_fmt(group['regret'].std())} | "
                     f"{_fmt(group['regret'].median())} | {_fmt(ranks.loc[method, 'mean_rank'])} | "
                     f"{_fmt(group['final_valid'].mean())} | {_fmt(group['final_test'].mean())} | "
                     f"{_fmt(group['n_evaluations'].mean())} | {_fmt(group['epochs_paid'].mean())} |")
    lines += ["", "## Which method has lower regret?", "",
              "Each row is a one-sided Wilcoxon signed-rank test, paired by seed, that *better* has lower regret "
              "than *worse* (each pair is tested both ways; the row shows the direction with the smaller p). "
              "Runs with no incumbent yet are left out of the pair; pairs with equal regrets are dropped by the test. "
              "Median paired difference = median over seeds of regret(better) − regret(worse), the effect size. "
              f"p (Holm): Holm's correction over all directional tests of the table; \"better at {ALPHA:g}\" when it "
              f"is <= {ALPHA:g}. A pair with no differing seed is not tested (—)."]
    for fraction in BUDGET_FRACTIONS:
        tests = paired_tests(regrets_at_fraction(runs, anytime, fraction))
        lines += ["", f"## One-sided Wilcoxon signed-rank tests at {fraction:.0%} of the budget", ""]
        lines += paired_tests_markdown(tests)
    return "\n".join(lines) + "\n"
