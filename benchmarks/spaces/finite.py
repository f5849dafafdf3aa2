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
        self._neighbours: np.ndarray | None = None

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
        return [self.arch_ids[j] for j in self._neighbour_table()[self._index[self.parse(arch)]]]

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))]

    def encode(self, arch: str) -> np.ndarray:
        return self._features[self._index[self.parse(arch)]].copy()

    def canonical(self, arch: str) -> str:
        return self.parse(arch)

    def table_key(self, arch: str) -> str:
        return arch

    def _neighbour_table(self) -> np.ndarray:
        if self._neighbours is None:
            scale = self._features.std(axis=0)
            z = (self._features - self._features.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
            distances = ((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
            np.fill_diagonal(distances, np.inf)
            # Stable sort so ties resolve by table order and neighbourhoods are reproducible.
            self._neighbours = np.argsort(distances, axis=1, kind="stable")[:, : self._k]
        return self._neighbours
