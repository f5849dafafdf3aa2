"""Worker pools: where jobs run while the runner waits for the next completion.

A pool owns the clock it runs on. The simulated pool evaluates on submission (the oracle knows the
cost) and releases results in order of simulated completion; a real pool runs jobs concurrently and
releases them as they finish. A Ray-backed pool would implement the same three methods.

:class:`ProcessPool` runs each worker as its own OS process (its own interpreter, GIL and CUDA context), so
that several trials share one GPU concurrently; :class:`TrainerFactory` builds the trainers its processes use.
"""
from __future__ import annotations

import dataclasses
import heapq
import json
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from benchmarks.oracle import Evaluation, FidelityOracle
from harness.clock import Clock, SimulatedClock, WallClock
from search.base import Job


@dataclass(frozen=True)
class Completion:
    """A finished job: who ran it, when, and what it observed."""

    job: Job
    worker: int
    start: float
    end: float
    evaluation: Evaluation | None
    error: str = ""


class WorkerPool(Protocol):
    n_workers: int
    clock: Clock

    def idle_workers(self) -> int: ...

    def submit(self, job: Job) -> None: ...

    def next_completion(self) -> Completion:
        """Block (or advance simulated time) until the earliest running job finishes."""

    def in_flight(self) -> int: ...


class SimulatedPool:
    """W workers on a simulated clock; a job holds its worker for exactly its recorded cost."""

    def __init__(self, oracle: FidelityOracle, n_workers: int = 1):
        if n_workers < 1:
            raise ValueError(f"n_workers={n_workers} must be at least 1")
        self.oracle = oracle
        self.n_workers = n_workers
        self.clock = SimulatedClock()
        self._free = list(range(n_workers))
        self._events: list[tuple[float, int, Completion]] = []
        self._sequence = 0

    def idle_workers(self) -> int:
        return len(self._free)

    def in_flight(self) -> int:
        return len(self._events)

    def submit(self, job: Job) -> None:
        if not self._free:
            raise RuntimeError("no idle worker: the runner must check idle_workers() first")
        worker = min(self._free)
        self._free.remove(worker)
        start = self.clock.now()
        evaluation = self.oracle.evaluate(job.arch, job.epochs)
        done = Completion(job, worker, start, start + evaluation.cost, evaluation)
        # The sequence number breaks ties between equal completion times in submission order.
        heapq.heappush(self._events, (done.end, self._sequence, done))
        self._sequence += 1

    def next_completion(self) -> Completion:
        end, _, done = heapq.heappop(self._events)
        self.clock.advance_to(end)
        self._free.append(done.worker)
        return done


class ThreadedPool:
    """W workers as threads on the wall clock, for oracles that really train (one job per worker)."""

    def __init__(self, oracle: FidelityOracle, n_workers: int = 1):
        if n_workers < 1:
            raise ValueError(f"n_workers={n_workers} must be at least 1")
        self.oracle = oracle
        self.n_workers = n_workers
        self.clock = WallClock()
        self._executor = ThreadPoolExecutor(max_workers=n_workers)
        self._free = list(range(n_workers))
        self._running: dict[Future, tuple[Job, int, float]] = {}

    def idle_workers(self) -> int:
        return len(self._free)

    def in_flight(self) -> int:
        return len(self._running)

    def submit(self, job: Job) -> None:
        worker = min(self._free)
        self._free.remove(worker)
        future = self._executor.submit(self.oracle.evaluate, job.arch, job.epochs)
        self._running[future] = (job, worker, self.clock.now())

    def next_completion(self) -> Completion:
        finished, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
        # Among simultaneous finishes, the earliest submitted goes first, for a stable order.
        future = min(finished, key=lambda f: self._running[f][2])
        job, worker, start = self._running.pop(future)
        self._free.append(worker)
        end = self.clock.now()
        try:
            return Completion(job, worker, start, end, future.result())
        except Exception as error:  # a trial that raises is a failed trial, not a failed search
            return Completion(job, worker, start, end, None, error=f"{type(error).__name__}: {error}")

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


# --------------------------------------------------------------------------- worker processes
def _send(conn, message) -> bool:
    try:
        conn.send(message)
        return True
    except (BrokenPipeError, EOFError, OSError):  # the parent is gone
        return False


def _worker_main(conn, factory, index: int, device: str | None) -> None:
    """One worker process: build the oracle once, then answer ``(arch, epochs)`` requests until told to stop."""
    import pickle
    import signal

    # Ctrl-C reaches the whole process group; the parent decides what happens to running jobs (shutdown).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    oracle, problem = None, ""
    try:
        oracle = factory(index, device)
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it or fails the jobs
        problem = f"worker {index} could not build its oracle: {type(error).__name__}: {error}"
        try:
            pickle.dumps(error)
        except Exception:
            error = None
        if not _send(conn, ("start-failed", problem, error)):
            return
    else:
        if not _send(conn, ("ready", os.getpid())):
            return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        arch, epochs = message
        if oracle is None:
            reply = ("done", None, problem, time.monotonic())
        else:
            try:
                reply = ("done", oracle.evaluate(arch, epochs), "", time.monotonic())
            except Exception as error:  # a trial that raises is a failed trial, not a failed worker
                reply = ("done", None, f"{type(error).__name__}: {error}", time.monotonic())
        try:
            conn.send(reply)  # pickles first: an unpicklable result raises before anything is written
        except (BrokenPipeError, EOFError, OSError):
            return
        except Exception as error:
            if not _send(conn, ("done", None, f"the result could not be sent back: {type(error).__name__}: {error}",
                                reply[3])):
                return


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessPool:
    """W workers as OS processes on the wall clock: trials run truly in parallel (one GIL, one CUDA context each).

    Each worker process calls ``oracle_factory(worker_index, device)`` once, when it starts, and evaluates
    every job it is given with that oracle. The factory must be picklable (a module-level function, a
    ``functools.partial`` of one, or an instance of a module-level class such as :class:`TrainerFactory`);
    it and what it returns live in the worker, so every worker has ITS OWN oracle. An oracle whose resume
    state is in memory (:class:`~benchmarks.oracle.TabularOracle`) therefore resumes only the jobs that land
    on the same worker; a trainer must keep its trials on disk (:class:`TrainerFactory` does). Worker
    processes are daemonic: their oracle may not start processes of its own with ``multiprocessing``.

    ``devices``: optional device strings given to the workers round-robin (``["cuda:0"]``: all on one GPU;
    ``["cuda:0", "cuda:1"]``: alternating); ``None`` passes ``device=None`` (the factory decides).
    ``oracle``: optional oracle in THIS process mirroring the workers' (not used to run jobs): a journal's
    replay looks finished jobs up in it (``ResumingPool``'s ``restore="auto"``), and the CLI records the table
    from it. ``start_method``: the ``multiprocessing`` start method (default ``"spawn"``, safe with CUDA).

    The constructor starts every worker and waits until each has built its oracle (they do so in parallel);
    an error there is raised here (the worker's own exception when it pickles), and the clock starts only
    afterwards, so start-up is not charged to the budget. ``Completion.worker`` is the worker (process slot)
    that ran the job; ``end`` is when the worker finished it. ``next_completion`` returns the earliest finished
    job (ties: the earliest submitted). A job whose oracle raises is a failed completion (``evaluation=None``,
    ``error`` naming the exception); so is a job whose worker process dies (a crash, ``os._exit``, the OOM
    killer): ``error`` says so with the exit code, and a new process (with a newly built oracle) replaces the
    dead one in the background, so the search goes on (``restarts`` counts them). ``shutdown()`` stops the
    workers; a job still running then is terminated (a trainer's completed epochs are in its checkpoints).
    """

    def __init__(self, oracle_factory: Callable[[int, str | None], Any], n_workers: int = 1,
                 devices: Sequence[str] | None = None, *, oracle: Any = None, start_method: str = "spawn"):
        import pickle

        if n_workers < 1:
            raise ValueError(f"n_workers={n_workers} must be at least 1")
        if devices is not None:
            devices = tuple(str(d) for d in devices)
            if not devices:
                raise ValueError("devices must name at least one device (or be None)")
        try:
            pickle.dumps(oracle_factory)
        except Exception as error:
            raise TypeError(f"oracle_factory must be picklable (a module-level function, a functools.partial of one, "
                            f"or a module-level class instance): {type(error).__name__}: {error}") from None
        self.oracle_factory = oracle_factory
        self.n_workers = n_workers
        self.devices = devices
        self.oracle = oracle
        self.restarts = 0
        self._context = multiprocessing.get_context(start_method)
        self._processes: list = [None] * n_workers
        self._conns: list = [None] * n_workers
        self._free = list(range(n_workers))
        self._jobs: dict[int, tuple[Job, float, int]] = {}  # worker -> (job, start, submission number)
        self._finished: dict[int, Completion] = {}  # received, not yet handed back
        self._sequence = 0
        self._closed = False
        self.clock = WallClock()
        try:
            for worker in range(n_workers):
                self._spawn(worker)
            self._await_start()
        except BaseException:
            self.shutdown()
            raise
        self.clock = WallClock()  # the search starts now, not while the workers started

    def device_of(self, worker: int) -> str | None:
        """The device string worker ``worker`` was given (``None``: the factory decides)."""
        return None if self.devices is None else self.devices[worker % len(self.devices)]

    def _spawn(self, worker: int) -> None:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_main, name=f"pmfnas-worker-{worker}", daemon=True,
                                        args=(child, self.oracle_factory, worker, self.device_of(worker)))
        process.start()
        child.close()
        self._processes[worker], self._conns[worker] = process, parent

    def _await_start(self) -> None:
        from multiprocessing.connection import wait as wait_for

        pending = set(range(self.n_workers))
        while pending:
            objects = [self._conns[w] for w in pending] + [self._processes[w].sentinel for w in pending]
            wait_for(objects)
            for worker in sorted(pending):
                conn, process = self._conns[worker], self._processes[worker]
                message, eof = None, False
                try:
                    if conn.poll():
                        message = conn.recv()
                except (EOFError, OSError):
                    eof = True
                if message is not None:
                    if message[0] == "start-failed":
                        _, problem, error = message
                        raise error if isinstance(error, BaseException) else RuntimeError(problem)
                    pending.discard(worker)
                elif eof or not process.is_alive():
                    process.join(timeout=5)
                    raise RuntimeError(f"worker process {worker} ({_exit_text(process.exitcode)}) ended while it "
                                       "built its oracle")

    def _respawn(self, worker: int) -> None:
        """Replace a dead worker process (it builds its oracle in the background; jobs queue behind that)."""
        process, conn = self._processes[worker], self._conns[worker]
        try:
            conn.close()
        except OSError:
            pass
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        self.restarts += 1
        self._spawn(worker)

    # ------------------------------------------------------------------ WorkerPool
    def idle_workers(self) -> int:
        return len(self._free)

    def in_flight(self) -> int:
        return len(self._jobs)

    def submit(self, job: Job) -> None:
        if self._closed:
            raise RuntimeError("the pool has been shut down")
        if not self._free:
            raise RuntimeError("no idle worker: the runner must check idle_workers() first")
        worker = min(self._free)
        message = (job.arch, int(job.epochs))
        if not self._processes[worker].is_alive() or not _send(self._conns[worker], message):
            self._respawn(worker)  # it died while idle
            if not _send(self._conns[worker], message):
                raise RuntimeError(f"worker process {worker} cannot be (re)started")
        self._free.remove(worker)
        self._jobs[worker] = (job, self.clock.now(), self._sequence)
        self._sequence += 1

    def _receive(self, worker: int) -> None:
        """Take worker's answer if it has one (or its death, if it died)."""
        job, start, _ = self._jobs[worker]
        conn, process = self._conns[worker], self._processes[worker]
        try:
            while conn.poll():
                message = conn.recv()
                if message[0] == "done":
                    _, evaluation, error, finished = message
                    now = self.clock.now()
                    end = min(max(now - (time.monotonic() - finished), start), now)
                    self._finished[worker] = Completion(job, worker, start, end, evaluation, error)
                    return
                # "ready" or "start-failed" of a replacement process: the job's answer follows
        except (EOFError, OSError):  # it is gone (or going): wait for its exit code
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        if not process.is_alive():
            process.join()
            code = process.exitcode
            self._finished[worker] = Completion(
                job, worker, start, self.clock.now(), None,
                f"worker process {worker} died while running this job ({_exit_text(code)}); a new process replaces it")
            self._respawn(worker)

    def _collect(self, block: bool) -> None:
        from multiprocessing.connection import wait as wait_for

        busy = [w for w in self._jobs if w not in self._finished]
        if not busy:
            return
        objects = [self._conns[w] for w in busy] + [self._processes[w].sentinel for w in busy]
        ready = set(wait_for(objects, timeout=None if block else 0))
        for worker in busy:
            if self._conns[worker] in ready or self._processes[worker].sentinel in ready:
                self._receive(worker)

    def next_completion(self) -> Completion:
        if not self._jobs:
            raise RuntimeError("no job is running")
        self._collect(block=False)  # everything already finished competes for "earliest"
        while not self._finished:
            self._collect(block=True)
        worker = min(self._finished, key=lambda w: (self._finished[w].end, self._jobs[w][2]))
        done = self._finished.pop(worker)
        del self._jobs[worker]
        self._free.append(worker)
        return done

    # ------------------------------------------------------------------ lifetime
    def shutdown(self) -> None:
        """Stop every worker process; a job still running is terminated. Idempotent."""
        self._closed = True
        for worker, process in enumerate(self._processes):
            if process is None:
                continue
            if worker in self._jobs and worker not in self._finished:
                process.terminate()
            else:
                _send(self._conns[worker], None)
        for worker, process in enumerate(self._processes):
            if process is None:
                continue
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
            try:
                self._conns[worker].close()
            except OSError:
                pass
            self._processes[worker] = self._conns[worker] = None

    def __enter__(self) -> "ProcessPool":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


# --------------------------------------------------------------------------- trainers in worker processes
@dataclass(frozen=True)
class TrainerFactory:
    """``oracle_factory`` of a :class:`ProcessPool` of real trainers that share one ``checkpoint_dir``.

    Every worker's oracle trains with ``config`` (a :class:`~benchmarks.training.trainer.TrainConfig`) and
    ``fidelities`` into ``checkpoint_dir`` with ``reuse_checkpoints=True`` and keeps no trial state in
    memory between jobs: each job continues the architecture's checkpoint on disk, whichever worker trained
    it before, and is charged only the epochs it adds. (The runner never runs one architecture twice at
    once, so no two processes write one checkpoint.) A trial that fails leaves its failed record beside its
    checkpoint (``<checkpoint>.failed.json``): asking for it again anywhere charges nothing, as in one
    process. Checkpoints already in ``checkpoint_dir`` with these settings are continued, not retrained.

    ``device`` (from the pool's ``devices``) places the worker: it must be of ``config.device``'s type, and
    for CUDA the worker makes it the current device, so ``config.device`` should be ``"cuda"`` (an index
    there would pin every worker to it; ``config.device`` is part of the settings fingerprint, so all
    workers keep the same one and share checkpoints). ``num_threads`` sets ``torch.set_num_threads`` in
    each worker (None: torch's default, every core, in every process).

    In the parent, :meth:`trainer` is a :class:`~benchmarks.training.trainer.TrainerOracle` of the same
    settings on the same directory (a pool's ``oracle``), and :meth:`adopt` makes it know the trials the
    workers trained, e.g. to record them with ``to_table``.
    """

    config: Any
    checkpoint_dir: str
    fidelities: tuple[int, ...] | None = None
    num_threads: int | None = None

    def __call__(self, worker_index: int, device: str | None = None) -> "_CheckpointedTrainer":
        import torch

        if self.num_threads is not None:
            torch.set_num_threads(int(self.num_threads))
        if device is not None:
            want, have = torch.device(device), torch.device(self.config.device)
            if want.type != have.type or (have.index is not None and want.index != have.index):
                raise ValueError(f"worker {worker_index} was given device {device!r}, but the trainer's settings say "
                                 f"device={self.config.device!r}: give the device type there (e.g. 'cuda') and the "
                                 "devices to spread the workers over here")
            if want.type == "cuda" and want.index is not None:
                torch.cuda.set_device(want)
        return _CheckpointedTrainer(self)

    def trainer(self, data=None):
        """A TrainerOracle of these settings on ``checkpoint_dir``, continuing its checkpoints."""
        from benchmarks.training.trainer import TrainerOracle

        return TrainerOracle(self.config, fidelities=self.fidelities, checkpoint_dir=self.checkpoint_dir, data=data,
                             reuse_checkpoints=True)

    @staticmethod
    def failure_path(trainer, arch: str) -> Path:
        """Where a failed trial's record is kept (beside its checkpoint)."""
        return trainer.checkpoint_path(arch).with_suffix(".failed.json")

    def adopt(self, trainer, archs: Sequence[str]) -> list[str]:
        """Make ``trainer`` (e.g. :meth:`trainer`) know each of ``archs`` as the workers left it.

        The failed record if the trial failed, else its last checkpoint; an architecture with neither
        (nothing of it was trained, or its worker process died in its first epoch) is skipped. Returns the
        architectures adopted, in the given order.
        """
        adopted = []
        for arch in archs:
            failed = self.failure_path(trainer, arch)
            if failed.is_file():
                trainer.adopt_records([json.loads(failed.read_text())])
                adopted.append(arch)
            elif trainer.adopt_checkpoints([arch]):
                adopted.append(arch)
        return adopted


class _CheckpointedTrainer:
    """A worker's oracle: one fresh TrainerOracle per job on the shared checkpoint directory; only the data stay."""

    def __init__(self, factory: TrainerFactory):
        self.factory = factory
        first = factory.trainer()
        self.data = first.prepare()
        # The first optimizer of a process imports torch._dynamo (over a second on a CPU): do it now, while the
        # pool starts its workers in parallel and before the search clock runs, not in the first trial.
        import torch

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        self.config = first.config
        self.space = first.space
        self.metric = first.metric
        self.higher_is_better = first.higher_is_better
        self.fidelities = first.fidelities
        self.max_epochs = first.max_epochs
        self.checkpoint_dir = first.checkpoint_dir

    def _trainer(self, arch: str):
        trainer = self.factory.trainer(self.data)
        failed = self.factory.failure_path(trainer, arch)
        if failed.is_file():
            trainer.adopt_records([json.loads(failed.read_text())])
        return trainer, failed

    def paid_epochs(self, arch: str) -> int:
        trainer, failed = self._trainer(arch)
        if not failed.is_file():
            trainer.adopt_checkpoints([arch])
        return trainer.paid_epochs(arch)

    def evaluate(self, arch: str, epochs: int):
        trainer, failed = self._trainer(arch)
        evaluation = trainer.evaluate(arch, epochs)
        if evaluation.failed and not failed.is_file():
            (record,) = trainer.records.values()
            tmp = failed.with_name(f"{failed.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(dataclasses.asdict(record)))
            os.replace(tmp, failed)
        return evaluation
