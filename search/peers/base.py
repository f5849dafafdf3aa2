"""What every peer adapter shares: the architecture codec and the ask/tell bookkeeping.

A peer library proposes *trials*: a configuration and a budget in epochs, either a new training run or
the continuation of one of its own paused trials. :class:`PeerSearcher` turns each proposal into a
:class:`~search.base.Job` on the problem's recorded fidelities (the library's budget mapped to the
nearest recorded fidelity >= it) and hands observations back to the library. Costs stay honest:

* a continuation is a resume (``Job(resume=True)``, pays only the extra epochs) only when the
  architecture's latest run is the one this trial trained, it did not fail and it is shorter than the
  target; a continuation already trained that far is answered from what was observed, without a job;
* anything else is a fresh run (``resume=False``), which pays in full;
* a proposal whose architecture is running waits (it is served first once that job reports); ``ask``
  returns None when the library has nothing else to propose right now.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from benchmarks.spaces.nb201 import NB201Space
from benchmarks.spaces.recorded import RecordedSubspace
from search.base import Job, Observation, Problem, Searcher
from search.successive_halving import default_min_epochs

__all__ = ["ArchCodec", "FailuresAsWorst", "Proposal", "PeerSearcher", "bracket_settings", "library_seed", "truncate"]

#: Proposals drawn from a library per ``ask`` before concluding it has nothing to run now (each one it
#: proposes on a running architecture waits; a library that keeps doing so is waiting too).
MAX_PROPOSALS_PER_ASK = 50


def bracket_settings(problem: Problem, eta: int, min_epochs: float | None, *,
                     needs_two_fidelities: bool) -> tuple[int, float]:
    """``(eta, min_epochs)`` checked, with the smallest rung as the project's Hyperband/ASHA by default.

    ValueError for an ``eta`` that is not an integer >= 2, or a ``min_epochs`` that is not positive and
    at most the max epochs (below them where the library's brackets need ``needs_two_fidelities``).
    """
    if isinstance(eta, bool) or not isinstance(eta, (int, np.integer)) or eta < 2:
        raise ValueError(f"eta={eta!r} must be an integer >= 2")
    max_epochs = problem.max_epochs
    chosen = default_min_epochs(problem, int(eta), max_epochs) if min_epochs is None else float(min_epochs)
    if needs_two_fidelities and not 0 < chosen < max_epochs:
        raise ValueError(f"min_epochs={min_epochs!r} must be positive and below {max_epochs} (the library's "
                         "brackets need two fidelities)")
    if not 0 < chosen <= max_epochs:
        raise ValueError(f"min_epochs={min_epochs!r} must be positive and at most {max_epochs}")
    return int(eta), chosen


def library_seed(rng: np.random.Generator) -> int:
    """The library's integer seed, drawn from the searcher's one seeded stream."""
    return int(rng.integers(2**31 - 1))


class ArchCodec:
    """Architectures of a problem's space as a library's categorical parameters.

    NB201: one categorical per edge (``edge0`` .. ``edge5``) over the five ops, the space's own
    encoding, so model-based samplers can learn per-edge effects. A finite table (FiniteSpace): one
    categorical ``arch`` over the table's architecture identifiers (an index of the space); the space
    has no grammar a library could exploit. A space restricted to a table's recorded cells
    (RecordedSubspace, e.g. ``nb201-c10-sample``): one categorical ``arch`` over those cells' strings —
    per-edge categoricals would let a library propose cells the table cannot answer, and replacing them
    by a recorded neighbour would change what the library asked for.
    """

    def __init__(self, space: Any):
        self.space = space
        if isinstance(space, NB201Space):
            self.parameters: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
                (f"edge{e}", tuple(space.ops_choices)) for e in range(len(space.edges)))
        elif hasattr(space, "arch_ids"):
            self.parameters = (("arch", tuple(space.arch_ids)),)
        elif isinstance(space, RecordedSubspace):
            self.parameters = (("arch", tuple(space.archs)),)
        else:
            raise ValueError(f"space {getattr(space, 'name', type(space).__name__)!r} is not supported by the peer "
                             "adapters: they need an NB201 space, a finite table of architectures or a space "
                             "restricted to a table's recorded cells")

    def to_arch(self, config: Mapping[str, Any]) -> str:
        """The architecture a library's configuration names."""
        if isinstance(self.space, NB201Space):
            return self.space.from_ops(str(config[name]) for name, _ in self.parameters)
        return self.space.parse(str(config["arch"]))

    def to_config(self, arch: str) -> dict[str, str]:
        if isinstance(self.space, NB201Space):
            return {name: op for (name, _), op in zip(self.parameters, self.space.ops(arch))}
        return {"arch": self.space.parse(arch)}


def truncate(observation: Observation, epochs: int) -> Observation:
    """What ``observation`` showed up to ``epochs``."""
    keep = observation.epochs <= epochs
    losses = None if observation.losses is None else observation.losses[: int(keep.sum())]
    return Observation(observation.epochs[keep], observation.values[keep], observation.failed and keep.all(), losses)


class FailuresAsWorst:
    """Losses for a library that cannot take an infinite one (DEHB reads +inf as "not evaluated", SMAC's
    random forest cannot fit it): a failure is told as the worst loss told so far; failures that come
    before any success wait and are told right after the first one.
    """

    def __init__(self):
        self.worst: float | None = None
        self._held: list[Any] = []

    def results(self, item: Any, loss: float | None) -> list[tuple[Any, float, bool]]:
        """``(item, loss, failed)`` to tell now, given ``item``'s loss (None: it failed)."""
        if loss is None:
            self._held.append(item)
            told = []
        else:
            self.worst = loss if self.worst is None else max(self.worst, loss)
            told = [(item, loss, False)]
        if self.worst is not None:
            told += [(held, self.worst, True) for held in self._held]
            self._held.clear()
        return told


@dataclass
class Proposal:
    """A library's request: train ``arch`` to ``budget`` epochs for its trial ``trial``.

    ``continues``: the library pauses and resumes this trial (a continuation of the trial's own run).
    ``handle``: whatever the library needs back when told the result.
    """

    arch: str
    budget: float
    trial: Any
    continues: bool = False
    handle: Any = field(default=None, compare=False)


class PeerSearcher(Searcher):
    """Base of the adapters: a library's trials as jobs, its results as observations.

    Subclasses implement :meth:`_propose` (the library's next trial, or None) and :meth:`_report`
    (tell the library what a trial observed up to the fidelity it asked for).

    Class attributes: ``library`` (the package), ``slow`` (more than 60 s per run on a 344-cell table at
    30 full evaluations: ``pmfnas compare`` runs it only when named), ``deterministic`` (a seed fixes
    the run; else the reason it does not, in ``nondeterministic_reason``).
    """

    library: str = ""
    slow: bool = False
    deterministic: bool = True
    nondeterministic_reason: str = ""

    def __init__(self, problem: Problem, rng: np.random.Generator):
        super().__init__(problem, rng)
        self.codec = ArchCodec(problem.space)
        self.seed = library_seed(rng)
        self._in_flight: dict[str, tuple[Job, Proposal, int]] = {}  # arch -> (job, proposal, fidelity)
        self._waiting: list[Proposal] = []
        self._latest: dict[str, tuple[Any, Observation]] = {}  # arch -> (trial of its latest run, what it showed)

    # ------------------------------------------------------------------ library hooks
    @abstractmethod
    def _propose(self) -> Proposal | None:
        """The library's next trial, or None when it has nothing to run now."""

    @abstractmethod
    def _report(self, proposal: Proposal, observation: Observation) -> None:
        """Tell the library what ``proposal`` observed (up to its fidelity; ``observation.failed`` for a failure)."""

    def loss(self, observation: Observation) -> float:
        """The observation as a loss to minimise (+inf for a failure)."""
        return float("inf") if observation.failed else -self.score(observation.value)

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Job | None:
        for i, proposal in enumerate(self._waiting):
            if proposal.arch not in self._in_flight:
                del self._waiting[i]
                job = self._job_for(proposal)
                if job is not None:
                    return job
                break
        for _ in range(MAX_PROPOSALS_PER_ASK):
            proposal = self._propose()
            if proposal is None:
                return None
            if proposal.arch in self._in_flight:
                self._waiting.append(proposal)
                continue
            job = self._job_for(proposal)
            if job is not None:
                return job
        return None

    def _job_for(self, proposal: Proposal) -> Job | None:
        """The job that serves ``proposal``, or None when what was observed already answers it."""
        fidelity = self.problem.fidelity_at_least(proposal.budget)
        latest = self._latest.get(proposal.arch)
        own_run = proposal.continues and latest is not None and latest[0] == proposal.trial
        if own_run:
            observation = latest[1]
            reached = int(observation.epochs[-1]) if observation.epochs.size else 0
            if observation.failed or reached >= fidelity:
                self._report(proposal, truncate(observation, fidelity))
                return None
        job = Job(proposal.arch, fidelity, resume=own_run, tag=("peer", self.library))
        self._in_flight[proposal.arch] = (job, proposal, fidelity)
        return job

    def tell(self, job: Job, observation: Observation) -> None:
        entry = self._in_flight.get(job.arch)
        if entry is None or entry[0] != job:
            raise ValueError(f"job {job!r} is not in flight for this searcher")
        if len(observation.epochs) != len(observation.values):
            raise ValueError(f"observation has {len(observation.epochs)} epochs and {len(observation.values)} "
                             "values; they must match")
        del self._in_flight[job.arch]
        _, proposal, fidelity = entry
        self._latest[job.arch] = (proposal.trial, observation)
        self._report(proposal, truncate(observation, fidelity))
