"""PMF-NAS: progressive multi-fidelity NAS with a learning-curve predictor and an adaptive allocator.

The search is asynchronous: every ``ask`` decides at once what a free worker should do, so W workers
stay busy. Epochs climb a ladder of rungs at fractions of max epochs (``low_fidelity``·eta^k, then
max epochs), the successive-halving backbone of ASHA (Li et al., MLSys 2020), so the method cannot
fall far below it. Each decision is one of the method's three stages:

1. **Global exploration** — a new architecture at the lowest rung, the farthest (in encoding space)
   from every architecture proposed so far among ``candidate_pool`` unseen random draws.
2. **Regional search** — a new architecture at the lowest rung that is a mutant (an unseen one-step
   neighbour, ``space.neighbours``) of one of the best candidates that earned at least one promotion;
   and promotions between the lower rungs, which resume a candidate and pay only the extra epochs.
3. **Fine optimisation** — promotions into max epochs. The search's answer is the best max-epoch
   validation metric observed (the runner's incumbent rule).

A candidate is promotable out of rung k while it ranks in the top ``1/eta`` of every candidate that
reported at rung k. The **adaptive allocator** decides the ranking and what happens when the space
runs out:

* the ranking is by predicted max-epoch metric once the predictor has earned it — its grouped
  out-of-bag predictions of the complete curves the search paid for, from their own rung prefixes, rank
  those finals better than the rung values do — and by the observed value at the rung before that;
* when no unseen architecture is left, the best remaining candidates are promoted beyond the top
  ``1/eta``, so a small space never leaves budget unspent and no candidate is stopped for good.

A bound-based stopping rule (stop when mean + z·std of the predicted final falls below the best final
observed) was built and removed: the curves a search pays for were promoted for starting well, so
intervals learnt from them under-represent slow starters, and on crossing curves it stopped the best
architecture.

The split between stages follows ρ, the rank quality measured on the paid-for complete curves (the
same out-of-bag Spearman, averaged over the rungs, updated with each refit): a share
``regional_share``·ρ⁺ of new architectures are mutants (none before ρ is measured), the rest
space-filling samples — a predictor that ranks well moves effort from blind exploration to the
promising regions.

Fidelities are fractions of max epochs (rounded up to a recorded fidelity), so one config serves 50-,
100- and 200-epoch benchmarks. Ablations: ``use_predictor=False`` (the last observed value with a
learnt interval replaces the forest), ``use_allocator=False`` (plain ASHA: ranking by the rung value,
and the search ends when the space is used up), ``use_stage2=False`` (no mutants: every new
architecture is a space-filling sample).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from search.base import Job, Observation, Problem, Searcher
from search.predictor import LastValuePredictor, LearningCurvePredictor, PartialCurve, training_set
from search.random_search import DEFAULT_MAX_DRAWS


@dataclass(frozen=True)
class PMFNASConfig:
    """Every knob of PMF-NAS, with its default.

    low_fidelity: the lowest rung as a fraction of max epochs (1/27: four rungs 1/27, 1/9, 1/3, 1 at eta=3).
    eta: rung-to-rung factor of epochs, and the top 1/eta of a rung are promotable (3).
    regional_share: share of new architectures that are mutants when ρ = 1; ρ⁺× that otherwise (0.5).
    n_parents: mutants are drawn around the best this many promoted candidates (4).
    candidate_pool: unseen random draws a space-filling proposal chooses from (4).
    min_curves: complete curves before the forest may replace the last-value baseline (5).
    use_predictor, use_allocator, use_stage2: the ablation switches (all True).
    """

    low_fidelity: float = 1 / 27
    eta: int = 3
    regional_share: float = 0.5
    n_parents: int = 4
    candidate_pool: int = 4
    min_curves: int = 5
    use_predictor: bool = True
    use_allocator: bool = True
    use_stage2: bool = True

    def __post_init__(self):
        if not 0 < self.low_fidelity < 1:
            raise ValueError(f"low_fidelity={self.low_fidelity} must lie strictly between 0 and 1")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ValueError(f"eta={self.eta!r} must be an integer >= 2")
        if not 0 <= self.regional_share <= 1:
            raise ValueError(f"regional_share={self.regional_share} must lie in [0, 1]")
        least_of = {"n_parents": 1, "candidate_pool": 1, "min_curves": LearningCurvePredictor.MIN_CURVES}
        for name, least in least_of.items():
            if getattr(self, name) < least:
                raise ValueError(f"{name}={getattr(self, name)} must be at least {least}")


@dataclass
class _Candidate:
    arch: str
    order: int  # proposal number: ties and iteration follow it, never a set's order
    origin: str
    encoding: np.ndarray
    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rung: int = -1  # the highest rung it reported at
    running: bool = False
    failed: bool = False

    @property
    def trained(self) -> int:
        return int(self.epochs[-1]) if self.epochs.size else 0

    def prefix(self, epochs: int) -> tuple[np.ndarray, np.ndarray]:
        upto = int(np.searchsorted(self.epochs, epochs, side="right"))
        return self.epochs[:upto], self.values[:upto]


def rung_epochs(problem: Problem, low_fidelity: float, eta: int) -> tuple[int, ...]:
    """The recorded epochs of the rungs: low_fidelity·eta^k of max epochs (k = 0, 1, ...), then max epochs."""
    rungs = []
    fraction = low_fidelity
    while fraction < 1 - 1e-9:
        epochs = problem.fidelity_at_least(fraction * problem.max_epochs)
        if epochs < problem.max_epochs and (not rungs or epochs > rungs[-1]):
            rungs.append(epochs)
        fraction *= eta
    return tuple(rungs) + (problem.max_epochs,)


class PMFNAS(Searcher):
    """Progressive multi-fidelity NAS (this project's implementation of the PMF-NAS abstract).

    Parameters: ``problem``, ``rng``, ``config`` (a :class:`PMFNASConfig`). The predictor draws from
    its own generator, spawned from ``rng`` at construction, so the ablations see the same searcher
    stream whether or not a forest is fitted.
    """

    def __init__(self, problem: Problem, rng: np.random.Generator, config: PMFNASConfig | None = None):
        super().__init__(problem, rng)
        self.config = config or PMFNASConfig()
        self.rungs = rung_epochs(problem, self.config.low_fidelity, self.config.eta)
        predictor_rng = rng.spawn(1)[0]
        if self.config.use_predictor:
            self.predictor = LearningCurvePredictor(problem.max_epochs, predictor_rng,
                                                    min_curves=self.config.min_curves)
        else:
            self.predictor = LastValuePredictor(problem.max_epochs)
        self.candidates: dict[str, _Candidate] = {}
        self._members: list[list[str]] = [[] for _ in self.rungs]  # who reported at each rung, in report order
        self._complete: list[str] = []
        self._fitted_version = -1
        self._encodings: np.ndarray | None = None  # row i: the encoding of the i-th proposal
        self._rankings: dict[int, list] = {}
        self.rank_quality = 0.0
        self.predictor_trusted = False
        self._new_total = 0
        self._new_regional = 0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Job | None:
        self._refit_if_new_data()
        job = self._promotion(within_quota=True)
        if job is not None:
            return job
        candidate = self._new_candidate()
        if candidate is None:
            # The space is used up: rather than leave budget unspent, promote the best remaining candidates
            # beyond the top 1/eta (plain ASHA, the no-allocator ablation, ends here instead).
            return self._promotion(within_quota=False) if self.config.use_allocator else None
        candidate.running = True
        self._log(candidate.origin, candidate.arch, 0)
        return Job(candidate.arch, self.rungs[0])

    def tell(self, job: Job, observation: Observation) -> None:
        candidate = self.candidates.get(job.arch)
        if candidate is None or not candidate.running:
            raise ValueError(f"told about {job.arch}, which is not in flight")
        candidate.running = False
        candidate.epochs = np.asarray(observation.epochs, dtype=int)
        candidate.values = np.asarray(observation.values, dtype=float)
        reached = candidate.trained >= job.epochs and np.isfinite(candidate.values[-1])
        candidate.failed = bool(observation.failed) or not reached
        if job.epochs in self.rungs:
            rung = self.rungs.index(job.epochs)
            candidate.rung = max(candidate.rung, rung)
            self._members[rung].append(job.arch)
            if rung == len(self.rungs) - 1 and not candidate.failed:
                self._complete.append(job.arch)

    def _promotion(self, within_quota: bool) -> Job | None:
        for rung in range(len(self.rungs) - 2, -1, -1):
            candidate = self._promotable(rung, within_quota)
            if candidate is not None:
                candidate.running = True
                stage = "fine" if rung + 1 == len(self.rungs) - 1 else "regional"
                self._log(stage, candidate.arch, rung + 1)
                return Job(candidate.arch, self.rungs[rung + 1], resume=True)
        return None

    def _log(self, stage: str, arch: str, rung: int) -> None:
        self.history.append({"stage": stage, "arch": arch, "rung": rung, "epochs": self.rungs[rung],
                             "rank_quality": self.rank_quality, "predictor_trusted": self.predictor_trusted})

    # ------------------------------------------------------------------ allocation
    def _promotable(self, rung: int, within_quota: bool = True) -> _Candidate | None:
        """The best candidate of ``rung`` (within its top 1/eta, if asked) that may still climb, or None."""
        members = self._members[rung]
        quota = len(members) // self.config.eta if within_quota else len(members)
        if quota == 0:
            return None
        ranked = self._ranking(rung)
        state = self._rankings[rung]
        start = state[3]
        # Entries before ``start`` are closed for good (failed, or already promoted past this rung).
        while start < len(ranked) and self._closed(rung, ranked[start][2]):
            start += 1
        state[3] = start
        for _, _, arch in ranked[start:quota]:
            candidate = self.candidates[arch]
            if not (self._closed(rung, arch) or candidate.running):
                return candidate
        return None

    def _closed(self, rung: int, arch: str) -> bool:
        candidate = self.candidates[arch]
        return candidate.failed or candidate.rung > rung

    def _ranking(self, rung: int) -> list[tuple[float, int, str]]:
        """Members of ``rung`` as (-score, proposal number, arch), best first; kept sorted between refits."""
        members = self._members[rung]
        state = self._rankings.get(rung)
        if state is None or state[0] != self._fitted_version:
            # [fitted version, ranked entries, members ranked so far, first entry that may still be open]
            state = self._rankings[rung] = [self._fitted_version, [], 0, 0]
        ranked = state[1]
        new = members[state[2]:]
        for arch, score in zip(new, self._rank_scores(rung, new)):
            entry = (-score, self.candidates[arch].order, arch)
            position = bisect.bisect(ranked, entry)
            ranked.insert(position, entry)
            state[3] = min(state[3], position)
        state[2] = len(members)
        return ranked

    def _rank_scores(self, rung: int, archs: list[str]) -> np.ndarray:
        """The ranking scores at ``rung``: predicted finals (one predictor call) or the values at the rung."""
        candidates = [self.candidates[a] for a in archs]
        scores = np.full(len(archs), -np.inf)
        healthy = [i for i, c in enumerate(candidates) if not c.failed]
        if not healthy:
            return scores
        prefixes = [candidates[i].prefix(self.rungs[rung]) for i in healthy]
        if rung == len(self.rungs) - 1 or not (self.config.use_allocator and self.predictor_trusted):
            scores[healthy] = self._to_score(np.array([values[-1] for _, values in prefixes]))
        else:
            mean, _ = self.predictor.predict([PartialCurve(candidates[i].encoding, *prefix)
                                              for i, prefix in zip(healthy, prefixes)])
            scores[healthy] = self._to_score(mean)
        return scores

    def _to_score(self, values: np.ndarray) -> np.ndarray:
        return values if self.problem.higher_is_better else -values

    def _refit_if_new_data(self) -> None:
        """Refit the predictor and the rank quality once the complete curves grew by a fifth (or from none)."""
        version = len(self._complete)
        # The data version: a refit waits until the complete curves grew by a fifth, which bounds the fits
        # at O(log n) while every refit still sees notably more architectures.
        if version == self._fitted_version or (self._fitted_version > 0 and version < 1.2 * self._fitted_version):
            return
        self._fitted_version = version
        if not self._complete:
            return
        complete = [self.candidates[a] for a in self._complete]
        cuts = list(self.rungs[:-1])
        samples, targets = training_set([c.encoding for c in complete], [(c.epochs, c.values) for c in complete],
                                        self.problem.max_epochs, cuts)
        if not samples:
            return
        self.predictor.fit(samples, targets)
        self._update_rank_quality(samples, targets)

    def _update_rank_quality(self, samples: list[PartialCurve], targets: np.ndarray) -> None:
        """ρ: how well the predictor's out-of-bag estimates rank the paid-for finals, averaged over rungs."""
        predicted = np.asarray(self.predictor.oob_prediction_, dtype=float)
        last = np.array([s.last for s in samples])
        at = np.array([s.epochs[-1] for s in samples])
        model_rhos, last_rhos = [], []
        for cut in self.rungs[:-1]:
            rows = (at == self.problem.fidelity_at_least(cut)) & np.isfinite(predicted)
            if rows.sum() < 4 or np.ptp(targets[rows]) == 0:
                continue
            model_rhos.append(stats.spearmanr(predicted[rows], targets[rows]).statistic)
            last_rhos.append(stats.spearmanr(last[rows], targets[rows]).statistic)
        model_rhos = [r for r in model_rhos if np.isfinite(r)]
        last_rhos = [r for r in last_rhos if np.isfinite(r)]
        if not model_rhos:
            return
        self.rank_quality = float(np.mean(model_rhos))
        forest_on = isinstance(self.predictor, LearningCurvePredictor) and not self.predictor.is_cold
        self.predictor_trusted = bool(forest_on and last_rhos and self.rank_quality > float(np.mean(last_rhos)))

    # ------------------------------------------------------------------ new architectures
    def _new_candidate(self) -> _Candidate | None:
        share = self.config.regional_share * max(self.rank_quality, 0.0) if self.config.use_stage2 else 0.0
        arch, origin = None, "global"
        if self._new_regional < share * (self._new_total + 1):
            arch = self._unseen_mutant()
            origin = "regional"
        if arch is None:
            arch, origin = self._space_filling_pick(), "global"
        if arch is None:
            return None
        self._new_total += 1
        self._new_regional += origin == "regional"
        encoding = np.asarray(self.problem.space.encode(arch), dtype=float)
        candidate = _Candidate(arch, len(self.candidates), origin, encoding)
        self._remember_encoding(len(self.candidates), encoding)
        self.candidates[arch] = candidate
        return candidate

    def _remember_encoding(self, row: int, encoding: np.ndarray) -> None:
        # One growing matrix (doubled when full), so a space-filling pick does not restack every encoding.
        if self._encodings is None:
            self._encodings = np.zeros((64, encoding.size))
        elif row >= self._encodings.shape[0]:
            self._encodings = np.vstack([self._encodings, np.zeros_like(self._encodings)])
        self._encodings[row] = encoding

    def _parents(self) -> list[_Candidate]:
        """The best candidates that earned a promotion: highest rung first, then ranking at that rung."""
        parents: list[_Candidate] = []
        for rung in range(len(self.rungs) - 1, 0, -1):
            for _, _, arch in self._ranking(rung):
                candidate = self.candidates[arch]
                if candidate.rung == rung and not candidate.failed:
                    parents.append(candidate)
                    if len(parents) == self.config.n_parents:
                        return parents
        return parents

    def _unseen_mutant(self) -> str | None:
        parents = self._parents()
        if not parents:
            return None
        start = int(self.rng.integers(len(parents)))
        for parent in parents[start:] + parents[:start]:
            # The parent's unseen one-step neighbours: a mutant, without redrawing used-up neighbourhoods.
            children = [a for a in self.problem.space.neighbours(parent.arch) if a not in self.candidates]
            if children:
                return children[int(self.rng.integers(len(children)))]
        return None

    def _space_filling_pick(self) -> str | None:
        """Of ``candidate_pool`` unseen draws, the one farthest from every architecture proposed so far."""
        space = self.problem.space
        draws: list[str] = []
        for _ in range(DEFAULT_MAX_DRAWS * self.config.candidate_pool):
            if len(draws) >= self.config.candidate_pool:
                break
            arch = space.sample(self.rng)
            if arch not in self.candidates and arch not in draws:
                draws.append(arch)
        if len(draws) <= 1 or not self.candidates:
            return draws[0] if draws else None
        pool = np.vstack([space.encode(a) for a in draws]).astype(float)
        if pool.shape[1] == 0:
            return draws[0]
        chosen = self._encodings[: len(self.candidates)]
        scale = chosen.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        difference = (pool[:, None, :] - chosen[None, :, :]) / scale
        nearest = np.sqrt((difference ** 2).sum(axis=2)).min(axis=1)
        return draws[int(np.argmax(nearest))]  # argmax: the first draw wins ties, so duplicates fall back to chance
