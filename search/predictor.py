"""Predict an architecture's max-epoch metric, with uncertainty, from its early learning curve.

Three predictors share one scikit-learn-like interface — ``fit(curves, targets)`` then
``predict(curves) -> (mean, std)`` — where a curve is a :class:`PartialCurve` (the architecture's
encoding and the epochs/values observed so far):

* :class:`LastValuePredictor` — the last observed value; its interval is learnt from how far final
  values moved from values seen at the same fraction of training (infinite before any data: one
  curve's own range says nothing about where finals go);
* :class:`PowerLawPredictor` — a power-law extrapolation ``y(t) = a + b·t^(-c)`` fitted by least
  squares to the observed prefix (:mod:`search.power_law`, vectorised over curves), with the same
  learnt interval;
* :class:`LearningCurvePredictor` — bagged regression trees over the encoding and curve features,
  predicting the change from the last value, with a bootstrap over architectures; its std is the
  grouped out-of-bag error at that fraction of training. The last value answers until it has seen
  ``min_curves`` complete curves (cold start).

They only ever see the curves they are given: whatever the search paid for.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.tree import DecisionTreeRegressor

from search.power_law import power_law_extrapolations

_FRACTION_BINS = np.array([0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0])


@dataclass(frozen=True)
class PartialCurve:
    """An architecture's encoding and the validation metric observed at ``epochs`` so far."""

    encoding: np.ndarray
    epochs: np.ndarray
    values: np.ndarray
    source: int | str | None = None  # the architecture a training prefix was cut from (groups the bootstrap)

    @property
    def last(self) -> float:
        return float(self.values[-1])


def power_law_extrapolation(epochs: np.ndarray, values: np.ndarray, max_epochs: int) -> float:
    """Value at ``max_epochs`` of ``a + b·t^(-c)`` fitted to the curve; the last value if it cannot be fitted.

    One curve of :func:`search.power_law.power_law_extrapolations` (which fits many at once).
    """
    return float(power_law_extrapolations([(epochs, values)], max_epochs)[0])


def curve_features(curve: PartialCurve, max_epochs: int) -> np.ndarray:
    """Fraction trained, last/first/max/min values, mean of the last three, recent and overall slopes."""
    e = np.asarray(curve.epochs, dtype=float)
    v = np.asarray(curve.values, dtype=float)
    k = min(3, v.size)
    recent = (v[-1] - v[-k]) / (e[-1] - e[-k]) if k > 1 else 0.0
    overall = (v[-1] - v[0]) / (e[-1] - e[0]) if v.size > 1 else 0.0
    return np.array([e[-1] / max_epochs, np.log(e[-1]), v[-1], v[0], v.max(), v.min(), v[-k:].mean(),
                     recent, overall], dtype=float)


class _ResidualInterval:
    """How far finals move from a predictor's estimate, per fraction-of-training bin, learnt across architectures.

    Split-conformal in spirit: the residuals come from estimates that did not see the architecture they
    are measured on (the baselines learn nothing about means; the forest gives grouped out-of-bag
    estimates). The std of a bin is the root mean square of its residuals; a bin with fewer than
    ``_MIN_BIN`` residuals borrows from the nearest earlier bin (more uncertain), and the result never
    grows with the fraction trained. Before any data it is infinite: nothing is known about the scale.
    """

    _MIN_BIN = 5

    def __init__(self, max_epochs: int):
        self.max_epochs = max_epochs
        self._std_per_bin: np.ndarray | None = None

    def fit(self, fractions: np.ndarray, residuals: np.ndarray) -> None:
        keep = np.isfinite(residuals)
        fractions, residuals = fractions[keep], residuals[keep]
        if residuals.size == 0:
            self._std_per_bin = None
            return
        bins = np.digitize(fractions, _FRACTION_BINS[1:-1])
        stds = np.full(_FRACTION_BINS.size - 1, np.nan)
        for b in range(stds.size):
            chosen = residuals[bins == b]
            if chosen.size >= self._MIN_BIN:
                stds[b] = np.sqrt(np.mean(chosen ** 2))
        overall = float(np.sqrt(np.mean(residuals ** 2)))
        for b in range(stds.size):
            if np.isnan(stds[b]):
                stds[b] = stds[b - 1] if b > 0 else overall
        # Knowing more of a curve never makes its final less certain.
        self._std_per_bin = np.maximum.accumulate(stds[::-1])[::-1]

    def std(self, curves: Sequence[PartialCurve]) -> np.ndarray:
        if self._std_per_bin is None:
            return np.full(len(curves), np.inf)
        fractions = np.array([c.epochs[-1] / self.max_epochs for c in curves])
        return self._std_per_bin[np.digitize(fractions, _FRACTION_BINS[1:-1])] + 1e-9


class _BaselinePredictor:
    """A fixed rule for the mean; the interval is learnt from the training curves.

    After ``fit``, ``oob_prediction_`` holds the estimate for each training curve: the rule learns
    nothing from the curves, so these are honest out-of-sample estimates.
    """

    def __init__(self, max_epochs: int):
        if max_epochs < 1:
            raise ValueError(f"max_epochs={max_epochs} must be at least 1")
        self.max_epochs = max_epochs
        self._interval = _ResidualInterval(max_epochs)
        self.oob_prediction_ = np.zeros(0)

    def estimate(self, curve: PartialCurve) -> float:
        raise NotImplementedError

    def estimates(self, curves: Sequence[PartialCurve]) -> np.ndarray:
        """:meth:`estimate` of every curve (a subclass may do them all at once)."""
        return np.array([self.estimate(c) for c in curves], dtype=float)

    def fit(self, curves: Sequence[PartialCurve], targets: Sequence[float]) -> "_BaselinePredictor":
        if len(curves) != len(targets):
            raise ValueError(f"{len(curves)} curves and {len(targets)} targets: fit needs one target per curve")
        estimates = self.estimates(curves)
        fractions = np.array([c.epochs[-1] / self.max_epochs for c in curves], dtype=float)
        self._interval.fit(fractions, np.asarray(targets, dtype=float) - estimates)
        self.oob_prediction_ = estimates
        return self

    def predict(self, curves: Sequence[PartialCurve]) -> tuple[np.ndarray, np.ndarray]:
        mean = self.estimates(curves)
        return mean, self._interval.std(curves)


class LastValuePredictor(_BaselinePredictor):
    """Predicts the final value as the last observed value."""

    def estimate(self, curve: PartialCurve) -> float:
        return curve.last


class PowerLawPredictor(_BaselinePredictor):
    """Predicts the final value by extrapolating a power law fitted to the observed prefix."""

    def estimate(self, curve: PartialCurve) -> float:
        return power_law_extrapolation(curve.epochs, curve.values, self.max_epochs)

    def estimates(self, curves: Sequence[PartialCurve]) -> np.ndarray:
        # All at once: curves with the same epochs share one vectorised fit.
        return power_law_extrapolations([(c.epochs, c.values) for c in curves], self.max_epochs)


class LearningCurvePredictor:
    """Bagged regression trees on architecture + early-curve features; mean and std of the max-epoch metric.

    The trees predict the change from the last observed value. The bootstrap draws *architectures*
    (each training curve's ``source``), not prefixes, so a tree never sees another prefix of an
    architecture it is scored on: the out-of-bag estimates (``oob_prediction_``) are those of
    unseen architectures, and the std of a prediction is the root mean square of those out-of-bag
    residuals at its fraction of training (learnt across architectures, scale-free). Until it has
    curves of ``min_curves`` architectures, the :class:`LastValuePredictor` answers (cold start).

    Parameters: ``max_epochs``; ``rng`` (the forest's own stream); ``n_estimators`` (24);
    ``min_leaf`` (3); ``max_features`` (0.5); ``min_curves`` (5, at least :attr:`MIN_CURVES`).
    """

    #: Out-of-bag estimates need an architecture left out of each bootstrap, so two at the least.
    MIN_CURVES = 2

    def __init__(self, max_epochs: int, rng: np.random.Generator, n_estimators: int = 24, min_leaf: int = 3,
                 max_features: float = 0.5, min_curves: int = 5):
        if min_curves < self.MIN_CURVES:
            raise ValueError(f"min_curves={min_curves} must be at least {self.MIN_CURVES}")
        if n_estimators < 2:
            raise ValueError(f"n_estimators={n_estimators} must be at least 2")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.max_epochs = max_epochs
        self.rng = rng
        self.n_estimators = n_estimators
        self.min_leaf = min_leaf
        self.max_features = max_features
        self.min_curves = min_curves
        self.fallback = LastValuePredictor(max_epochs)
        self._trees: list[DecisionTreeRegressor] = []
        self._interval = _ResidualInterval(max_epochs)
        self.oob_prediction_ = np.zeros(0)

    def _features(self, curves: Sequence[PartialCurve]) -> np.ndarray:
        # The power-law extrapolation was tried as a feature too: it did not change the forest's accuracy
        # on NAS-Bench-NLP (Spearman 0.934 vs 0.935 at F = 0.1) and made each fit ~2× slower, so it is left out.
        # float32 C-contiguous: what the trees use internally, so predict can skip per-tree input checks.
        return np.ascontiguousarray(np.vstack([
            np.concatenate([np.asarray(c.encoding, dtype=float), curve_features(c, self.max_epochs)])
            for c in curves]), dtype=np.float32)

    def fit(self, curves: Sequence[PartialCurve], targets: Sequence[float]) -> "LearningCurvePredictor":
        """Fit on prefixes of complete curves; each curve's ``source`` names its architecture."""
        targets = np.asarray(targets, dtype=float)
        if len(curves) != targets.size:
            raise ValueError(f"{len(curves)} curves and {targets.size} targets: fit needs one target per curve")
        sources = [c.source for c in curves]
        if any(s is None for s in sources):
            raise ValueError("every training curve needs its source (the architecture it is a prefix of); "
                             "build them with training_set")
        self.fallback.fit(curves, targets)
        groups, group_of = np.unique(np.asarray(sources), return_inverse=True)
        self._trees = []
        if groups.size < self.min_curves:
            self.oob_prediction_ = self.fallback.oob_prediction_
            return self
        features = self._features(curves)
        last = np.array([c.last for c in curves])
        change = np.ascontiguousarray(targets - last, dtype=np.float64)
        if not (np.all(np.isfinite(features)) and np.all(np.isfinite(change))):
            raise ValueError("training curves and targets must be finite")
        oob_sum = np.zeros(targets.size)
        oob_count = np.zeros(targets.size)
        for _ in range(self.n_estimators):
            counts = np.bincount(self.rng.integers(groups.size, size=groups.size), minlength=groups.size)
            weight = counts[group_of].astype(float)
            inside = weight > 0
            tree = DecisionTreeRegressor(min_samples_leaf=self.min_leaf, max_features=self.max_features,
                                         random_state=int(self.rng.integers(2**31 - 1)))
            # The inputs were validated once above; per-tree checks were most of the fitting time.
            tree.fit(features[inside], change[inside], sample_weight=weight[inside], check_input=False)
            self._trees.append(tree)
            if not inside.all():
                oob_sum[~inside] += tree.tree_.predict(features[~inside])[:, 0]
                oob_count[~inside] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            self.oob_prediction_ = np.where(oob_count > 0, last + oob_sum / oob_count, np.nan)
        fractions = np.array([c.epochs[-1] / self.max_epochs for c in curves], dtype=float)
        self._interval.fit(fractions, targets - self.oob_prediction_)
        return self

    @property
    def is_cold(self) -> bool:
        return not self._trees

    def predict(self, curves: Sequence[PartialCurve]) -> tuple[np.ndarray, np.ndarray]:
        if not curves:
            return np.zeros(0), np.zeros(0)
        if self.is_cold:
            return self.fallback.predict(curves)
        features = self._features(curves)
        change = np.zeros(len(curves))
        for tree in self._trees:
            # Tree.predict on the fitted tree_ skips the estimator's per-call checks (most of the time here).
            change += tree.tree_.predict(features)[:, 0]
        mean = np.array([c.last for c in curves]) + change / len(self._trees)
        return mean, self._interval.std(curves)


def spread_epochs(epochs: Sequence[int], limit: int) -> list[int]:
    """Up to ``limit`` of ``epochs``, evenly spread and including the first and last."""
    epochs = list(epochs)
    if len(epochs) <= limit:
        return epochs
    picks = np.unique(np.round(np.linspace(0, len(epochs) - 1, limit)).astype(int))
    return [epochs[i] for i in picks]


def training_set(encodings: Sequence[np.ndarray], curves: Sequence[tuple[np.ndarray, np.ndarray]],
                 max_epochs: int, at_epochs: Sequence[int]) -> tuple[list[PartialCurve], np.ndarray]:
    """Prefixes of complete curves (one per epoch in ``at_epochs``) labelled with each curve's final value.

    Each prefix's ``source`` is the index of its curve in ``curves``.
    """
    samples, targets = [], []
    for index, (encoding, (epochs, values)) in enumerate(zip(encodings, curves)):
        epochs = np.asarray(epochs)
        values = np.asarray(values, dtype=float)
        if epochs[-1] != max_epochs or not np.all(np.isfinite(values)):
            continue
        for cut in at_epochs:
            if cut >= max_epochs:
                continue
            upto = int(np.searchsorted(epochs, cut, side="right"))
            if upto >= 1:
                samples.append(PartialCurve(np.asarray(encoding), epochs[:upto], values[:upto], source=index))
                targets.append(values[-1])
    return samples, np.asarray(targets, dtype=float)
