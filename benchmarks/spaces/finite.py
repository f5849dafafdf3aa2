"""A search space that exists only as the list of architectures a table recorded (e.g. NAS-Bench-NLP).

There is no grammar to mutate, so "one mutation away" means one of the ``k`` nearest architectures in
the standardised feature space the table provides. Without features every other architecture is a
neighbour and the encoding is empty.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from benchmarks.spaces.base import ArchitectureError


class FiniteSpace:
    """The architectures of a table, addressed by their identifiers."""

    def __init__(self, name: str, arch_ids: Sequence[str], features: np.ndarray | None = None,
                 feature_names: Sequence[str] = (), k_neighbours: int = 8):
        if k_neighbours < 1:
            raise ValueError(f"k_neighbours={k_neighbours} must be at least 1")
        self.name = name
        self.arch_ids = [str(a) for a in arch_ids]
        if len(self.arch_ids) < 2:
            raise ValueError(f"a finite space needs at least 2 architectures, got {len(self.arch_ids)}")
        self._index = {a: i for i, a in enumerate(self.arch_ids)}
        self.feature_names = tuple(feature_names)
        if features is None:
            self._features = np.zeros((len(self.arch_ids), 0))
        else:
            self._features = np.asarray(features, dtype=np.float64)
        self._k = min(k_neighbours, len(self.arch_ids) - 1)
        scale = self._features.std(axis=0) if self._features.size else np.ones(0)
        self._standardised = (self._features - self._features.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
        self._neighbours: dict[int, list[str]] = {}

    def parse(self, text: str) -> str:
        key = str(text).strip()
        if key not in self._index:
            raise ArchitectureError(f"{text!r} is not an architecture of space {self.name!r} "
                                    f"({len(self.arch_ids)} architectures, e.g. {self.arch_ids[0]!r})")
        return key

    def sample(self, rng: np.random.Generator) -> str:
        return self.arch_ids[int(rng.integers(len(self.arch_ids)))]

    def neighbours(self, arch: str) -> list[str]:
        if self._features.shape[1] == 0:
            return [a for a in self.arch_ids if a != arch]
        row = self._index[self.parse(arch)]
        if row not in self._neighbours:
            # One row of distances at a time: a full N×N table would not fit for large tables.
            distances = ((self._standardised - self._standardised[row]) ** 2).sum(axis=1)
            distances[row] = np.inf
            nearest = np.argsort(distances, kind="stable")[: self._k]  # stable: ties resolve by table order
            self._neighbours[row] = [self.arch_ids[j] for j in nearest]
        return list(self._neighbours[row])

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))]

    def encode(self, arch: str) -> np.ndarray:
        return self._features[self._index[self.parse(arch)]].copy()

    def canonical(self, arch: str) -> str:
        return self.parse(arch)

    def table_key(self, arch: str) -> str:
        return arch
