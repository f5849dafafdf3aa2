"""A search journal: what an interrupted search did, so that ``--resume`` continues it.

A real search can be interrupted (Ctrl-C, a crash, a lost machine). Its trained networks survive as
the trainer's checkpoints; what the *search* had seen and decided survives in its journal. Resuming
replays the journal to a fresh searcher built with the same method and seed: it makes the same
decisions, is told the same results at the same (recorded) times, and nothing that finished is
trained again. When the journal is used up the search goes on for real, and its clock goes on from
the journal's last recorded time, so the budget is not granted twice.

Two pool wrappers do this; the runner sees a plain :class:`~harness.workers.WorkerPool`::

    pool = JournalingPool(SimulatedPool(oracle, W) or ThreadedPool(trainer, W), path)   # a new search
    pool = JournalingPool(ResumingPool(real_pool, read_journal(path)), path)            # resuming it
    # or, for both: pool = journaled(real_pool, path, resume=...)

The file. JSON lines, appended one complete line at a time (one ``write`` of ``line + "\\n"``, then
``flush`` and ``os.fsync``), so an interruption never leaves a line half written except, in a crash,
the very last one; a last line without its newline is ignored on reading (with a warning) and cut
off before anything is appended. Floats are written as Python's ``json`` writes them (``NaN`` for a
failed value, ``repr`` precision, so a value reads back bit for bit). Events:

* ``{"event": "journal", "version": 1, "workers": W, "meta": {...}}``: the first line. ``meta`` says
  which search this is (the CLI writes method, seed, workers and the benchmark or the trainer's
  settings fingerprint) and is compared on resuming.
* ``{"event": "submit", "n": i, "arch", "epochs", "resume", "from_epoch", "repeat", "time"}``: the i-th
  job the search started (i counts from 0 over the whole search, resumed sessions included), with the
  epoch it continued from and its run number, as the runner's ledger decided them.
* ``{"event": "done", "n": i, "arch", "epochs", "resume", "worker", "start", "end", "evaluation":
  {"arch", "epochs": [...], "values": [...], "losses": [...], "cost", "failed", "reason"} or null,
  "error": ""}``: one line per completion the pool returned. A job stopped at the deadline gets none:
  it reads as running, so a resumed search with a larger budget continues it (from its checkpoint).
* ``{"event": "resume", "offset": T, "replayed": k, "running": m}``: a later session began here.

A submitted job without a ``done`` line was running when the search stopped.

Replay (:class:`ResumingPool`). The n-th job the resumed search submits must be the journal's n-th
submission (same architecture, epochs and resume flag); the first that is not raises
``ValueError("the journal at ... does not match this search: ...")`` before anything is trained,
which is how a different method, seed, space or worker count is caught. A submitted job that the
journal records as finished is not run: its recorded completion (recorded worker, start, end and
evaluation) is queued, and completions are handed back in order of recorded end (ties in journal
order), which is the order the interrupted search saw them. A recorded completion must also not
start before the replayed clock: a job submitted later than it was originally (the search waited
where it had not) is the same mismatch. Every other job goes to the real pool: the jobs that were
running at the interruption (the trainer continues them from their checkpoints with
``reuse_checkpoints``; their checkpointed epochs are not charged again) and everything after the
journal. While recorded completions are queued they come first. That is exact for a journal that
ends at an interruption: every job that had not finished by then ends later than everything
recorded. (A run stopped by ``max_jobs`` with several workers drained its workers without refilling
them; resuming it continues validly but is not the run that was never stopped. With one worker it
is.) A resumed search that asks for fewer jobs (a smaller budget, say) just stops; that is not an
error. The runner's ``max_jobs`` counts replayed jobs too, and a larger budget simply lets the resumed
search go on longer.

The journal needs nothing from the oracle: the runner rebuilds its ledger (what every architecture was
trained to and paid) from the replayed submissions and completions exactly as it built it the first
time, and a trainer with ``reuse_checkpoints`` continues a run that was running at the interruption
from its checkpoint.

Time (:class:`ResumedClock`). While the journal is replayed the clock shows the replayed times: the
end of the last completion handed back. Afterwards it shows ``offset + real_pool.clock.now()`` with
``offset`` the journal's last recorded time (a completion's end or a submission), and real
completions are shifted by ``offset``, so the trace and the budget continue where they stopped.
Time between the last journaled event and the interruption is not charged again (a job that was
running then resumes from its last checkpoint, whose epochs cost nothing more). A real pool on a
simulated clock (one with ``advance_to``, e.g. :class:`~harness.workers.SimulatedPool`) is instead run
in the journal's own timeline (``offset = 0``): a job that was running at the interruption starts
at the replayed time it was submitted, a new job no earlier than the journal's last time. So a
deterministic searcher interrupted after any completion and resumed on a ``SimulatedPool`` repeats
the uninterrupted run exactly, with any number of workers.

Worker ids: replayed completions keep their recorded worker; a job of the real pool gets the lowest
id not held by a running job.

Command line: ``pmfnas search ... --journal FILE`` writes the journal (real mode: by default
``CHECKPOINT_DIR/journal.jsonl`` when ``--checkpoint-dir`` is given; ``--no-journal`` for none); the same
command with ``--resume`` replays it and, in real mode, lets the trainer continue its checkpoints. Without
``--resume`` an existing non-empty journal is an error, never overwritten.
"""
from __future__ import annotations

import dataclasses
import heapq
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.oracle import Evaluation
from harness.clock import Clock
from harness.workers import STOPPED_AT_DEADLINE, Completion, WorkerPool
from search.base import Job

__all__ = ["JOURNAL_VERSION", "Journal", "JournalEntry", "ReplayedCompletion", "ResumedClock", "JournalingPool",
           "ResumingPool", "read_journal", "journaled", "journal_is_empty"]

JOURNAL_VERSION = 2


@dataclass(frozen=True)
class ReplayedCompletion(Completion):
    """A completion served from the journal, not run again (a :class:`JournalingPool` does not rewrite it)."""


@dataclass(frozen=True)
class JournalEntry(Completion):
    """One ``done`` line: a completion and ``n``, the submission it answers (0-based, over all sessions)."""

    n: int = -1


@dataclass
class Journal:
    """What :func:`read_journal` found in a journal file."""

    path: Path
    header: dict | None = None
    submitted: list[Job] = field(default_factory=list)  # by submission number
    dispatched: list[tuple[int, int]] = field(default_factory=list)  # (from epoch, run number), by submission
    submit_times: list[float] = field(default_factory=list)
    completions: list[JournalEntry] = field(default_factory=list)  # in journal order
    sessions: int = 0
    partial_line: bool = False

    @property
    def workers(self) -> int | None:
        return None if self.header is None else self.header.get("workers")

    @property
    def meta(self) -> dict:
        return {} if self.header is None else dict(self.header.get("meta") or {})

    @property
    def end_time(self) -> float:
        """The latest time the journal records: a completion's end or a submission."""
        return max([e.end for e in self.completions] + self.submit_times, default=0.0)

    @property
    def running(self) -> list[tuple[int, Job]]:
        """Jobs submitted but never finished: those running when the search stopped."""
        done = {e.n for e in self.completions}
        return [(n, job) for n, job in enumerate(self.submitted) if n not in done]

    def __len__(self) -> int:
        return len(self.completions)


def _describe(job: Job) -> str:
    return f"{job.arch} @ {job.epochs} epochs" + (" (resume)" if job.resume else "")


def _same(a: Job, b: Job) -> bool:
    return (a.arch, int(a.epochs), bool(a.resume)) == (b.arch, int(b.epochs), bool(b.resume))


def _floats(values) -> list[float | None]:
    """Floats for strict JSON: NaN becomes null (``np.asarray(..., dtype=float)`` reads null back as NaN)."""
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64).tolist()]


def _evaluation_record(evaluation: Evaluation | None) -> dict | None:
    if evaluation is None:
        return None
    return {"arch": evaluation.arch, "epochs": np.asarray(evaluation.epochs).astype(np.int64).tolist(),
            "values": _floats(evaluation.values),
            "losses": None if evaluation.losses is None else _floats(evaluation.losses),
            "cost": float(evaluation.cost), "failed": bool(evaluation.failed), "reason": str(evaluation.reason)}


def _evaluation_from(raw: dict | None) -> Evaluation | None:
    if raw is None:
        return None
    losses = raw.get("losses")
    return Evaluation(arch=raw["arch"], epochs=np.asarray(raw["epochs"], dtype=np.int64),
                      values=np.asarray(raw["values"], dtype=np.float64).reshape(-1),
                      losses=None if losses is None else np.asarray(losses, dtype=np.float64),
                      cost=float(raw["cost"]), failed=bool(raw.get("failed", False)), reason=str(raw.get("reason", "")))


def _job_from(raw: dict) -> Job:
    return Job(str(raw["arch"]), int(raw["epochs"]), bool(raw.get("resume", False)))


def journal_is_empty(path: str | Path) -> bool:
    """True when ``path`` does not exist or holds no complete line (nothing to resume, nothing to lose)."""
    path = Path(path)
    if not path.is_file():
        return True
    with open(path, "rb") as handle:
        return b"\n" not in handle.read()


def read_journal(path: str | Path) -> Journal:
    """Read a journal written by :class:`JournalingPool` (a missing file reads as an empty journal).

    A last line without its newline (a write cut short by a crash) is ignored with a warning; any other
    unreadable or inconsistent line is a ``ValueError`` naming the file and line.
    """
    path = Path(path)
    journal = Journal(path)
    if not path.is_file():
        return journal
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] != b"":
        journal.partial_line = True
        warnings.warn(f"the journal {path} ends in a partial line ({len(lines[-1])} bytes, a write cut short by an "
                      "interruption); it is ignored", stacklevel=2)
    done: set[int] = set()
    for number, raw in enumerate(lines[:-1], start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(raw.decode("utf-8"))
            event = record["event"]
            if event == "journal":
                if number != 1 or journal.header is not None:
                    raise ValueError("a header line after the first line")
                if record.get("version") != JOURNAL_VERSION:
                    raise ValueError(f"journal version {record.get('version')!r}; this pmfnas reads version "
                                     f"{JOURNAL_VERSION}")
                journal.header = record
            elif event == "submit":
                n = int(record["n"])
                if n != len(journal.submitted):
                    raise ValueError(f"submission #{n} where #{len(journal.submitted)} was expected")
                journal.submitted.append(_job_from(record))
                journal.dispatched.append((int(record.get("from_epoch", 0)), int(record.get("repeat", 0))))
                journal.submit_times.append(float(record.get("time", 0.0)))
            elif event == "done":
                n = int(record["n"])
                job = _job_from(record)
                if n >= len(journal.submitted) or not _same(journal.submitted[n], job):
                    raise ValueError(f"a completion of {_describe(job)} as submission #{n}, which the journal "
                                     "does not record as submitted")
                if n in done:
                    raise ValueError(f"submission #{n} completed twice")
                done.add(n)
                journal.completions.append(JournalEntry(
                    job, int(record["worker"]), float(record["start"]), float(record["end"]),
                    _evaluation_from(record.get("evaluation")), str(record.get("error", "")), n=n))
            elif event == "resume":
                journal.sessions += 1
            else:
                raise ValueError(f"unknown event {event!r}")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"{where}: not a valid journal line ({detail}); the journal is corrupt") from None
    return journal


class ResumedClock:
    """The resumed search's clock: replayed times, then ``offset`` + the real pool's clock."""

    def __init__(self, real: Clock, offset: float):
        self.real = real
        self.offset = float(offset)
        self.replayed = 0.0
        self.live = False

    def now(self) -> float:
        if not self.live:
            return self.replayed
        return max(self.replayed, self.offset + self.real.now())


class ResumingPool:
    """Replays a journal, then runs on ``pool`` for real (see the module docstring for the rules).

    ``journal`` is a :class:`Journal` or the path of one.
    """

    def __init__(self, pool: WorkerPool, journal: Journal | str | Path):
        if not isinstance(journal, Journal):
            journal = read_journal(journal)
        if journal.workers is not None and int(journal.workers) != pool.n_workers:
            raise ValueError(f"the journal at {journal.path} does not match this search: it ran {journal.workers} "
                             f"workers, this search {pool.n_workers} (different settings?)")
        self.pool = pool
        self.journal = journal
        self.n_workers = pool.n_workers
        self.simulated = callable(getattr(pool.clock, "advance_to", None))
        self.offset = 0.0 if self.simulated else journal.end_time
        self.clock = ResumedClock(pool.clock, self.offset)
        self._done = {entry.n: (order, entry) for order, entry in enumerate(journal.completions)}
        self._heap: list[tuple[float, int, ReplayedCompletion]] = []
        self._unserved = len(journal.completions)
        self._submitted = 0
        self._real_workers: dict[str, int] = {}
        self.replayed = 0  # completions handed back from the journal so far
        self._update_live()

    @property
    def journaled_submissions(self) -> int:
        return len(self.journal.submitted)

    def _update_live(self) -> None:
        if not self._heap and self._unserved == 0:
            self.clock.live = True

    def _mismatch(self, what: str) -> ValueError:
        return ValueError(f"the journal at {self.journal.path} does not match this search: {what} "
                          "(different method, seed or settings?)")

    # ------------------------------------------------------------------ WorkerPool
    def idle_workers(self) -> int:
        return self.n_workers - self.in_flight()

    def in_flight(self) -> int:
        return len(self._heap) + self.pool.in_flight()

    def submit(self, job: Job, start: int = 0, repeat: int = 0) -> None:
        if self.idle_workers() < 1:
            raise RuntimeError("no idle worker: the runner must check idle_workers() first")
        n = self._submitted
        if n < len(self.journal.submitted) and (not _same(self.journal.submitted[n], job)
                                                or self.journal.dispatched[n] != (int(start), int(repeat))):
            recorded = self.journal.dispatched[n]
            raise self._mismatch(f"job #{n} there is {_describe(self.journal.submitted[n])} from epoch {recorded[0]} "
                                 f"(run {recorded[1]}), this search asks for {_describe(job)} from epoch {start} "
                                 f"(run {repeat})")
        found = self._done.get(n)
        if found is not None:
            order, entry = found
            now = self.clock.now()
            if self.clock.live or entry.start < now:
                raise self._mismatch(f"job #{n} ({_describe(job)}) started at {entry.start:.6g} s there, but this "
                                     f"search asks for it only at {now:.6g} s")
            evaluation = entry.evaluation
            done = ReplayedCompletion(job, entry.worker, entry.start, entry.end, evaluation, entry.error)
            heapq.heappush(self._heap, (entry.end, order, done))
        else:
            if self.simulated:
                # Running at the interruption: it starts when it was submitted; a new job: not before the journal ends.
                target = self.clock.now()
                if n >= len(self.journal.submitted):
                    target = max(target, self.journal.end_time)
                if self.pool.clock.now() < target:
                    self.pool.clock.advance_to(target)
            self.pool.submit(job, start=start, repeat=repeat)
            held = {done.worker for _, _, done in self._heap} | set(self._real_workers.values())
            self._real_workers[job.arch] = min(set(range(self.n_workers)) - held, default=-1)
        self._submitted += 1

    def next_completion(self, deadline: float | None = None) -> Completion | None:
        if self._heap:
            end, _, done = self._heap[0]
            if deadline is not None and end > deadline:
                self.clock.replayed = max(self.clock.replayed, deadline)
                return None
            heapq.heappop(self._heap)
            self.clock.replayed = max(self.clock.replayed, end)
            self._unserved -= 1
            self.replayed += 1
            self._update_live()
            return done
        self.clock.live = True
        done = self.pool.next_completion(deadline=None if deadline is None else deadline - self.offset)
        return None if done is None else self._shifted(done)

    def _shifted(self, done: Completion) -> Completion:
        worker = self._real_workers.pop(done.job.arch, -1)
        return dataclasses.replace(done, worker=done.worker if worker < 0 else worker,
                                   start=done.start + self.offset, end=done.end + self.offset)

    def cancel(self, job: Job) -> Completion:
        for index, (_, _, done) in enumerate(self._heap):
            if done.job == job:
                self._heap.pop(index)
                heapq.heapify(self._heap)
                self._unserved -= 1
                return Completion(job, done.worker, done.start, self.clock.now(), None, STOPPED_AT_DEADLINE)
        return self._shifted(self.pool.cancel(job))

    def shutdown(self) -> None:
        if hasattr(self.pool, "shutdown"):
            self.pool.shutdown()

    def __getattr__(self, name):
        if name == "pool":
            raise AttributeError(name)
        return getattr(self.pool, name)


class JournalingPool:
    """Wraps any pool; appends every submission and every completion it hands back to the journal ``path``.

    A new search needs a missing or empty file (a journal that records a search is never overwritten or
    appended to by another one: ``ValueError``). Wrapping a :class:`ResumingPool` continues the journal it
    replays (same file): replayed completions and already journaled submissions are not written again.
    Everything else is delegated to the wrapped pool. ``close()`` (or ``shutdown()``, which also shuts the
    wrapped pool down) closes the file.
    """

    def __init__(self, pool: WorkerPool, path: str | Path, meta: dict | None = None):
        self.pool = pool
        self.path = Path(path)
        self.n_workers = pool.n_workers
        self.clock = pool.clock
        resuming = isinstance(pool, ResumingPool)
        if resuming and pool.journal.path.resolve() != self.path.resolve():
            raise ValueError(f"a resumed search continues the journal it replays ({pool.journal.path}), "
                             f"not {self.path}")
        if not resuming and not journal_is_empty(self.path):
            raise ValueError(f"the journal {self.path} already records a search: resume it or choose another file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        self._numbers: dict[str, int] = {}
        self._submitted = 0
        self._known = pool.journaled_submissions if resuming else 0
        self._marker: dict | None = None  # a resumed session's first line, written with its first new event
        self._cut_partial_line()
        if self._file.tell() == 0:
            self._write({"event": "journal", "version": JOURNAL_VERSION, "workers": pool.n_workers, "meta": meta or {}})
        elif resuming:
            journal = pool.journal
            self._marker = {"event": "resume", "offset": pool.offset, "replayed": len(journal.completions),
                            "running": len(journal.running)}

    def _cut_partial_line(self) -> None:
        size = self._file.seek(0, os.SEEK_END)
        if size == 0:
            return
        with open(self.path, "rb") as handle:
            data = handle.read()
        keep = data.rfind(b"\n") + 1
        if keep != size:
            self._file.truncate(keep)
            self._file.seek(keep)
            os.fsync(self._file.fileno())

    def _write(self, record: dict) -> None:
        if self._file is None:
            raise ValueError(f"the journal {self.path} is closed")
        if self._marker is not None:
            marker, self._marker = self._marker, None
            self._write(marker)
        self._file.write((json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    # ------------------------------------------------------------------ WorkerPool
    def idle_workers(self) -> int:
        return self.pool.idle_workers()

    def in_flight(self) -> int:
        return self.pool.in_flight()

    @property
    def resumed_from(self) -> Journal | None:
        """The journal this session replays (None for a new search)."""
        return self.pool.journal if isinstance(self.pool, ResumingPool) else None

    def submit(self, job: Job, start: int = 0, repeat: int = 0) -> None:
        self.pool.submit(job, start=start, repeat=repeat)
        n = self._submitted
        self._submitted += 1
        self._numbers[job.arch] = n
        if n >= self._known:
            self._write({"event": "submit", "n": n, "arch": job.arch, "epochs": int(job.epochs),
                         "resume": bool(job.resume), "from_epoch": int(start), "repeat": int(repeat),
                         "time": float(self.clock.now())})

    def cancel(self, job: Job) -> Completion:
        # No "done" line: the job reads as running, so a resumed search with a larger budget continues it.
        self._numbers.pop(job.arch)
        return self.pool.cancel(job)

    def next_completion(self, deadline: float | None = None) -> Completion | None:
        done = self.pool.next_completion(deadline=deadline)
        if done is None:
            return None
        n = self._numbers.pop(done.job.arch)
        if not isinstance(done, ReplayedCompletion):
            self._write({"event": "done", "n": n, "arch": done.job.arch, "epochs": int(done.job.epochs),
                         "resume": bool(done.job.resume), "worker": int(done.worker), "start": float(done.start),
                         "end": float(done.end), "evaluation": _evaluation_record(done.evaluation),
                         "error": done.error})
        return done

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def shutdown(self) -> None:
        try:
            if hasattr(self.pool, "shutdown"):
                self.pool.shutdown()
        finally:
            self.close()

    def __enter__(self) -> "JournalingPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name):
        if name == "pool":
            raise AttributeError(name)
        return getattr(self.pool, name)


def journaled(pool: WorkerPool, path: str | Path, resume: bool = False, meta: dict | None = None) -> JournalingPool:
    """``pool`` writing the journal ``path``; with ``resume``, first replaying what ``path`` records.

    ``meta`` identifies the search; resuming compares it with the journal's (keys present in both must be
    equal, else ``ValueError`` listing the differences). Without ``resume`` the file must be missing or empty.
    """
    if not resume:
        return JournalingPool(pool, path, meta)
    journal = read_journal(path)
    recorded = journal.meta
    meta = json.loads(json.dumps(meta or {}))  # as it reads back from the file (tuples become lists)
    differences = [f"{key} {recorded[key]!r} there, {value!r} here" for key, value in meta.items()
                   if key in recorded and recorded[key] != value]
    if differences:
        raise ValueError(f"the journal at {journal.path} was written by a different search: " + "; ".join(differences))
    return JournalingPool(ResumingPool(pool, journal), path, meta)
