"""A space restricted to the architectures a table records (e.g. 200 of NAS-Bench-201's 15,625 cells).

A table may cover only part of the space it declares. A search on it must never propose a cell the
table cannot answer, so the search runs in the *restricted* space:

* **sample** draws uniformly from the recorded architectures (one ``rng.integers`` call);
* **mutate** makes the parent's own mutation (NAS-Bench-201: one edge set to another op); when that
  lands on a recorded cell, that is the child; when it lands on an unrecorded cell, the child is one of
  the recorded cells *nearest* to the cell it landed on — at the smallest L1 distance between the
  parent's encodings (for NB201's one-hot encoding: twice the number of edges whose op differs), the
  architecture being mutated excluded, ties broken uniformly with ``rng``;
* **neighbours** lists every child ``mutate`` can return: for each of the parent's neighbours, itself if
  recorded, else its nearest recorded cells (first-seen order, no repeats). A cell whose one-edge changes
  include recorded cells has them all among its neighbours;
* **parse**, **encode**, **canonical** and **table_key** are the parent's, so keys, encodings and table
  look-ups are unchanged. ``arch in space`` says whether the table answers for ``arch`` (through
  ``canonical`` first when the table stores one row per equivalence class, as the oracle does).

So a mutation stays as local as the sample allows: a one-edge change when it is recorded, otherwise
the recorded cells closest to one. "Exactly one choice differs" no longer holds for the fallback.
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

    def _nearest(self, target: str, exclude: str) -> list[str]:
        """The recorded cells nearest to ``target`` (itself when recorded), ``exclude`` left out."""
        distances = np.abs(self._encodings - self.parent.encode(target)).sum(axis=1)
        own = self._position.get(self._key(exclude))
        if own is not None:
            distances[own] = np.inf
        return [self.archs[i] for i in np.flatnonzero(distances == distances.min())]

    def neighbours(self, arch: str) -> list[str]:
        arch = self.parent.parse(arch)
        if arch not in self._neighbours:
            found: dict[str, None] = {}
            for step in self.parent.neighbours(arch):
                found.update(dict.fromkeys(self._nearest(step, arch)))
            self._neighbours[arch] = list(found)
        return list(self._neighbours[arch])

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        options = self._nearest(self.parent.mutate(arch, rng), arch)
        return options[0] if len(options) == 1 else options[int(rng.integers(len(options)))]

    def encode(self, arch: str) -> np.ndarray:
        return self.parent.encode(arch)

    def canonical(self, arch: str) -> str:
        return self.parent.canonical(arch)

    def table_key(self, arch: str) -> str:
        return self.parent.table_key(arch)

    def __repr__(self) -> str:
        return f"RecordedSubspace({self.parent!r}, {len(self.archs)} architectures)"
