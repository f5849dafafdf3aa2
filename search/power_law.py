"""Power-law extrapolation of learning curves, ``y(t) = a + b·t^(-c)``, fitted to many curves at once.

The fit is least squares with ``a`` within three spans of the observed range and ``0.01 <= c <= 3``
(the bounds the project's power-law baseline always had). It is solved by variable projection: for a
fixed exponent ``c`` the model is linear in ``(a, b)``, so the best ``(a, b)`` and the squared error
have a closed form, vectorised over a matrix of curves that share their epochs. The error is profiled
on a grid of ``c`` (log-spaced over the bounds) and the best grid point refined by golden-section
search between its neighbours. This finds the best fit over ``c`` where ``scipy.optimize.curve_fit``
(trust-region reflective from ``c = 0.5``, which this replaces) finds a local one: the two agree on
curves with one minimum, and this one is ~1000× faster per curve (``tests/test_power_law.py``
compares them).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["C_BOUNDS", "fit_power_laws", "power_law_extrapolations"]

#: Bounds of the exponent ``c``.
C_BOUNDS = (0.01, 3.0)
#: ``a`` may lie this many spans of the observed values below their minimum or above their maximum:
#: it keeps extrapolations to max epochs physical.
A_SPANS = 3.0
_GRID = np.geomspace(*C_BOUNDS, 97)
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_REFINE_STEPS = 40
_BLOCK_ELEMENTS = 2_000_000


def _best_linear(powers: np.ndarray, values: np.ndarray, low: np.ndarray, high: np.ndarray):
    """Per curve, the least-squares ``(a, b)`` for fixed ``t^-c`` (``powers``), ``a`` clipped to its bounds.

    ``powers`` broadcasts against ``values`` (curves × epochs, or curves × grid × epochs); returns
    ``a``, ``b`` and the sum of squared errors, each of the leading shape.
    """
    x_mean = powers.mean(axis=-1, keepdims=True)
    y_mean = values.mean(axis=-1, keepdims=True)
    x_centred = powers - x_mean
    sxx = np.sum(x_centred * x_centred, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.sum(x_centred * (values - y_mean), axis=-1) / sxx
        a = y_mean[..., 0] - b * x_mean[..., 0]
        # With a at a bound, the best b for that a (the error is convex in (a, b), so this is the constrained optimum).
        clipped = np.clip(a, low, high)
        outside = clipped != a
        b_at_bound = np.sum(powers * (values - clipped[..., None]), axis=-1) / np.sum(powers * powers, axis=-1)
    a = clipped
    b = np.where(outside, b_at_bound, b)
    residual = values - a[..., None] - b[..., None] * powers
    return a, b, np.sum(residual * residual, axis=-1)


def fit_power_laws(epochs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, c)`` of the best bounded fit of ``a + b·t^(-c)`` to each row of ``values`` (n × len(epochs)).

    Rows must be finite; ``epochs`` positive. Bounds: ``a`` within ``A_SPANS`` spans of the row's range,
    ``c`` in ``C_BOUNDS``.
    """
    t = np.asarray(epochs, dtype=float).reshape(-1)
    y = np.atleast_2d(np.asarray(values, dtype=float))
    if y.shape[1] != t.size:
        raise ValueError(f"values have {y.shape[1]} columns for {t.size} epochs; expected one per epoch")
    if y.shape[0] == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    span = np.ptp(y, axis=1)
    low, high = y.min(axis=1) - A_SPANS * span, y.max(axis=1) + A_SPANS * span
    log_t = np.log(t)

    grid_powers = np.exp(-_GRID[:, None] * log_t[None, :])  # grid × epochs
    # Curves × grid × epochs temporaries, a block of curves at a time to bound memory (~16 MB each).
    block = max(1, _BLOCK_ELEMENTS // (_GRID.size * t.size))
    grid_error = np.vstack([
        _best_linear(grid_powers[None, :, :], y[i:i + block, None, :], low[i:i + block, None], high[i:i + block, None])[2]
        for i in range(0, y.shape[0], block)])
    best = np.nanargmin(np.where(np.isfinite(grid_error), grid_error, np.inf), axis=1)
    left = np.log(_GRID[np.maximum(best - 1, 0)])
    right = np.log(_GRID[np.minimum(best + 1, _GRID.size - 1)])

    def error_at(log_c: np.ndarray) -> np.ndarray:
        powers = np.exp(-np.exp(log_c)[:, None] * log_t[None, :])
        error = _best_linear(powers, y, low, high)[2]
        return np.where(np.isfinite(error), error, np.inf)

    # Golden-section search on log c between the best grid point's neighbours, all curves at once.
    x1, x2 = right - _GOLDEN * (right - left), left + _GOLDEN * (right - left)
    f1, f2 = error_at(x1), error_at(x2)
    for _ in range(_REFINE_STEPS):
        go_left = f1 <= f2  # the minimum lies in [left, x2]; otherwise in [x1, right]
        left, right = np.where(go_left, left, x1), np.where(go_left, x2, right)
        new_x1 = np.where(go_left, right - _GOLDEN * (right - left), x2)
        new_x2 = np.where(go_left, x1, left + _GOLDEN * (right - left))
        fresh = error_at(np.where(go_left, new_x1, new_x2))
        f1, f2 = np.where(go_left, fresh, f2), np.where(go_left, f1, fresh)
        x1, x2 = new_x1, new_x2
    refined = 0.5 * (left + right)
    candidates = np.stack([refined, np.log(_GRID[best])])
    errors = np.stack([error_at(candidates[0]), error_at(candidates[1])])
    log_c = candidates[np.argmin(errors, axis=0), np.arange(y.shape[0])]
    c = np.exp(log_c)
    a, b, _ = _best_linear(np.exp(-c[:, None] * log_t[None, :]), y, low, high)
    return a, b, c


def power_law_extrapolations(curves: Sequence[tuple[np.ndarray, np.ndarray]], max_epochs: float) -> np.ndarray:
    """The fitted power law of each ``(epochs, values)`` curve at ``max_epochs``.

    A curve with fewer than 3 values, a non-finite value or no change, or whose extrapolation is not
    finite, gets its last value. Curves with the same epochs are fitted together.
    """
    estimates = np.empty(len(curves))
    groups: dict[tuple, list[int]] = {}
    for i, (epochs, values) in enumerate(curves):
        values = np.asarray(values, dtype=float)
        estimates[i] = values[-1]
        if values.size >= 3 and np.all(np.isfinite(values)) and np.ptp(values) > 0:
            groups.setdefault(tuple(np.asarray(epochs, dtype=float).tolist()), []).append(i)
    for epochs, members in groups.items():
        values = np.vstack([np.asarray(curves[i][1], dtype=float) for i in members])
        a, b, c = fit_power_laws(np.asarray(epochs), values)
        with np.errstate(all="ignore"):
            at_max = a + b * float(max_epochs) ** -c
        estimates[members] = np.where(np.isfinite(at_max), at_max, estimates[members])
    return estimates
