"""The vectorised power-law fit: exact on power laws, as good as scipy's curve_fit on noisy curves."""
import warnings

import numpy as np
import pytest
from scipy.optimize import OptimizeWarning, curve_fit

from search.power_law import A_SPANS, C_BOUNDS, fit_power_laws, power_law_extrapolations


def test_recovers_exact_power_laws_fitted_together():
    epochs = np.arange(1, 21)
    truth = [(90.0, -40.0, 0.7), (2.0, 5.0, 1.5), (1.0, -0.5, 0.2)]
    values = np.vstack([a + b * epochs ** -c for a, b, c in truth])
    a, b, c = fit_power_laws(epochs, values)
    assert np.column_stack([a, b, c]) == pytest.approx(np.array(truth), rel=1e-5, abs=1e-6)


def _curve_fit_reference(epochs, values):
    """The fit this module replaced: scipy's curve_fit (TRF) from c = 0.5 with the same bounds."""
    span, last = np.ptp(values), values[-1]
    bounds = ([values.min() - A_SPANS * span, -np.inf, C_BOUNDS[0]], [values.max() + A_SPANS * span, np.inf, C_BOUNDS[1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        params, _ = curve_fit(lambda t, a, b, c: a + b * np.power(t, -c), epochs, values,
                              p0=(last, (values[0] - last) * epochs[0] ** 0.5, 0.5), bounds=bounds, maxfev=2000)
    return params


def _squared_error(epochs, values, a, b, c):
    return float(np.sum((values - a - b * epochs ** -c) ** 2))


def test_matches_curve_fit_on_noisy_saturating_curves():
    rng = np.random.default_rng(0)
    epochs = np.arange(1, 31)
    final = rng.uniform(50, 95, 60)
    rate = rng.uniform(0.05, 0.4, 60)
    values = final[:, None] * (1 - np.exp(-rate[:, None] * epochs)) + rng.normal(0, 0.3, (60, 30))
    a, b, c = fit_power_laws(epochs, values)
    estimates = power_law_extrapolations([(epochs, v) for v in values], 200)
    assert estimates == pytest.approx(a + b * 200.0 ** -c)
    for i, curve in enumerate(values):
        ref = _curve_fit_reference(epochs, curve)
        ours = _squared_error(epochs, curve, a[i], b[i], c[i])
        # Never a worse fit than curve_fit's, and the same extrapolation within 0.1 % of the curve's span.
        assert ours <= _squared_error(epochs, curve, *ref) * (1 + 1e-6) + 1e-9
        assert abs(estimates[i] - (ref[0] + ref[1] * 200.0 ** -ref[2])) <= 1e-3 * np.ptp(curve)


def test_respects_the_bounds():
    epochs = np.arange(1, 11)
    # Falls linearly: the unbounded best fit sends c to its floor and a far below the data.
    values = np.linspace(10.0, 1.0, 10)
    a, b, c = fit_power_laws(epochs, values[None, :])
    assert C_BOUNDS[0] <= c[0] <= C_BOUNDS[1]
    assert values.min() - A_SPANS * 9.0 <= a[0] <= values.max() + A_SPANS * 9.0


def test_curves_it_cannot_fit_get_their_last_value():
    curves = [(np.arange(1, 3), np.array([1.0, 2.0])),          # two points
              (np.arange(1, 6), np.full(5, 3.0)),                # flat
              (np.arange(1, 6), np.array([1.0, 2, np.nan, 3, 4]))]  # not finite
    assert power_law_extrapolations(curves, 50).tolist() == [2.0, 3.0, 4.0]


def test_rejects_values_that_do_not_match_the_epochs():
    with pytest.raises(ValueError, match="values have 4 columns for 5 epochs"):
        fit_power_laws(np.arange(1, 6), np.zeros((2, 4)))
