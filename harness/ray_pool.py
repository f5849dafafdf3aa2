"""Real trials on a Ray cluster: :class:`RayPool`, a worker pool whose workers are Ray actors on any node.

Each worker is one Ray actor holding the resources of one trial (``cpus_per_trial``, ``gpus_per_trial``;
fractional GPUs pack several trials on one GPU: 0.125 runs 8 per GPU). Like a
:class:`~harness.workers.ProcessPool` process, an actor builds its oracle once (``oracle_factory(index,
None)``), when the pool starts and before the search clock runs, and then evaluates the jobs it is given.
Trials keep their state in checkpoints on storage every node reads (a
:class:`~benchmarks.training.factory.TrainerFactory` on a shared ``checkpoint_dir``), so a promotion
continues on whichever node's worker it lands and pays only its extra epochs.

Faults. A worker process or node that dies takes its trial with it; Ray restarts the actor (on any node with
room) and the pool runs the trial again, ``max_retries`` times, from its last checkpoint. The completion says
so in ``error``, and the evaluation's cost includes the seconds the lost attempts ran (nothing is free). A
trial whose retries are used up is a failed completion naming the reason; the search goes on. Ray is imported
only here, and only when a pool is made or a cluster joined: ``pip install "pmf-nas[ray]"``.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

from harness.clock import WallClock
from harness.workers import STOPPED_AT_DEADLINE, Completion
from search.base import Job

__all__ = ["RayPool", "connect", "disconnect", "import_ray"]

#: The longest single wait for a completion; longer waits are taken in slices.
_LONGEST_WAIT = 3600.0


def import_ray():
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError('running on a Ray cluster needs Ray: pip install "pmf-nas[ray]"') from None
    return ray


def connect(address: str) -> bool:
    """Join the Ray cluster at ``address`` unless this process has already; True if this call joined it.

    ``"auto"``: the cluster this machine is part of (``ray start`` ran here); ``"local"``: a new one-machine
    cluster for this process only, stopped when it disconnects; otherwise ``HOST:PORT`` of the head node
    (``ray://HOST:10001`` for Ray Client). Whoever joined (True) calls :func:`disconnect` when done.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    if not address:
        raise ValueError("the Ray address is empty: give auto, local or HOST:PORT of the head node")
    _check_reachable(address)
    try:
        if address == "local":
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except ConnectionError as error:
        raise ValueError(f"no Ray cluster at {address!r} ({error}); start one with 'ray start --head' "
                         "(README: More than one machine) or run on this machine alone with --ray local") from None
    return True


def _check_reachable(address: str) -> None:
    """ValueError unless a HOST:PORT head node accepts a connection: ray.init retries an unreachable one for minutes."""
    host, _, port = address.rpartition(":")
    if address in ("auto", "local") or "://" in address or not host:
        return
    if not port.isdigit():
        raise ValueError(f"the Ray address {address!r} must be auto, local or HOST:PORT with a numeric port")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as error:
        raise ValueError(f"no Ray cluster at {address!r}: {error}; start one with 'ray start --head' (README: More "
                         "than one machine) or run on this machine alone with --ray local") from None


def disconnect() -> None:
    """Leave the cluster (a ``local`` one stops; a cluster started with ``ray start`` keeps running)."""
    import_ray().shutdown()


class _TrialWorker:
    """The body of one worker actor: its own oracle, and stamps of when each job ran (wall time of its node)."""

    def __init__(self, factory: Callable[[int, str | None], Any], index: int):
        self.oracle, self.problem = None, ""
        try:
            self.oracle = factory(index, None)
        except Exception as error:  # reported by ready(): the pool raises it at start, or fails the jobs after
            self.problem = f"worker {index} could not build its oracle: {type(error).__name__}: {error}"

    def ready(self) -> tuple[int, str, str]:
        """(process id, host name, problem building the oracle or "")."""
        return os.getpid(), socket.gethostname(), self.problem

    def evaluate(self, arch: str, epochs: int, start: int, repeat: int):
        began = time.time()
        if self.oracle is None:
            return None, self.problem, began, time.time()
        try:
            return self.oracle.evaluate(arch, epochs, start=start, repeat=repeat), "", began, time.time()
        except Exception as error:  # a trial that raises is a failed trial, not a failed worker
            return None, f"{type(error).__name__}: {error}", began, time.time()


@dataclass
class _Trial:
    """A job on a worker: what it asks for, its attempts so far, and the Ray reference now awaited."""

    job: Job
    start: int
    repeat: int
    sequence: int
    submitted: float  # pool clock when the job was submitted
    attempt_submitted: float
    ref: Any = None
    restarting: bool = False  # ref is the worker's ready() after a restart; the attempt is sent after it
    attempts: int = 1
    lost_seconds: float = 0.0
    deaths: list = dataclasses.field(default_factory=list)


class RayPool:
    """``n_workers`` Ray actors on the wall clock, each running one trial at a time with its declared resources.

    ``oracle_factory`` as for :class:`~harness.workers.ProcessPool` (picklable; called once in every actor
    with ``(worker_index, None)``: Ray sets ``CUDA_VISIBLE_DEVICES`` to the actor's GPU, so ``"cuda"`` is it).
    ``oracle``: optional parent-side mirror (the ledger asks it which keys name one architecture; the CLI
    records the table from it). ``max_retries``: how many times a trial whose worker died runs again.
    ``address``: the cluster to join when this process has not (see :func:`connect`); the pool then leaves it
    at :meth:`shutdown`. The constructor refuses more workers than the cluster has resources for, and waits
    until every actor has built its oracle (an error there is raised); the clock starts afterwards.

    ``Completion.worker`` is the worker slot; ``start``/``end`` are the actor's own stamps converted to the
    pool clock (clamped to when the parent submitted and collected the job, so clock skew between nodes cannot
    move a job outside that window). ``retries`` counts trials run again; :meth:`running_trials` says which
    process on which host runs each job.
    """

    def __init__(self, oracle_factory: Callable[[int, str | None], Any], n_workers: int = 1, *,
                 cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0, max_retries: int = 1,
                 oracle: Any = None, address: str | None = None):
        if n_workers < 1:
            raise ValueError(f"n_workers={n_workers} must be at least 1")
        if not cpus_per_trial > 0:
            raise ValueError(f"cpus_per_trial={cpus_per_trial} must be positive")
        if gpus_per_trial < 0 or (gpus_per_trial > 1 and gpus_per_trial != int(gpus_per_trial)):
            raise ValueError(f"gpus_per_trial={gpus_per_trial} must be 0, a fraction of one GPU (e.g. 0.125 packs 8 "
                             "trials per GPU) or a whole number of GPUs")
        if max_retries < 0:
            raise ValueError(f"max_retries={max_retries} must be 0 or more")
        try:
            pickle.dumps(oracle_factory)
        except Exception as error:
            raise TypeError(f"oracle_factory must be picklable (a module-level function, a functools.partial of one, "
                            f"or a module-level class instance): {type(error).__name__}: {error}") from None
        ray = import_ray()
        self._ray = ray
        self._owns_connection = connect(address) if address is not None else False
        if not ray.is_initialized():
            raise RuntimeError("join a Ray cluster first (harness.ray_pool.connect) or give address")
        self.oracle_factory = oracle_factory
        self.n_workers = n_workers
        self.cpus_per_trial = float(cpus_per_trial)
        self.gpus_per_trial = float(gpus_per_trial)
        self.max_retries = int(max_retries)
        self.oracle = oracle
        self.retries = 0
        self._actors: list = []
        self._pids: list[int | None] = [None] * n_workers
        self._hosts: list[str] = [""] * n_workers
        self._restarts: dict[int, Any] = {}  # worker -> ready() of its restarting actor, when no job waits on it
        self._jobs: dict[int, _Trial] = {}
        self._finished: dict[int, Completion] = {}
        self._free = list(range(n_workers))
        self._sequence = 0
        self._closed = False
        self.clock = WallClock()
        try:
            self._check_resources()
            worker_class = ray.remote(_TrialWorker).options(
                num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_restarts=-1, max_task_retries=0)
            self._actors = [worker_class.remote(oracle_factory, index) for index in range(n_workers)]
            for worker, (pid, host, problem) in enumerate(ray.get([a.ready.remote() for a in self._actors])):
                if problem:
                    raise RuntimeError(problem)
                self._pids[worker], self._hosts[worker] = pid, host
        except BaseException:
            self.shutdown()
            raise
        self.clock = WallClock()  # the search starts now, not while the workers started

    def _check_resources(self) -> None:
        have = self._ray.cluster_resources()
        for name, each in (("CPU", self.cpus_per_trial), ("GPU", self.gpus_per_trial)):
            need = each * self.n_workers
            if need > have.get(name, 0.0) + 1e-9:
                raise ValueError(f"{self.n_workers} workers × {each:g} {name} per trial need {need:g} {name}s; the Ray "
                                 f"cluster has {have.get(name, 0.0):g}: use fewer workers or less per trial, or add nodes")

    # ------------------------------------------------------------------ what runs where
    def running_trials(self) -> list[tuple[Job, int, int | None, str]]:
        """(job, worker, process id, host) of every running job; the process id is None while its actor restarts."""
        return [(trial.job, worker, None if trial.restarting else self._pids[worker], self._hosts[worker])
                for worker, trial in list(self._jobs.items()) if worker not in self._finished]

    # ------------------------------------------------------------------ WorkerPool
    def idle_workers(self) -> int:
        return len(self._free)

    def in_flight(self) -> int:
        return len(self._jobs)

    def submit(self, job: Job, start: int = 0, repeat: int = 0) -> None:
        if self._closed:
            raise RuntimeError("the pool has been shut down")
        if not self._free:
            raise RuntimeError("no idle worker: the runner must check idle_workers() first")
        worker = min(self._free)
        now = self.clock.now()
        trial = _Trial(job, int(start), int(repeat), self._sequence, now, now)
        restart = self._restarts.pop(worker, None)
        if restart is not None:  # its actor is still restarting: the job is sent when it is back
            trial.ref, trial.restarting = restart, True
        else:
            trial.ref = self._send(worker, trial)
        self._free.remove(worker)
        self._jobs[worker] = trial
        self._sequence += 1

    def _send(self, worker: int, trial: _Trial):
        return self._actors[worker].evaluate.remote(trial.job.arch, int(trial.job.epochs), trial.start, trial.repeat)

    def _await_restart(self, worker: int):
        # A call to a restarting actor fails at once unless Ray may retry it: this one waits until it is back.
        return self._actors[worker].ready.options(max_task_retries=-1).remote()

    def _stamp(self, stamp: float, lower: float) -> float:
        now = self.clock.now()
        return min(max(now - (time.time() - stamp), lower), now)

    def _receive(self, worker: int) -> None:
        """Take what the worker's awaited reference holds: a result, its restart, or its death."""
        ray, trial = self._ray, self._jobs[worker]
        try:
            answer = ray.get(trial.ref)
        except ray.exceptions.RayError as error:
            if trial.restarting:  # cannot come back (max_task_retries=-1 waits through restarts): the cluster is gone
                raise
            self._lost(worker, trial, error)
            return
        if trial.restarting:
            pid, host, problem = answer
            self._pids[worker], self._hosts[worker] = pid, host
            trial.restarting = False
            trial.attempt_submitted = self.clock.now()
            if problem:
                self._finished[worker] = Completion(trial.job, worker, trial.submitted, self.clock.now(), None,
                                                    self._history(trial, f"its restarted worker failed: {problem}"))
            else:
                trial.ref = self._send(worker, trial)
            return
        evaluation, error, began, ended = answer
        start = self._stamp(began, trial.attempt_submitted)
        end = max(self._stamp(ended, start), start)
        if trial.deaths:
            start = trial.submitted
            if evaluation is not None:
                evaluation = dataclasses.replace(evaluation, cost=evaluation.cost + trial.lost_seconds)
            error = self._history(trial, error)
        self._finished[worker] = Completion(trial.job, worker, start, end, evaluation, error)

    def _lost(self, worker: int, trial: _Trial, error: Exception) -> None:
        """The worker died running ``trial``: run it again from its last checkpoint, or record it failed."""
        now = self.clock.now()
        trial.lost_seconds += now - trial.attempt_submitted
        # Ray's own message is a paragraph of troubleshooting advice; the exception's name says what was lost.
        trial.deaths.append(f"worker {worker} (pid {self._pids[worker]} on {self._hosts[worker] or '?'}) died "
                            f"({type(error).__name__})")
        self._pids[worker] = None
        if trial.attempts <= self.max_retries:
            trial.attempts += 1
            self.retries += 1
            trial.ref, trial.restarting = self._await_restart(worker), True
            return
        self._finished[worker] = Completion(trial.job, worker, trial.submitted, now, None,
                                            self._history(trial, "recorded failed"))
        self._restarts[worker] = self._await_restart(worker)

    @staticmethod
    def _history(trial: _Trial, outcome: str) -> str:
        retried = trial.attempts - 1
        said = "; ".join(trial.deaths)
        tail = f"; {outcome}" if outcome else ""
        return (f"{said}; retried {retried} time{'s' if retried != 1 else ''} from its last checkpoint{tail}"
                if retried else f"{said}{tail}")

    def _collect(self, timeout: float) -> None:
        ray = self._ray
        awaited = {trial.ref: worker for worker, trial in self._jobs.items() if worker not in self._finished}
        if not awaited:
            return
        ready, _ = ray.wait(list(awaited), num_returns=1, timeout=timeout)
        if ready:  # everything else already finished competes for "earliest" too
            ready, _ = ray.wait(list(awaited), num_returns=len(awaited), timeout=0)
        for ref in ready:
            self._receive(awaited[ref])
        for worker, ref in list(self._restarts.items()):  # refresh the process ids of restarted idle actors
            done, _ = ray.wait([ref], timeout=0)
            if done:
                del self._restarts[worker]
                self._pids[worker], self._hosts[worker], _ = ray.get(ref)

    def next_completion(self, deadline: float | None = None) -> Completion | None:
        if not self._jobs:
            raise RuntimeError("no job is running")
        self._collect(timeout=0)
        while not self._finished:
            if deadline is not None and self.clock.now() >= deadline:
                return None
            wait = _LONGEST_WAIT if deadline is None else min(max(deadline - self.clock.now(), 0.0), _LONGEST_WAIT)
            self._collect(timeout=wait)
        worker = min(self._finished, key=lambda w: (self._finished[w].end, self._jobs[w].sequence))
        done = self._finished.pop(worker)
        del self._jobs[worker]
        self._free.append(worker)
        return done

    def cancel(self, job: Job) -> Completion:
        """Stop ``job`` by ending its actor's process (its checkpoints up to the last epoch stay); Ray restarts it."""
        for worker, trial in list(self._jobs.items()):
            if trial.job == job:
                done = self._finished.pop(worker, None)
                if done is None:
                    self._ray.kill(self._actors[worker], no_restart=False)
                    self._pids[worker] = None
                    self._restarts[worker] = self._await_restart(worker)
                    done = Completion(job, worker, trial.submitted, self.clock.now(), None, STOPPED_AT_DEADLINE)
                del self._jobs[worker]
                self._free.append(worker)
                return done
        raise ValueError(f"job {job!r} is not running")

    # ------------------------------------------------------------------ lifetime
    def shutdown(self) -> None:
        """End every worker actor (a job still running stops there) and leave a cluster this pool joined. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for actor in self._actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # already gone with its node or the cluster
                pass
        self._actors = []
        if self._owns_connection:
            disconnect()

    def __enter__(self) -> "RayPool":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
