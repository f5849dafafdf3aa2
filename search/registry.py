"""The searchers by name, for the command line and the harness."""
from __future__ import annotations

import importlib
import importlib.util
import inspect

import numpy as np

from search.asha import ASHA
from search.base import Problem, Searcher
from search.evolution import RegularizedEvolution
from search.hyperband import Hyperband
from search.pmfnas import PMFNAS, PMFNASConfig
from search.random_search import RandomSearch
from search.successive_halving import SuccessiveHalving

__all__ = ["SEARCHERS", "PEERS", "installed_peers", "peer_class", "known_methods", "make_searcher"]


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


#: The established libraries' optimizers (search/peers/), by method name: (package imported, module, class).
#: Resolved on demand, so importing this registry never imports a library; a method is known only
#: where its package is installed (the ``peers`` extra).
PEERS: dict[str, tuple[str, str, str]] = {
    "dehb": ("dehb", "search.peers.dehb_peer", "DEHBSearcher"),
    "smac-hb": ("smac", "search.peers.smac_peer", "SMACHyperband"),
    "optuna-tpe-hb": ("optuna", "search.peers.optuna_peer", "OptunaTPEHyperband"),
    "optuna-tpe-sh": ("optuna", "search.peers.optuna_peer", "OptunaTPESuccessiveHalving"),
    "synetune-asha": ("syne_tune", "search.peers.synetune_peer", "SyneTuneASHA"),
    "synetune-bohb": ("syne_tune", "search.peers.synetune_peer", "SyneTuneBOHB"),
    "synetune-dyhpo": ("syne_tune", "search.peers.synetune_peer", "SyneTuneDyHPO"),
    "synetune-hypertune": ("syne_tune", "search.peers.synetune_peer", "SyneTuneHyperTune"),
    "synetune-mobster": ("syne_tune", "search.peers.synetune_peer", "SyneTuneMOBSTER"),
}


def installed_peers() -> list[str]:
    """The peer methods whose library is installed (found, not imported), sorted."""
    return sorted(name for name, (package, _, _) in PEERS.items() if importlib.util.find_spec(package) is not None)


def peer_class(name: str) -> type[Searcher]:
    """The adapter class of peer method ``name`` (imports its module, not yet its library)."""
    _, module, cls = PEERS[name]
    return getattr(importlib.import_module(module), cls)


def known_methods() -> list[str]:
    """Every method name: the project's searchers, then the installed peers."""
    return sorted(SEARCHERS) + installed_peers()


def make_searcher(name: str, problem: Problem, rng: np.random.Generator, **params) -> Searcher:
    """Build the searcher registered as ``name`` with keyword ``params``.

    ValueError naming an unknown searcher (and listing the known ones) or an unknown parameter (and
    listing the accepted ones); each searcher validates its parameter values itself.
    """
    if isinstance(name, str) and name in SEARCHERS:
        cls = SEARCHERS[name]
    elif isinstance(name, str) and name in installed_peers():
        cls = peer_class(name)
    else:
        missing = (f"; {name!r} is a peer method whose package {PEERS[name][0]!r} is not installed "
                   "(pip install '.[peers]')" if isinstance(name, str) and name in PEERS else "")
        raise ValueError(f"unknown searcher {name!r}; known: {', '.join(sorted(SEARCHERS))}; installed peers: "
                         f"{', '.join(installed_peers()) or 'none'}{missing}")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "problem", "rng")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"searcher {name!r} has no parameter(s) {unknown}; accepted: {accepted}")
    return cls(problem, rng, **params)
