"""The searchers by name, for the command line and the harness."""
from __future__ import annotations

import inspect

import numpy as np

from search.asha import ASHA
from search.base import Problem, Searcher
from search.evolution import RegularizedEvolution
from search.hyperband import Hyperband
from search.pmfnas import PMFNAS, PMFNASConfig
from search.random_search import RandomSearch
from search.successive_halving import SuccessiveHalving

__all__ = ["SEARCHERS", "make_searcher"]



def _pmfnas_ablation(name: str, doc: str, **switches) -> type[PMFNAS]:
    def __init__(self, problem: Problem, rng: np.random.Generator, config: PMFNASConfig | None = None):
        PMFNAS.__init__(self, problem, rng, config or PMFNASConfig(**switches))

    return type(name, (PMFNAS,), {"__init__": __init__, "__doc__": doc})


SEARCHERS: dict[str, type[Searcher]] = {
    "random": RandomSearch,
    "sh": SuccessiveHalving,
    "hyperband": Hyperband,
    "asha": ASHA,
    "rea": RegularizedEvolution,
    "pmfnas": PMFNAS,
    "pmfnas-no-predictor": _pmfnas_ablation(
        "PMFNASNoPredictor", "PMF-NAS ranking by the last observed value only (ablation).", use_predictor=False),
    "pmfnas-no-allocator": _pmfnas_ablation(
        "PMFNASNoAllocator", "PMF-NAS with a fixed successive-halving cut instead of the allocator (ablation).",
        use_allocator=False),
    "pmfnas-no-stage2": _pmfnas_ablation(
        "PMFNASNoStage2", "PMF-NAS without regional search (ablation).", use_stage2=False),
}


def make_searcher(name: str, problem: Problem, rng: np.random.Generator, **params) -> Searcher:
    """Build the searcher registered as ``name`` with keyword ``params``.

    ValueError naming an unknown searcher (and listing the known ones) or an unknown parameter (and
    listing the accepted ones); each searcher validates its parameter values itself.
    """
    try:
        cls = SEARCHERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown searcher {name!r}; known: {', '.join(sorted(SEARCHERS))}") from None
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "problem", "rng")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"searcher {name!r} has no parameter(s) {unknown}; accepted: {accepted}")
    return cls(problem, rng, **params)
