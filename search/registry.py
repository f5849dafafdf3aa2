"""The searchers by name, for the command line and the harness.

Your own searcher (a :class:`search.base.Searcher` subclass whose ``__init__`` takes ``(problem, rng,
**params)``) joins them in one of two ways:

* ``register_searcher("my-method", MySearcher)`` in the code that runs the comparison, or
* an entry point in the ``pmfnas.searchers`` group of your package, which pmfnas loads the first time
  a name it does not know is asked for, so ``pmfnas compare --methods my-method`` works without
  editing pmf-nas::

      [project.entry-points."pmfnas.searchers"]
      my-method = "my_package.module:MySearcher"

See ``docs/extending.md``.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
from importlib import metadata

import numpy as np

from search.asha import ASHA
from search.base import Problem, Searcher
from search.evolution import RegularizedEvolution
from search.hyperband import Hyperband
from search.pmfnas import PMFNAS, PMFNASConfig
from search.random_search import RandomSearch
from search.successive_halving import SuccessiveHalving

__all__ = ["ENTRY_POINT_GROUP", "PEERS", "SEARCHERS", "installed_peers", "make_searcher", "needs_several_fidelities",
           "peer_class", "peer_extra", "register_searcher", "searcher_names", "unloadable_searchers"]

ENTRY_POINT_GROUP = "pmfnas.searchers"


def _pmfnas_ablation(name: str, doc: str, **switches) -> type[PMFNAS]:
    def __init__(self, problem: Problem, rng: np.random.Generator, config: PMFNASConfig | None = None):
        # The ablation's switch holds whatever config comes with it: otherwise the ablation would run as PMF-NAS.
        PMFNAS.__init__(self, problem, rng, dataclasses.replace(config or PMFNASConfig(), **switches))

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


# Methods whose point is to stop runs early: on a table with one fidelity they cannot (a comparison warns).
_MULTI_FIDELITY = {"sh", "hyperband", "asha", "pmfnas", "pmfnas-no-predictor", "pmfnas-no-allocator",
                   "pmfnas-no-stage2"}
_entry_points_loaded = False
# Entry points that failed to load, by name: the error their name gets when a search asks for it.
_UNLOADABLE: dict[str, str] = {}


def register_searcher(name: str, cls: type[Searcher], *, multi_fidelity: bool | None = None,
                      replace: bool = False) -> None:
    """Make ``cls`` available as method ``name`` (in ``make_searcher``, ``pmfnas compare`` and ``pmfnas search``).

    ``cls`` is a :class:`~search.base.Searcher` subclass built as ``cls(problem, rng, **params)``.
    ``multi_fidelity``: the method relies on stopping runs early (a comparison on a one-fidelity table
    then warns); left out, a new name is not marked and a name registered again with its own class keeps
    its mark. ValueError for a name already taken (unless ``replace``) or a ``cls`` that is not a
    Searcher subclass.
    """
    if not isinstance(name, str) or not name or "," in name or name != name.strip():
        raise ValueError(f"searcher name {name!r} must be a non-empty string without commas or outer spaces")
    if not (inspect.isclass(cls) and issubclass(cls, Searcher)):
        raise ValueError(f"searcher {name!r}: {cls!r} is not a subclass of search.base.Searcher")
    if name in SEARCHERS and not replace and SEARCHERS[name] is not cls:
        raise ValueError(f"searcher name {name!r} is taken by {SEARCHERS[name].__name__}; pass replace=True "
                         "to replace it")
    if multi_fidelity is None:
        multi_fidelity = SEARCHERS.get(name) is cls and name in _MULTI_FIDELITY
    SEARCHERS[name] = cls
    if multi_fidelity:
        _MULTI_FIDELITY.add(name)
    else:
        _MULTI_FIDELITY.discard(name)


def _load_entry_points() -> None:
    """Register the searchers other packages declare in the ``pmfnas.searchers`` group (once, on demand)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in SEARCHERS:
            continue  # a built-in or an explicit register_searcher wins
        try:
            cls = entry.load()
            register_searcher(entry.name, cls, multi_fidelity=bool(getattr(cls, "multi_fidelity", False)))
        except Exception as error:  # a broken plug-in must not hide the others: it fails only when asked for
            _UNLOADABLE[entry.name] = (f"the searcher {entry.name!r} declared by entry point {entry.value!r} cannot "
                                       f"be loaded: {type(error).__name__}: {error}")


def unloadable_searchers() -> dict[str, str]:
    """Entry-point searchers that failed to load, name → their error (``searcher_names`` leaves them out)."""
    _load_entry_points()
    return dict(_UNLOADABLE)


def searcher_names() -> list[str]:
    """Every method name: the built-ins, registered ones, those of installed entry points, then the installed peers."""
    _load_entry_points()
    return sorted(SEARCHERS) + [name for name in installed_peers() if name not in SEARCHERS]


def needs_several_fidelities(name: str) -> bool:
    """Whether method ``name`` relies on stopping runs early (several fidelities)."""
    return name in _MULTI_FIDELITY


#: The established libraries' optimizers (search/peers/), by method name: (package imported, module, class).
#: Resolved on demand, so importing this registry never imports a library; a method is known only
#: where its package is installed (the ``peers`` extra, one environment for all of them).
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
    "neps-hb": ("neps", "search.peers.neps_peer", "NePSHyperband"),
    "neps-asha": ("neps", "search.peers.neps_peer", "NePSASHA"),
}


def peer_extra(name: str) -> str:
    """The optional extra that installs peer method ``name``'s library (``peers`` holds every one)."""
    if name not in PEERS:
        raise ValueError(f"{name!r} is not a peer method; peers: {', '.join(sorted(PEERS))}")
    return "peers"


def installed_peers() -> list[str]:
    """The peer methods whose library is installed (found, not imported), sorted."""
    return sorted(name for name, (package, _, _) in PEERS.items() if importlib.util.find_spec(package) is not None)


def peer_class(name: str) -> type[Searcher]:
    """The adapter class of peer method ``name`` (imports its module, not yet its library)."""
    _, module, cls = PEERS[name]
    return getattr(importlib.import_module(module), cls)


def make_searcher(name: str, problem: Problem, rng: np.random.Generator, **params) -> Searcher:
    """Build the searcher registered as ``name`` with keyword ``params``.

    ValueError naming an unknown searcher (and listing the known ones) or an unknown parameter (and
    listing the accepted ones); each searcher validates its parameter values itself.
    """
    if isinstance(name, str) and name not in SEARCHERS:
        _load_entry_points()
        if name in _UNLOADABLE:
            raise ValueError(_UNLOADABLE[name])
    if isinstance(name, str) and name in SEARCHERS:
        cls = SEARCHERS[name]
    elif isinstance(name, str) and name in installed_peers():
        cls = peer_class(name)
    else:
        missing = (f"; {name!r} is a peer method whose package {PEERS[name][0]!r} is not installed "
                   f"(pip install '.[{peer_extra(name)}]')" if isinstance(name, str) and name in PEERS else "")
        raise ValueError(f"unknown searcher {name!r}; known: {', '.join(sorted(SEARCHERS))}; installed peers: "
                         f"{', '.join(installed_peers()) or 'none'}{missing}")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "problem", "rng")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"searcher {name!r} has no parameter(s) {unknown}; accepted: {accepted}")
    return cls(problem, rng, **params)
