"""The interface every search space implements.

An architecture is a hashable key (a string) owned by its space: searchers hold keys,
spaces interpret them, tables index them through :meth:`SearchSpace.table_key`.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class ArchitectureError(ValueError):
    """An architecture identifier that its space cannot accept; the message names the problem."""


@runtime_checkable
class SearchSpace(Protocol):
    """What searchers and oracles may ask of a space. Keys are plain strings."""

    name: str

    def parse(self, text: str) -> str:
        """Validate ``text`` and return the space's normal key for it; raise ArchitectureError."""

    def sample(self, rng: np.random.Generator) -> str:
        """One architecture drawn uniformly at random with ``rng``."""

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """A different architecture that differs from ``arch`` in exactly one choice."""

    def neighbours(self, arch: str) -> list[str]:
        """Every architecture one mutation away from ``arch``."""

    def encode(self, arch: str) -> np.ndarray:
        """A fixed-length float vector for predictors."""

    def canonical(self, arch: str) -> str:
        """The representative of the architectures that compute the same network as ``arch``."""

    def table_key(self, arch: str) -> str:
        """The identifier a tabular benchmark stores this architecture under."""
