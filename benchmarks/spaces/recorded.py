"""A space restricted to the architectures a table records (e.g. 200 of NAS-Bench-201's 15,625 cells).

A table may cover only part of the space it declares. A search on it must never propose a cell the
table cannot answer, so the search runs in the *restricted* space:

* **sample** draws uniformly from the recorded architectures (one ``rng.integers`` call);
* **neighbours** of an architecture are the recorded architectures *nearest* to it: those at the
  smallest L1 distance between the parent space's encodings (for NAS-Bench-201's one-hot encoding,
  twice the number of edges whose op differs), itself excluded. When the parent's one-mutation
  neighbourhood holds recorded cells these are exactly them; when it holds none (the usual case in a
  sparse sample) they are the recorded cells that differ in the fewest choices. Ties are all kept, in
  table order;
* **mutate** picks one of those neighbours uniformly with ``rng``;
* **parse**, **encode**, **canonical** and **table_key** are the parent's, so keys, encodings and table
  look-ups are unchanged. ``arch in space`` says whether the table answers for ``arch`` (through
  ``canonical`` first when the table stores one row per equivalence class, as the oracle does).

So "one mutation away" here means "the nearest recorded cells", not "exactly one choice differs".
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from benchmarks.spaces.base import SearchSpace


class RecordedSubspace:
    """``parent`` restricted to ``archs``, the architectures a table records (see the module doc)."""

    def __init__(self, parent: SearchSpace, archs: Sequence[str], canonical_keys: bool = False):
        self.parent = parent
        self.name = f"{parent.name}:recorded"
        self.canonical_keys = bool(canonical_keys)
        self.archs = [parent.parse(a) for a in archs]
        if len(self.archs) < 2:
            raise ValueError(f"a restricted space needs at least 2 recorded architectures, got {len(self.archs)}")
        keys = [self._key(a) for a in self.archs]
        if len(set(keys)) != len(keys):
            raise ValueError("the recorded architectures must have distinct table keys")
        self._position = {key: i for i, key in enumerate(keys)}
        self._encodings = np.vstack([parent.encode(a) for a in self.archs])
        self._neighbours: dict[str, list[str]] = {}

    def _key(self, arch: str) -> str:
        arch = self.parent.parse(arch)
        return self.parent.table_key(self.parent.canonical(arch) if self.canonical_keys else arch)

    def __len__(self) -> int:
        return len(self.archs)

    def __contains__(self, arch: object) -> bool:
        try:
            return self._key(arch) in self._position
        except ValueError:  # ArchitectureError: not an architecture of the parent at all
            return False

    def parse(self, text: str) -> str:
        return self.parent.parse(text)

    def sample(self, rng: np.random.Generator) -> str:
        return self.archs[int(rng.integers(len(self.archs)))]

    def neighbours(self, arch: str) -> list[str]:
        arch = self.parent.parse(arch)
        if arch not in self._neighbours:
            distances = np.abs(self._encodings - self.parent.encode(arch)).sum(axis=1)
            own = self._position.get(self._key(arch))
            if own is not None:
                distances[own] = np.inf
            self._neighbours[arch] = [self.archs[i] for i in np.flatnonzero(distances == distances.min())]
        return list(self._neighbours[arch])

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))]

    def encode(self, arch: str) -> np.ndarray:
        return self.parent.encode(arch)

    def canonical(self, arch: str) -> str:
        return self.parent.canonical(arch)

    def table_key(self, arch: str) -> str:
        return self.parent.table_key(arch)

    def __repr__(self) -> str:
        return f"RecordedSubspace({self.parent!r}, {len(self.archs)} architectures)"
