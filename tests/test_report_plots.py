"""Comparison plots and summary.md: files are written, medians need half of the runs, the layout adapts."""
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from harness.comparison import compare
from harness.plots import (MAX_METHODS_IN_ONE_PANEL, anytime_quantiles, linear_threshold, plot_anytime,
                           plot_final_regret, plot_ranks)
from tests.conftest import synthetic_table


def fake_comparison(n_methods: int, seeds: int = 4):
    rng = np.random.default_rng(0)
    runs, steps = [], []
    for m in range(n_methods):
        for seed in range(seeds):
            times = np.sort(rng.uniform(10, 1000, 3))
            regrets = np.sort(rng.uniform(0, 1, 3))[::-1] * (m + 1) / n_methods
            regrets[-1] = 0.0 if seed == 0 else regrets[-1]
            steps += [{"method": f"m{m}", "seed": seed, "time": t, "regret": r} for t, r in zip(times, regrets)]
            runs.append({"method": f"m{m}", "seed": seed, "budget": 1000.0, "regret": regrets[-1]})
    return pd.DataFrame(runs), pd.DataFrame(steps)


def test_median_only_where_half_of_the_runs_have_an_incumbent():
    anytime = pd.DataFrame({"method": "m", "seed": [0, 1, 2, 3], "time": [1.0, 2.0, 3.0, 4.0],
                            "regret": [0.4, 0.2, 0.8, 0.6]})
    q25, median, q75 = anytime_quantiles(anytime, "m", np.array([1.5, 2.5, 3.5, 4.5]))
    assert np.isnan(median[0]) and np.isnan(q25[0])            # 1 of 4 runs
    assert median[1:].tolist() == pytest.approx([0.3, 0.4, 0.5])  # medians of {.4,.2}, {.4,.2,.8}, all four


def test_linear_threshold_is_the_smallest_positive_regret_rounded_down():
    assert linear_threshold(np.array([0.0, 0.083, 0.5, np.nan])) == pytest.approx(0.01)
    assert linear_threshold(np.array([0.0, 0.0])) == 1.0


@pytest.mark.parametrize("n_methods", [3, MAX_METHODS_IN_ONE_PANEL + 2])
def test_plots_are_written(tmp_path, n_methods):
    runs, anytime = fake_comparison(n_methods)
    plot_anytime(anytime, runs, tmp_path / "anytime.png", benchmark="fake")
    plot_final_regret(runs, tmp_path / "final_regret.png", benchmark="fake")
    plot_ranks(runs, tmp_path / "ranks.png", benchmark="fake")
    images = {name: imread(tmp_path / name) for name in ("anytime.png", "final_regret.png", "ranks.png")}
    assert all(image.shape[0] > 200 and image.shape[1] > 300 for image in images.values())
    # Many methods: small multiples, three panels a row, so the figure is much taller than one panel.
    tall = images["anytime.png"].shape[0] > 800
    assert tall == (n_methods > MAX_METHODS_IN_ONE_PANEL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anytime.png", "final_regret.png", "ranks.png"]


def test_compare_writes_the_new_plots_and_directional_tests(tmp_path):
    path = tmp_path / "t.npz"
    synthetic_table(n_archs=60, n_epochs=27).save(path)
    out = tmp_path / "out"
    compare(str(path), ["random", "hyperband"], budget=2000, seeds=3, out=out, processes=1)
    for name in ("anytime.png", "final_regret.png", "ranks.png"):
        assert imread(out / name).shape[0] > 200
    summary = (out / "summary.md").read_text()
    assert "One-sided Wilcoxon signed-rank tests at 100% of the budget" in summary
    assert "| better | worse | pairs (differing) | median paired difference | p (one-sided) | p (Holm) |" in summary
    # Hyperband beats random on all 3 seeds, but 3 seeds cannot give p < 0.05 even before correction.
    final = summary.split("at 100% of the budget")[1]
    assert "| hyperband | random | 3 (3) |" in final and "| 0.12 | 0.25 |" in final
    assert "2^-3 = 0.125" in final and "at least 6 seeds" in final
