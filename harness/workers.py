"""Worker pools: where jobs run while the runner waits for the next completion.

A pool owns the clock it runs on. The simulated pool evaluates on submission (the oracle knows the
cost) and releases results in order of simulated completion; a real pool runs jobs concurrently and
releases them in the order they finished, by the times the workers stamped themselves (not when the
runner happened to collect them). Every pool can ``cancel`` a running job: at the deadline the runner
stops what is still running (a trainer keeps its last checkpoint).

:class:`ProcessPool` runs each worker as its own OS process (its own interpreter, GIL and CUDA context), so
that several trials share one GPU concurrently; :class:`benchmarks.training.factory.TrainerFactory` builds
the trainers its processes use.
"""
from __future__ import annotations

import heapq
import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from benchmarks.oracle import Evaluation, FidelityOracle
from harness.clock import Clock, SimulatedClock, WallClock
from search.base import Job


@dataclass(frozen=True)
class Completion:
    """A finished (or stopped) job: who ran it, when, and what it observed."""

    job: Job
    worker: int
    start: float
    end: float
    evaluation: Evaluation | None
    error: str = ""


STOPPED_AT_DEADLINE = "stopped at the deadline"
#: The longest single wait for a completion: waits beyond it (huge budgets) are taken in slices, as the OS
#: refuses some timeouts (selectors raise OverflowError for a budget of 1e9 s).
_LONGEST_WAIT = 3600.0


def _remaining(clock: Clock, deadline: float | None) -> float | None:
    """Seconds to wait for a completion before ``deadline`` (None: no deadline), at most one slice."""
    return _LONGEST_WAIT if deadline is None else min(max(deadline - clock.now(), 0.0), _LONGEST_WAIT)


class WorkerPool(Protocol):
    """Where jobs run. ``oracle`` (None when the workers build their own) answers what the ledger asks."""

    n_workers: int
    clock: Clock
    oracle: FidelityOracle | None

    def idle_workers(self) -> int: ...

    def submit(self, job: Job, start: int = 0, repeat: int = 0) -> None:
        """Run ``job`` as run ``repeat`` of its architecture, continuing from epoch ``start``."""

    def next_completion(self, deadline: float | None = None) -> Completion | None:
        """The job that finished first; None if none finishes before the clock reads ``deadline``."""

    def cancel(self, job: Job) -> Completion:
        """Stop the running ``job`` now (a trainer keeps its last completed epoch) and return its completion."""

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

    def submit(self, job: Job, start: int = 0, repeat: int = 0) -> None:
        if not self._free:
            raise RuntimeError("no idle worker: the runner must check idle_workers() first")
        worker = min(self._free)
        self._free.remove(worker)
        now = self.clock.now()
        evaluation = self.oracle.evaluate(job.arch, job.epochs, start=start, repeat=repeat)
        done = Completion(job, worker, now, now + evaluation.cost, evaluation)
        # The sequence number breaks ties between equal completion times in submission order.
        heapq.heappush(self._events, (done.end, self._sequence, done))
        self._sequence += 1

    def next_completion(self, deadline: float | None = None) -> Completion | None:
        end, _, done = self._events[0]
        if deadline is not None and end > deadline:
            self.clock.advance_to(max(deadline, self.clock.now()))
            return None
        heapq.heappop(self._events)
        self.clock.advance_to(end)
        self._free.append(done.worker)
        return done

    def cancel(self, job: Job) -> Completion:
        for index, (_, _, done) in enumerate(self._events):
            if done.job == job:
                self._events.pop(index)
                heapq.heapify(self._events)
                self._free.append(done.worker)
                return Completion(job, done.worker, done.start, self.clock.now(), None, STOPPED_AT_DEADLINE)
        raise ValueError(f"job {job!r} is not running")


class ThreadedPool:
    """W workers as threads on the wall clock, for oracles that really train (one job per worker).

    Each job's thread stamps its own start and end on the pool's clock, so a job that finished before
    the deadline counts even if the runner collects it later. ``cancel`` sets the job's stop signal: a
    trainer ends after the epoch it is in, keeping its checkpoint, and ``cancel`` waits for that.
    """

    def __init__(self, oracle: FidelityOracle, n_workers: int = 1):
        if n_workers < 1:
            raise ValueError(f"n_workers={n_workers} must be at least 1")
        self.oracle = oracle
        self.n_workers = n_workers
        self.clock = WallClock()
        self._executor = ThreadPoolExecutor(max_workers=n_workers)
        self._free = list(range(n_workers))
        # future -> (job, worker, submission number, stop signal, [start, end] stamped by the job's thread)
        self._running: dict[Future, tuple[Job, int, int, threading.Event, list]] = {}
        self._sequence = 0

    def idle_workers(self) -> int:
        return len(self._free)

    def in_flight(self) -> int:
        return len(self._running)

    def _work(self, job: Job, start: int, repeat: int, stop: threading.Event, stamps: list) -> Evaluation:
        stamps.append(self.clock.now())
        try:
            return self.oracle.evaluate(job.arch, job.epochs, start=start, repeat=repeat, stop=stop)
        finally:
            stamps.append(self.clock.now())

    def submit(self, job: Job, start: int = 0, repeat: int = 0) -> None:
        worker = min(self._free)
        self._free.remove(worker)
        stop, stamps = threading.Event(), []
        future = self._executor.submit(self._work, job, start, repeat, stop, stamps)
        self._running[future] = (job, worker, self._sequence, stop, stamps)
        self._sequence += 1

    def _completion(self, future: Future) -> Completion:
        job, worker, _, stop, stamps = self._running.pop(future)
        self._free.append(worker)
        start, end = (stamps + [self.clock.now()] * 2)[:2]
        try:
            evaluation = future.result()
        except Exception as error:  # a trial that raises is a failed trial, not a failed search
            return Completion(job, worker, start, end, None, error=f"{type(error).__name__}: {error}")
        return Completion(job, worker, start, end, evaluation, STOPPED_AT_DEADLINE if stop.is_set() else "")

    def next_completion(self, deadline: float | None = None) -> Completion | None:
        while True:
            finished, _ = wait(list(self._running), timeout=_remaining(self.clock, deadline), return_when=FIRST_COMPLETED)
            if finished:
                break
            if deadline is not None and self.clock.now() >= deadline:
                return None
        # Every future already done competes: the one whose worker stamped the earliest end goes first.
        finished = [f for f in self._running if f.done()]
        first = min(finished, key=lambda f: (self._running[f][4][-1] if len(self._running[f][4]) == 2 else
                                             float("inf"), self._running[f][2]))
        return self._completion(first)

    def cancel(self, job: Job) -> Completion:
        for future, (running, *_rest) in list(self._running.items()):
            if running == job:
                self._running[future][3].set()
                wait([future])
                return self._completion(future)
        raise ValueError(f"job {job!r} is not running")

    def shutdown(self) -> None:
        for _, _, _, stop, _ in self._running.values():
            stop.set()
        self._executor.shutdown(wait=True)


# --------------------------------------------------------------------------- worker processes
def _send(conn, message) -> bool:
    try:
        conn.send(message)
        return True
    except (BrokenPipeError, EOFError, OSError):  # the parent is gone
        return False


def _worker_main(conn, factory, index: int, device: str | None) -> None:
    """One worker process: build the oracle once, then answer ``(arch, epochs, start, repeat)`` requests until told to stop.

    Each answer carries the monotonic times the job started and ended here, so the parent orders and
    times jobs by when they really ran, not by when it read their answers.
    """
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
        arch, epochs, start, repeat = message
        began = time.monotonic()
        if oracle is None:
            reply = ("done", None, problem, began, time.monotonic())
        else:
            try:
                evaluation = oracle.evaluate(arch, epochs, start=start, repeat=repeat)
                reply = ("done", evaluation, "", began, time.monotonic())
            except Exception as error:  # a trial that raises is a failed trial, not a failed worker
                reply = ("done", None, f"{type(error).__name__}: {error}", began, time.monotonic())
        try:
            conn.send(reply)  # pickles first: an unpicklable result raises before anything is written
        except (BrokenPipeError, EOFError, OSError):
            return
        except Exception as error:
            if not _send(conn, ("done", None, f"the result could not be sent back: {type(error).__name__}: {error}",
                                reply[3], reply[4])):
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
    it and what it returns live in the worker, so every worker has ITS OWN oracle. Oracles are pure functions
    of (architecture, start, epochs, repeat), so that is enough for a lookup; a trainer must keep its trials on
    disk so that any worker can continue them (:class:`~benchmarks.training.factory.TrainerFactory` does).
    Worker processes are daemonic: their oracle may not start processes of its own with ``multiprocessing``.

    ``devices``: optional device strings given to the workers round-robin (``["cuda:0"]``: all on one GPU;
    ``["cuda:0", "cuda:1"]``: alternating); ``None`` passes ``device=None`` (the factory decides).
    ``oracle``: optional oracle in THIS process mirroring the workers' (not used to run jobs): the runner's
    ledger asks it which keys name one architecture, and the CLI records the table from it. ``start_method``: the ``multiprocessing`` start method (default ``"spawn"``, safe with CUDA).

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

    def submit(self, job: Job, start: int = 0, repeat: int = 0) -> None:
        if self._closed:
            raise RuntimeError("the pool has been shut down")
        if not self._free:
            raise RuntimeError("no idle worker: the runner must check idle_workers() first")
        worker = min(self._free)
        message = (job.arch, int(job.epochs), int(start), int(repeat))
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
                    _, evaluation, error, began, finished = message
                    now, mono = self.clock.now(), time.monotonic()
                    began_at = min(max(now - (mono - began), start), now)
                    end = min(max(now - (mono - finished), began_at), now)
                    self._finished[worker] = Completion(job, worker, began_at, end, evaluation, error)
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

    def _collect(self, timeout: float | None) -> None:
        from multiprocessing.connection import wait as wait_for

        busy = [w for w in self._jobs if w not in self._finished]
        if not busy:
            return
        objects = [self._conns[w] for w in busy] + [self._processes[w].sentinel for w in busy]
        ready = set(wait_for(objects, timeout=timeout))
        for worker in busy:
            if self._conns[worker] in ready or self._processes[worker].sentinel in ready:
                self._receive(worker)

    def next_completion(self, deadline: float | None = None) -> Completion | None:
        if not self._jobs:
            raise RuntimeError("no job is running")
        self._collect(timeout=0)  # everything already finished competes for "earliest"
        while not self._finished:
            if deadline is not None and self.clock.now() >= deadline:
                return None
            self._collect(timeout=_remaining(self.clock, deadline))
        worker = min(self._finished, key=lambda w: (self._finished[w].end, self._jobs[w][2]))
        done = self._finished.pop(worker)
        del self._jobs[worker]
        self._free.append(worker)
        return done

    def cancel(self, job: Job) -> Completion:
        """Stop ``job`` by ending its worker process (its checkpoints up to the last epoch stay); a new one replaces it."""
        for worker, (running, start, _) in list(self._jobs.items()):
            if running == job:
                done = self._finished.pop(worker, None)
                if done is None:
                    process = self._processes[worker]
                    process.terminate()
                    process.join(timeout=10)
                    # No replacement now (the search is ending); submit() starts one if the pool is used again.
                    done = Completion(job, worker, start, self.clock.now(), None, STOPPED_AT_DEADLINE)
                del self._jobs[worker]
                self._free.append(worker)
                return done
        raise ValueError(f"job {job!r} is not running")

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
