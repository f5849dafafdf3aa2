import numpy as np
import pytest
from scipy import stats

from harness.predictor_eval import evaluate_predictors
from search.predictor import (LastValuePredictor, LearningCurvePredictor, PartialCurve, PowerLawPredictor,
                              power_law_extrapolation, training_set)

MAX = 50


def curves_that_cross(n, seed):
    """Fast starters that plateau low vs slow starters that end high: the last value ranks them wrongly."""
    rng = np.random.default_rng(seed)
    epochs = np.arange(1, MAX + 1)
    final = rng.uniform(60, 95, n)
    rate = np.where(final > 80, rng.uniform(0.03, 0.06, n), rng.uniform(0.3, 0.6, n))
    values = final[:, None] * (1 - np.exp(-rate[:, None] * epochs)) + rng.normal(0, 0.2, (n, MAX))
    encodings = np.column_stack([rate + rng.normal(0, 0.01, n), rng.random(n)])
    return epochs, values, encodings


def prefixes(epochs, values, encodings, cut):
    return [PartialCurve(encodings[i], epochs[:cut], values[i, :cut]) for i in range(len(values))]


def test_power_law_recovers_an_exact_power_law():
    epochs = np.arange(1, 11)
    values = 90 - 40 * epochs ** -0.7
    assert power_law_extrapolation(epochs, values, 200) == pytest.approx(90 - 40 * 200 ** -0.7, rel=1e-3)


def test_cold_start_is_the_last_value_with_a_wide_interval_that_shrinks():
    predictor = LearningCurvePredictor(MAX, np.random.default_rng(0))
    early = PartialCurve(np.zeros(2), np.arange(1, 6), np.array([10.0, 20, 30, 35, 38]))
    late = PartialCurve(np.zeros(2), np.arange(1, 41), np.linspace(10, 60, 40))
    assert predictor.is_cold
    mean, std = predictor.predict([early, late])
    assert mean.tolist() == [38.0, 60.0]
    assert std[0] > 20 and std[1] < std[0]


def test_forest_needs_min_curves_then_beats_the_last_value_on_crossing_curves():
    epochs, values, encodings = curves_that_cross(120, seed=1)
    train, test = slice(0, 60), slice(60, 120)
    samples, targets = training_set(list(encodings[train]), [(epochs, v) for v in values[train]], MAX, [5, 10, 15])
    few = LearningCurvePredictor(MAX, np.random.default_rng(0), min_curves=5)
    few.fit(samples[:12], targets[:12], n_complete=4)
    assert few.is_cold
    forest = LearningCurvePredictor(MAX, np.random.default_rng(0)).fit(samples, targets, n_complete=60)
    assert not forest.is_cold
    partial = prefixes(epochs, values[test], encodings[test], 5)
    truth = values[test, -1]
    forest_rho = stats.spearmanr(forest.predict(partial)[0], truth).statistic
    last_rho = stats.spearmanr(LastValuePredictor(MAX).predict(partial)[0], truth).statistic
    assert forest_rho > 0.8 and forest_rho > last_rho + 0.3


def test_forest_interval_covers_about_ninety_percent():
    epochs, values, encodings = curves_that_cross(300, seed=2)
    samples, targets = training_set(list(encodings[:150]), [(epochs, v) for v in values[:150]], MAX, [5, 10, 15])
    partial = prefixes(epochs, values[150:], encodings[150:], 10)
    truth = values[150:, -1]
    model = LearningCurvePredictor(MAX, np.random.default_rng(0)).fit(samples, targets, n_complete=150)
    mean, std = model.predict(partial)
    coverage = np.mean(np.abs(truth - mean) <= 1.645 * std)
    assert 0.8 <= coverage <= 1.0
    # The baselines' intervals are learnt too; they are honest about their size but not as well centred.
    for baseline in (LastValuePredictor(MAX), PowerLawPredictor(MAX)):
        mean, std = baseline.fit(samples, targets).predict(partial)
        assert np.all(std > 0) and np.mean(np.abs(truth - mean) <= 1.645 * std) >= 0.5


def test_training_set_uses_only_complete_finite_curves():
    epochs = np.arange(1, 11)
    complete = (epochs, np.linspace(1, 2, 10))
    partial = (epochs[:5], np.linspace(1, 1.5, 5))
    diverged = (epochs, np.r_[np.linspace(1, 2, 9), np.nan])
    samples, targets = training_set([np.zeros(1)] * 3, [complete, partial, diverged], 10, [2, 5, 10])
    assert len(samples) == 2 and targets.tolist() == [2.0, 2.0]
    assert [s.epochs[-1] for s in samples] == [2, 5]


def test_regression_spearman_on_real_nbnlp_curves():
    # Measured 2026-11-27: forest Spearman at F = 0.1 with 50 training architectures, 3 seeds:
    # mean 0.935, min 0.926 (last value 0.903, power law 0.882). Threshold = measured minimum − 0.026.
    measured_min, margin = 0.926, 0.026
    results = evaluate_predictors("nbnlp-wt2", fractions=(0.1,), train_archs=50, seeds=3)
    forest = results[results["predictor"] == "forest"]
    assert forest["spearman"].min() >= measured_min - margin
    baseline = results[results["predictor"] == "last_value"]["spearman"].mean()
    assert forest["spearman"].mean() > baseline
