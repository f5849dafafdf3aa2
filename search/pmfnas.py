"""PMF-NAS: progressive multi-fidelity NAS with a learning-curve predictor and an adaptive allocator.

The search runs in rounds; each round has the three stages of the method:

1. **Global exploration** — a space-filling sample of new architectures (greedy farthest points in
   encoding space, from a pool of random draws) trained to the low fidelity.
2. **Regional search** — the predictor turns every low-fidelity curve into a predicted max-epoch metric
   with uncertainty. The region centres are the architectures with the highest optimistic prediction
   (mean + κ·std); each centre is *resumed* to the medium fidelity and its neighbourhood is explored
   with new mutants (``space.mutate``) trained to the medium fidelity.
3. **Fine optimisation** — the candidates with the best optimistic prediction are resumed to the max
   fidelity. The search's answer is the best max-fidelity validation metric observed (the runner's
   incumbent rule).

Adaptive allocation, throughout: epochs go to the highest optimistic predictions, and a candidate whose
optimistic bound (mean + z·std) falls below the pessimistic bound (mean − z·std) of the best candidate
is stopped for good. The split of effort across stages adapts to what was learnt: each architecture
sent to stage 3 has its predicted final recorded at decision time; once it finishes, the Spearman
correlation ρ between those predictions and the observed finals measures how well the predictor ranks.
The next round's stage 1 then samples ``max(min_global, round(n_global·(1−ρ⁺)))`` architectures and
stage 2 sends ``round(mutants_per_region·(1+ρ⁺))`` mutants per region (ρ⁺ = max(ρ, 0)): a predictor
that ranks well moves effort from blind exploration to the promising regions.

Fidelities are fractions of max epochs (rounded up to a recorded fidelity), so one config serves 50-,
108- and 200-epoch benchmarks. Ablations: ``use_predictor=False`` (last observed value only),
``use_allocator=False`` (a fixed successive-halving cut by observed value, no stopping, no bonus),
``use_stage2=False`` (stage 3 picks directly from stage 1).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from search.base import Job, Observation, Problem, Searcher
from search.predictor import (LastValuePredictor, LearningCurvePredictor, PartialCurve, spread_epochs,
                              training_set)


@dataclass(frozen=True)
class PMFNASConfig:
    """Every knob of PMF-NAS, with its default.

    low_fidelity, medium_fidelity: stage-1 and stage-2 epochs as fractions of max epochs (0.1, 0.3).
    n_global: stage-1 architectures in the first round (24); min_global: fewest in later rounds (8).
    candidate_pool: stage 1 picks its space-filling sample from candidate_pool × n random draws (8).
    n_regions: region centres per round (4); mutants_per_region: base stage-2 mutants per centre (2).
    n_fine: candidates resumed to max epochs per round (3).
    kappa: uncertainty bonus of the optimistic score mean + kappa·std used for ranking (1.0).
    stop_z: half-width in stds of the bounds used by the stopping rule (1.645, a 90 % interval).
    min_curves: complete curves before the forest predictor replaces the last-value baseline (5).
    use_predictor, use_allocator, use_stage2: the ablation switches (all True).
    eta: the keep-1/eta cut that replaces the allocator when use_allocator is False (3).
    """

    low_fidelity: float = 0.1
    medium_fidelity: float = 0.3
    n_global: int = 24
    min_global: int = 8
    candidate_pool: int = 8
    n_regions: int = 4
    mutants_per_region: int = 2
    n_fine: int = 3
    kappa: float = 1.0
    stop_z: float = 1.645
    min_curves: int = 5
    use_predictor: bool = True
    use_allocator: bool = True
    use_stage2: bool = True
    eta: float = 3.0

    def __post_init__(self):
        if not 0 < self.low_fidelity < self.medium_fidelity < 1:
            raise ValueError(f"fidelities must satisfy 0 < low_fidelity ({self.low_fidelity}) < "
                             f"medium_fidelity ({self.medium_fidelity}) < 1")
        for name in ("n_global", "min_global", "candidate_pool", "n_regions", "n_fine", "min_curves"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.mutants_per_region < 0 or self.kappa < 0 or self.stop_z < 0:
            raise ValueError("mutants_per_region, kappa and stop_z must not be negative")
        if self.eta <= 1:
            raise ValueError(f"eta={self.eta} must be greater than 1")


@dataclass
class _Candidate:
    arch: str
    round: int
    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    failed: bool = False
    stopped: bool = False

    @property
    def trained(self) -> int:
        return int(self.epochs[-1]) if self.epochs.size else 0


class PMFNAS(Searcher):
    """Progressive multi-fidelity NAS (this project's implementation of the PMF-NAS abstract).

    Parameters: ``problem``, ``rng``, ``config`` (a :class:`PMFNASConfig`).
    """

    def __init__(self, problem: Problem, rng: np.random.Generator, config: PMFNASConfig | None = None):
        super().__init__(problem, rng)
        self.config = config or PMFNASConfig()
        self.low = problem.fidelity_at_least(self.config.low_fidelity * problem.max_epochs)
        self.medium = problem.fidelity_at_least(self.config.medium_fidelity * problem.max_epochs)
        self.candidates: dict[str, _Candidate] = {}
        self._queue: deque[Job] = deque()
        self._pending: set[str] = set()
        self._stage = "fine"  # so that the first advance starts round 0 with global exploration
        self.round = -1
        self._decision_predictions: dict[str, float] = {}
        self.rank_quality = 0.0
        self.history: list[dict] = []
        if self.config.use_predictor:
            self.predictor = LearningCurvePredictor(problem.max_epochs, rng, min_curves=self.config.min_curves)
        else:
            self.predictor = LastValuePredictor(problem.max_epochs)

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Job | None:
        # A stage may have nothing to do (say, a finite space is used up); a whole round with no job ends the search.
        for _ in range(4):
            if self._queue:
                job = self._queue.popleft()
                self._pending.add(job.arch)
                return job
            if self._pending:
                return None
            self._advance()
        return None

    def tell(self, job: Job, observation: Observation) -> None:
        if job.arch not in self._pending:
            raise ValueError(f"told about {job.arch}, which is not in flight")
        self._pending.discard(job.arch)
        candidate = self.candidates[job.arch]
        candidate.epochs = np.asarray(observation.epochs, dtype=int)
        candidate.values = np.asarray(observation.values, dtype=float)
        candidate.failed = bool(observation.failed)
        if candidate.trained >= self.problem.max_epochs and job.arch in self._decision_predictions:
            self._update_rank_quality()

    # ------------------------------------------------------------------ stages
    def _advance(self) -> None:
        order = ["global", "regional", "fine"] if self.config.use_stage2 else ["global", "fine"]
        self._stage = order[(order.index(self._stage) + 1) % len(order)] if self._stage in order else "global"
        if self._stage == "global":
            self.round += 1
            self._stage_global()
        elif self._stage == "regional":
            self._stage_regional()
        else:
            self._stage_fine()
        self.history.append({"round": self.round, "stage": self._stage, "jobs": len(self._queue),
                             "rank_quality": self.rank_quality})

    def _new_candidate(self, arch: str, epochs: int) -> None:
        self.candidates[arch] = _Candidate(arch, self.round)
        self._queue.append(Job(arch, epochs))

    def _resume(self, candidate: _Candidate, epochs: int) -> None:
        self._queue.append(Job(candidate.arch, epochs, resume=True))

    def _stage_global(self) -> None:
        rho = max(self.rank_quality, 0.0)
        n = self.config.n_global if self.round == 0 else max(self.config.min_global,
                                                             int(round(self.config.n_global * (1 - rho))))
        for arch in self._space_filling_sample(n):
            self._new_candidate(arch, self.low)

    def _stage_regional(self) -> None:
        pool = [c for c in self._alive() if c.trained < self.medium]
        if not pool:
            return
        chosen = self._select(pool, self.config.n_regions)
        mutants = int(round(self.config.mutants_per_region * (1 + max(self.rank_quality, 0.0))))
        for centre in chosen:
            self._resume(centre, self.medium)
            for _ in range(mutants):
                child = self._unseen_mutant(centre.arch)
                if child is not None:
                    self._new_candidate(child, self.medium)

    def _stage_fine(self) -> None:
        pool = [c for c in self._alive() if c.trained < self.problem.max_epochs]
        if not pool:
            return
        chosen = self._select(pool, self.config.n_fine)
        mean, _ = self._predict(chosen)
        for candidate, predicted in zip(chosen, mean):
            self._decision_predictions[candidate.arch] = float(predicted)
            self._resume(candidate, self.problem.max_epochs)

    # ------------------------------------------------------------------ allocation
    def _alive(self) -> list[_Candidate]:
        return [c for c in self.candidates.values() if not c.failed and not c.stopped and c.trained > 0]

    def _select(self, pool: list[_Candidate], k: int) -> list[_Candidate]:
        """The next candidates to get epochs: by optimistic prediction, or by a fixed SH cut (ablation)."""
        if not self.config.use_allocator:
            # Fixed successive-halving cut: keep the top 1/eta of this round's pool by observed value.
            current = [c for c in pool if c.round == self.round] or pool
            keep = max(1, int(len(current) // self.config.eta))
            ranked = sorted(current, key=lambda c: (-self.score(c.values[-1]), c.arch))
            return ranked[:min(k, keep)]
        self._fit_predictor()
        mean, std = self._predict(pool)
        score, score_std = self._to_score(mean), std
        optimistic = score + self.config.stop_z * score_std
        best_pessimistic = self._best_pessimistic()
        for candidate, upper in zip(pool, optimistic):
            if upper < best_pessimistic:
                candidate.stopped = True
        ucb = score + self.config.kappa * score_std
        order = sorted(range(len(pool)), key=lambda i: (-ucb[i], pool[i].arch))
        return [pool[i] for i in order if not pool[i].stopped][:k]

    def _best_pessimistic(self) -> float:
        """The pessimistic bound of the best candidate: a finished one counts at its observed value."""
        alive = self._alive()
        if not alive:
            return -np.inf
        mean, std = self._predict(alive)
        pessimistic = self._to_score(mean) - self.config.stop_z * std
        for i, candidate in enumerate(alive):
            if candidate.trained >= self.problem.max_epochs:
                pessimistic[i] = self.score(candidate.values[-1])
        return float(np.max(pessimistic))

    def _to_score(self, values: np.ndarray) -> np.ndarray:
        return values if self.problem.higher_is_better else -values

    def _curve(self, candidate: _Candidate) -> PartialCurve:
        return PartialCurve(self.problem.space.encode(candidate.arch), candidate.epochs, candidate.values)

    def _predict(self, pool: list[_Candidate]) -> tuple[np.ndarray, np.ndarray]:
        unfinished = [c for c in pool if c.trained < self.problem.max_epochs]
        mean = np.array([c.values[-1] for c in pool], dtype=float)
        std = np.zeros(len(pool))
        if unfinished:
            m, s = self.predictor.predict([self._curve(c) for c in unfinished])
            index = {c.arch: i for i, c in enumerate(unfinished)}
            for i, c in enumerate(pool):
                if c.arch in index:
                    mean[i], std[i] = m[index[c.arch]], s[index[c.arch]]
        return mean, std

    def _fit_predictor(self) -> None:
        complete = [c for c in self.candidates.values()
                    if not c.failed and c.trained >= self.problem.max_epochs]
        if not complete:
            return
        cuts = sorted({self.low, self.medium} | set(spread_epochs(self.problem.fidelities[:-1], 8)))
        samples, targets = training_set([self.problem.space.encode(c.arch) for c in complete],
                                        [(c.epochs, c.values) for c in complete], self.problem.max_epochs, cuts)
        if not samples:
            return
        if isinstance(self.predictor, LearningCurvePredictor):
            self.predictor.fit(samples, targets, n_complete=len(complete))
        else:
            self.predictor.fit(samples, targets)

    def _update_rank_quality(self) -> None:
        pairs = [(p, self.candidates[a].values[-1]) for a, p in self._decision_predictions.items()
                 if self.candidates[a].trained >= self.problem.max_epochs and not self.candidates[a].failed]
        if len(pairs) >= 4:
            predicted, observed = np.array(pairs).T
            rho = stats.spearmanr(predicted, observed).statistic
            self.rank_quality = float(rho) if np.isfinite(rho) else 0.0

    # ------------------------------------------------------------------ sampling
    def _space_filling_sample(self, n: int) -> list[str]:
        space = self.problem.space
        draws: list[str] = []
        seen = set(self.candidates)
        for _ in range(self.config.candidate_pool * n * 3):
            if len(draws) >= self.config.candidate_pool * n:
                break
            arch = space.sample(self.rng)
            if arch not in seen:
                seen.add(arch)
                draws.append(arch)
        if len(draws) <= n:
            return draws
        pool = np.vstack([space.encode(a) for a in draws])
        scale = pool.std(axis=0)
        pool = (pool - pool.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
        chosen = [int(self.rng.integers(len(draws)))]
        nearest = np.linalg.norm(pool - pool[chosen[0]], axis=1)
        while len(chosen) < n:
            pick = int(np.argmax(nearest))
            chosen.append(pick)
            nearest = np.minimum(nearest, np.linalg.norm(pool - pool[pick], axis=1))
        return [draws[i] for i in chosen]

    def _unseen_mutant(self, arch: str) -> str | None:
        for _ in range(20):
            child = self.problem.space.mutate(arch, self.rng)
            if child not in self.candidates:
                return child
        return None

