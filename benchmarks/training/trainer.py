"""``TrainerOracle``: the fidelity oracle that really trains NAS-Bench-201 or NAS-Bench-101 networks with PyTorch.

It implements :class:`benchmarks.oracle.FidelityOracle` with the same semantics as the tabular
oracle: ``evaluate(arch, e, start, repeat)`` trains run ``repeat`` of ``arch`` from epoch ``start`` to ``e``
and returns the whole observed validation curve up to epoch ``e``; ``start > 0`` RESUMES the run from its
checkpoint and charges only the extra epochs, ``start = 0`` trains it from scratch; a run that diverges
or raises returns ``failed=True`` with a reason and the oracle goes on. What a search has paid is not
kept here but by the runner's ledger, which tells the oracle where each job starts.

Training recipe (NAS-Bench-201, Dong & Yang 2020, its 200-epoch setting; its 12-epoch runs are max_epochs=12): SGD with Nesterov
momentum 0.9, learning rate 0.1 with cosine decay to 0 over the MAXIMUM number of epochs, stepped
every iteration (so the curve up to epoch e is exactly the prefix of the max-epoch run), weight
decay 5e-4 on every parameter, batch 256, cross-entropy loss, no gradient clipping. Data and
augmentation: :mod:`benchmarks.training.data`. ``space="nb101"`` trains NAS-Bench-101 networks
(:mod:`benchmarks.training.nb101_model`) with this same recipe, not NAS-Bench-101's own (RMSProp, 108
epochs), so that curves of both spaces are comparable.

Trials. One run of one network is one trial, named by ``(space.table_key(arch), repeat)``: NAS-Bench-101
keys that prune to the same or to isomorphic cells share the table key (the graph hash), just as they
share one table row, and the runner numbers their fresh runs together. Run 0 has the seed
``trial_seed(seed, key)``; run ``k > 0`` another seed derived from ``k``, so a second fresh run is another
training run, not a copy.

Cost. ``Evaluation.cost`` is the measured seconds of the epochs this call trained, each epoch being
one pass over the training split plus one evaluation of the validation split (CUDA synchronised).
Not charged (bookkeeping, not search cost): model construction, checkpoint writes, and the test-set
evaluation that is recorded for the table. A failed epoch is charged the seconds from its start (from
the start of the call when the failure came while building or restoring the model) to the failure.

Curves are reported at this oracle's ``fidelities`` only, exactly as a tabular oracle built from
:meth:`TrainerOracle.to_table` reports them; a run that failed in epoch e ends at the first fidelity
>= e with a NaN value, and cannot be trained further. A ``stop`` signal (the runner's deadline) is
looked at before every epoch: once set, the run ends after the epoch it is in, its checkpoint kept.

Checkpoints. After every epoch the oracle writes, atomically (temporary file + ``os.replace``), the
model, optimizer and scheduler states, the trial's ``torch.Generator`` state (data order and
augmentation draw from it; the trial uses no other randomness after initialisation), the epoch and the
recorded history, to ``checkpoint_dir/<settings fingerprint>/<hash of table key (and run k>0)>.pt``. The global torch RNG
is used only to initialise the weights, under a lock and a seed derived from ``(seed, table key)``, and is
restored afterwards: a trial's result does not depend on which other trials ran before or beside it.

Paths. ``config.trainer`` chooses how each epoch's steps run (:mod:`benchmarks.training.paths`: eager,
the whole step in a CUDA graph, or ``torch.compile``); model, optimizer, scheduler, generator and
checkpoints are the same for every path, so a checkpoint written on one is continued on another.

Determinism. On the CPU a resumed run is bitwise the run that never stopped (same process, same thread
count). On CUDA the default favours speed (cuDNN autotuning, bf16 autocast), so reruns agree only
approximately; ``deterministic=True`` asks cuDNN for deterministic kernels.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.oracle import Evaluation
from benchmarks.spaces.nb101 import NB101Space
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.tabular import TabularBenchmark
from benchmarks.training.config import _NB101_ONLY, _NB201_ONLY, SPACES, TrainConfig  # noqa: F401 (re-exported)
from benchmarks.training.data import DataSplits, load_dataset
from benchmarks.training.nb101_model import build_nb101_network, require_nasbench_pytorch
from benchmarks.training.nb201_model import build_network, count_parameters
from benchmarks.training.paths import SINGLE, make_steps
from benchmarks.files import atomic_output, atomic_write

__all__ = ["SPACES", "TrainConfig", "TrialRecord", "TrainerOracle", "trial_seed"]

_INIT_LOCK = threading.Lock()


def _run_name(key: str, repeat: int) -> str:
    """What names run ``repeat`` of the network with table key ``key`` (run 0: the key itself)."""
    return key if int(repeat) == 0 else f"{key}#run{int(repeat)}"


def trial_seed(seed: int, arch: str) -> int:
    """The seed of one trial: a hash of the oracle's seed and ``arch`` (the trainer passes the table key).

    Order-independent; for NB201 the table key is the architecture string itself.
    """
    return int.from_bytes(hashlib.sha256(f"{seed}|{arch}".encode()).digest()[:4], "little") & 0x7FFFFFFF


@dataclass
class TrialRecord:
    """What one architecture's run observed so far; lists are indexed by epoch - 1.

    Accuracies are percentages, rounded to float32 so that a replay from the (float32) table sees
    exactly the values the real search saw. ``seconds[i]`` is the charged cost of epoch i+1;
    a failed epoch has NaN metrics and the seconds spent until the failure.
    """

    arch: str
    seed: int
    repeat: int = 0
    n_params: int = 0
    valid_acc: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failed: bool = False
    reason: str = ""

    @property
    def epochs_done(self) -> int:
        return len(self.valid_acc)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrialRecord":
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


class _Diverged(RuntimeError):
    pass


def _f32(value: float) -> float:
    return float(np.float32(value))


def _is_oom(error: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(error, oom)) or "out of memory" in str(error).lower()


class TrainerOracle:
    """A :class:`~benchmarks.oracle.FidelityOracle` over the NB201 or NB101 space that trains for real.

    Parameters
    ----------
    config: a :class:`TrainConfig`; keyword ``overrides`` replace its fields
        (``TrainerOracle(dataset="fashion-mnist", C=8, N=1, max_epochs=4)``; ``space="nb101"`` for
        NAS-Bench-101 cells, which needs ``nasbench-pytorch``).
    fidelities: the epochs at which ``evaluate`` may stop (default every epoch 1..max_epochs).
    checkpoint_dir: where checkpoints go (default: a temporary directory removed with the oracle).
    data: prebuilt :class:`~benchmarks.training.data.DataSplits` (default: loaded on first use from
        ``config.dataset``/``data_root`` and moved to ``config.device``).
    reuse_checkpoints: when True, a run whose checkpoint (same settings fingerprint) is already in
        ``checkpoint_dir`` continues from it, also past the ``start`` it is asked from: its checkpointed
        epochs were trained (and their time spent) by the search that was interrupted, and are not
        trained again. Use it to continue an interrupted search or recording.

    Thread-safe: trials of different architectures may run concurrently (``ThreadedPool``).
    """

    metric = "valid_accuracy"
    higher_is_better = True

    def __init__(self, config: TrainConfig | None = None, *, fidelities=None, checkpoint_dir=None,
                 data: DataSplits | None = None, reuse_checkpoints: bool = False, **overrides):
        config = config or TrainConfig()
        if overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        if config.space == "nb101":
            require_nasbench_pytorch()  # missing, every trial would fail: say so now
            self.space = NB101Space()
        else:
            self.space = NB201Space()
        self.device = torch.device(config.device)
        if fidelities is None:
            fidelities = range(1, config.max_epochs + 1)
        self._fidelities = tuple(sorted({int(f) for f in fidelities}))
        if not self._fidelities or self._fidelities[0] < 1 or self._fidelities[-1] != config.max_epochs:
            raise ValueError(f"fidelities {self._fidelities} must be positive epochs ending at max_epochs={config.max_epochs}")
        self._tmpdir = None
        if checkpoint_dir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="pmfnas-ckpt-")
            checkpoint_dir = self._tmpdir.name
        self.checkpoint_dir = Path(checkpoint_dir) / config.fingerprint()
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.reuse_checkpoints = bool(reuse_checkpoints)
        self._data = data.to(self.device) if data is not None else None
        self._lock = threading.Lock()
        self._arch_locks: dict[str, threading.Lock] = {}
        self._records: dict[tuple[str, int], TrialRecord] = {}  # by (table key, run): one run of one network
        self.use_bf16 = bool(config.bf16 and self.device.type == "cuda" and torch.cuda.is_available()
                             and torch.cuda.is_bf16_supported())
        if self.device.type == "cuda":  # process-wide switches: the last oracle built decides
            torch.backends.cudnn.benchmark = not config.deterministic
            torch.backends.cudnn.deterministic = bool(config.deterministic)

    # ------------------------------------------------------------------ protocol
    @property
    def max_epochs(self) -> int:
        return self.config.max_epochs

    @property
    def fidelities(self) -> tuple[int, ...]:
        return self._fidelities

    @property
    def n_architectures(self) -> None:
        """Unbounded: a trainer can train any architecture of its space."""
        return None

    def identify(self, arch: str) -> str:
        return self.space.table_key(self.space.parse(arch))

    def epochs_trained(self, arch: str, repeat: int = 0) -> int:
        """Epochs run ``repeat`` of ``arch`` has completed in this oracle (0 if it never ran here)."""
        record = self._records.get((self.space.table_key(arch), int(repeat)))
        return 0 if record is None else record.epochs_done

    @property
    def data(self) -> DataSplits:
        """The dataset splits (loaded on first access)."""
        return self.prepare()

    def prepare(self) -> DataSplits:
        """Load the data now (so a missing dataset fails here, not as a failed trial)."""
        with self._lock:
            if self._data is None:
                c = self.config
                self._data = load_dataset(c.dataset, c.data_root, split_seed=c.split_seed, train_size=c.train_size,
                                          valid_size=c.valid_size, test_size=c.test_size, device=self.device,
                                          image_size=c.image_size)
            return self._data

    @property
    def records(self) -> dict[str, TrialRecord]:
        """The first run (run 0) of every architecture trained so far, by the architecture that asked for it."""
        with self._lock:
            return {record.arch: record for record in self._records.values() if record.repeat == 0}

    @property
    def trials(self) -> list[TrialRecord]:
        """Every run so far (all repeats), in the order first evaluated."""
        with self._lock:
            return list(self._records.values())

    def evaluate(self, arch: str, epochs: int, start: int = 0, repeat: int = 0, stop=None) -> Evaluation:
        arch = self.space.parse(arch)
        if isinstance(epochs, bool) or int(epochs) != epochs or int(epochs) not in self._fidelities:
            raise ValueError(f"epochs={epochs!r} is not a fidelity of this trainer; fidelities: "
                             f"{self._fidelities if len(self._fidelities) <= 12 else (self._fidelities[0], '...', self._fidelities[-1])}")
        epochs, start, repeat = int(epochs), int(start), int(repeat)
        if repeat < 0 or not 0 <= start < epochs:
            raise ValueError(f"start={start}, repeat={repeat}: need repeat >= 0 and 0 <= start < epochs={epochs}")
        data = self.prepare()
        trial = (self.space.table_key(arch), repeat)
        with self._lock:
            arch_lock = self._arch_locks.setdefault(trial, threading.Lock())
        with arch_lock:
            record = self._records.get(trial)
            if record is None or (start == 0 and not self.reuse_checkpoints):
                record = self._new_record(arch, repeat)
                with self._lock:
                    self._records[trial] = record
            if record.epochs_done < start or (record.epochs_done > start and not self.reuse_checkpoints):
                raise ValueError(f"run {repeat} of {arch} has completed {record.epochs_done} epochs here, but was asked "
                                 f"to continue from epoch {start}")
            if record.failed:
                raise ValueError(f"run {repeat} of {arch} failed ({record.reason}): it cannot be continued")
            cost = self._train(record, epochs, data, stop) if record.epochs_done < epochs else 0.0
            return self._observed(record, epochs, cost, arch)

    def _observed(self, record: TrialRecord, epochs: int, cost: float, arch: str) -> Evaluation:
        """The curve at this oracle's fidelities up to ``epochs``, as a tabular oracle would show it.

        A run that failed in epoch e <= ``epochs`` ends at the first fidelity >= e, with NaN there; a run
        stopped early ends at the last fidelity it completed.
        """
        shown = [f for f in self._fidelities if f <= min(epochs, max(record.epochs_done, 1))]
        failed = record.failed and record.epochs_done <= epochs
        if failed:
            e = record.epochs_done
            shown = [f for f in shown if f < e] + [next(f for f in self._fidelities if f >= e)]
        values = [record.valid_acc[f - 1] if f <= record.epochs_done else float("nan") for f in shown]
        losses = [record.valid_loss[f - 1] if f <= record.epochs_done else float("nan") for f in shown]
        if failed:
            values[-1] = losses[-1] = float("nan")
        return Evaluation(arch=arch, epochs=np.asarray(shown, dtype=np.int64), values=np.asarray(values, dtype=np.float64),
                          losses=np.asarray(losses, dtype=np.float64), cost=float(cost), failed=failed,
                          reason=record.reason if failed else "")

    # ------------------------------------------------------------------ trials
    def checkpoint_path(self, arch: str, repeat: int = 0) -> Path:
        name = _run_name(self.space.table_key(arch), repeat)
        return self.checkpoint_dir / (hashlib.sha256(name.encode()).hexdigest()[:20] + ".pt")

    def load_checkpoint(self, arch: str, map_location="cpu", repeat: int = 0) -> dict:
        """The last checkpoint of run ``repeat`` of ``arch`` (``model``, ``optimizer``, ``scheduler``, ``generator``,
        ``epoch``, ``record``)."""
        return torch.load(self.checkpoint_path(arch, repeat), map_location=map_location, weights_only=True)

    def adopt_records(self, records) -> None:
        """Make trials that ran elsewhere known to this oracle, as if it had run them itself.

        ``records`` are :class:`TrialRecord` (or their ``to_dict()``) of trials trained with these settings
        into this ``checkpoint_dir`` by other oracles, e.g. in the worker processes of a
        :class:`~harness.workers.ProcessPool`. A record replaces what this oracle knew of its architecture's
        trial; afterwards :meth:`to_table` includes it, :meth:`epochs_trained` counts it and :meth:`evaluate`
        continues it (from its checkpoint). Adopt only between evaluations of the architectures concerned.
        """
        for record in records:
            if isinstance(record, dict):
                record = TrialRecord.from_dict(record)
            key = self.space.table_key(self.space.parse(record.arch))
            with self._lock:
                self._records[(key, record.repeat)] = record

    def failure_path(self, arch: str, repeat: int = 0) -> Path:
        """Where a failed run's record is kept, beside its checkpoint (a checkpoint holds completed epochs only)."""
        return self.checkpoint_path(arch, repeat).with_suffix(".failed.json")

    def adopt_runs(self, runs) -> list[tuple[str, int]]:
        """Make this oracle know each run ``(arch, repeat)`` as the disk holds it, unless it knows it already.

        Runs trained by other oracles on this ``checkpoint_dir`` (worker processes, an interrupted session)
        are read from their failed record, else their last checkpoint; a run with neither (nothing of it
        was saved) is skipped. Returns the runs now known, in the given order.
        """
        known = []
        for arch, repeat in runs:
            trial = (self.space.table_key(self.space.parse(arch)), int(repeat))
            with self._lock:
                present = trial in self._records
            failed = self.failure_path(arch, repeat)
            if not present and failed.is_file():
                self.adopt_records([json.loads(failed.read_text())])
                present = True
            if present or self.adopt_checkpoints([arch], repeat=repeat):
                known.append((arch, int(repeat)))
        return known

    def adopt_checkpoints(self, archs, repeat: int = 0) -> list[str]:
        """Adopt (:meth:`adopt_records`) the trial of each of ``archs`` from its checkpoint in ``checkpoint_dir``.

        Returns the architectures adopted; one without a checkpoint is skipped (nothing of it was saved: it
        failed in its first epoch or never ran). A checkpoint holds the epochs completed, so a trial that
        failed after them reads back as not failed; adopt its failed record with :meth:`adopt_records`.
        """
        adopted = []
        for arch in archs:
            if self.checkpoint_path(arch, repeat).is_file():
                self.adopt_records([self.load_checkpoint(arch, repeat=repeat)["record"]])
                adopted.append(arch)
        return adopted

    def _new_record(self, arch: str, repeat: int) -> TrialRecord:
        path = self.checkpoint_path(arch, repeat)
        if self.reuse_checkpoints and path.is_file():
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            return TrialRecord.from_dict(checkpoint["record"])
        seed = trial_seed(self.config.seed, _run_name(self.space.table_key(arch), repeat))
        return TrialRecord(arch=arch, seed=seed, repeat=repeat)

    def _build(self, record: TrialRecord, steps_per_epoch: int, data: DataSplits):
        c, spec = self.config, data.spec
        with _INIT_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(record.seed)
            if c.space == "nb101":
                model = build_nb101_network(record.arch, spec.num_classes, in_channels=spec.in_channels,
                                            stem_channels=c.nb101_stem_channels, num_stacks=c.nb101_stacks,
                                            modules_per_stack=c.nb101_modules)
            else:
                model = build_network(record.arch, spec.num_classes, C=c.C, N=c.N, in_channels=spec.in_channels)
        record.n_params = count_parameters(model)
        model = model.to(self.device)
        if c.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                                    weight_decay=c.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c.max_epochs * steps_per_epoch, eta_min=0.0)
        generator = torch.Generator().manual_seed(record.seed + 1)
        return model, optimizer, scheduler, generator

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _train(self, record: TrialRecord, target: int, data: DataSplits, stop=None) -> float:
        """Train ``record`` from its last epoch to ``target`` (or until ``stop`` is set); return the charged seconds."""
        c = self.config
        n_steps = math.ceil(len(data.train_y) / c.batch_size)
        charged = 0.0
        epoch = record.epochs_done + 1
        mark = time.perf_counter()  # start of what a failure in the current epoch is charged from
        state = None
        try:
            state = self._build(record, n_steps, data)
            if record.epochs_done > 0:
                checkpoint = torch.load(self.checkpoint_path(record.arch, record.repeat), map_location=self.device,
                                        weights_only=True)
                if int(checkpoint["epoch"]) != record.epochs_done:
                    raise RuntimeError(f"checkpoint of {record.arch} holds epoch {checkpoint['epoch']}, "
                                       f"expected {record.epochs_done}")
                model, optimizer, scheduler, generator = state
                model.load_state_dict(checkpoint["model"])
                optimizer.load_state_dict(checkpoint["optimizer"])
                scheduler.load_state_dict(checkpoint["scheduler"])
                generator.set_state(checkpoint["generator"].cpu())
                del checkpoint
            state = (*state, self._steps(*state[:3]))
            for epoch in range(record.epochs_done + 1, target + 1):
                if stop is not None and stop.is_set():
                    break
                self._sync()
                mark = time.perf_counter()
                train_loss, train_acc = self._train_epoch(state, data)
                if not math.isfinite(train_loss):
                    raise _Diverged(f"training loss became {train_loss} in epoch {epoch}")
                valid_loss, valid_acc = self._eval(state, data, data.valid_x, data.valid_y)
                if not math.isfinite(valid_loss):
                    raise _Diverged(f"validation loss became {valid_loss} after epoch {epoch}")
                self._sync()
                seconds = time.perf_counter() - mark
                if c.test_every_epoch or epoch == target:
                    test_loss, test_acc = self._eval(state, data, data.test_x, data.test_y)
                else:
                    test_loss = test_acc = float("nan")
                record.seconds.append(_f32(seconds))
                for name, value in (("train_loss", train_loss), ("train_acc", train_acc), ("valid_loss", valid_loss),
                                    ("valid_acc", valid_acc), ("test_loss", test_loss), ("test_acc", test_acc)):
                    getattr(record, name).append(_f32(value))
                self._save(record, state, epoch)
                charged += _f32(seconds)
        except Exception as error:  # a failed trial, not a failed search
            seconds = time.perf_counter() - mark
            self._fail(record, epoch, error, seconds)
            charged += _f32(seconds)
        finally:
            state = None
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        return charged

    _CURVES = ("valid_acc", "valid_loss", "train_acc", "train_loss", "test_acc", "test_loss")

    def _fail(self, record: TrialRecord, epoch: int, error: Exception, seconds: float) -> None:
        """Mark ``record`` failed in ``epoch``: NaN metrics there, and the seconds spent until the failure."""
        if isinstance(error, _Diverged):
            reason = f"diverged: {error}"
        elif _is_oom(error):
            first = str(error).splitlines()[0] if str(error) else ""
            reason = f"out of memory in epoch {epoch}: {type(error).__name__}: {first[:300]}"
        else:
            reason = f"{type(error).__name__} in epoch {epoch}: {str(error)[:300]}"
        # A failure after the epoch's metrics were appended (checkpoint write) voids that epoch too.
        for name in self._CURVES + ("seconds",):
            del getattr(record, name)[epoch - 1:]
        for name in self._CURVES:
            getattr(record, name).append(float("nan"))
        record.seconds.append(_f32(seconds))
        record.failed = True
        record.reason = reason
        atomic_write(self.failure_path(record.arch, record.repeat), json.dumps(record.to_dict()))

    def _steps(self, model, optimizer, scheduler):
        """How this trial's epochs run: the path of ``config.trainer`` (:mod:`benchmarks.training.paths`)."""
        c = self.config
        return make_steps(c.trainer, model, optimizer, scheduler, SINGLE, units=1, batch_size=c.batch_size,
                          eval_batch_size=c.eval_batch_size, device=self.device, bf16=self.use_bf16,
                          channels_last=c.channels_last, compile_mode=c.compile_mode, compile_backend=c.compile_backend)

    def _train_epoch(self, state, data: DataSplits) -> tuple[float, float]:
        """One epoch of the trial ``state`` = (model, optimizer, scheduler, generator, steps): loss and accuracy."""
        (loss,), (accuracy,) = state[4].train_epoch(state[3], data)
        return loss, accuracy

    def _eval(self, state, data: DataSplits, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        (loss,), (accuracy,) = state[4].evaluate(data, images, labels)
        return loss, accuracy

    def _save(self, record: TrialRecord, state, epoch: int) -> None:
        model, optimizer, scheduler, generator = state[:4]
        payload = {"arch": record.arch, "epoch": epoch, "fingerprint": self.config.fingerprint(),
                   "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                   "record": record.to_dict()}
        path = self.checkpoint_path(record.arch, record.repeat)
        with atomic_output(path) as tmp:
            torch.save(payload, tmp)

    # ------------------------------------------------------------------ recording
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"

    def to_table(self, name: str = "trained", fidelities=None, whole_space: bool = False) -> TabularBenchmark:
        """Everything trained so far as a pmfnas-tabular table: a row per network, a repeat slot per run.

        Columns are ``fidelities`` (default: this oracle's). ``seconds`` at fidelity f is the sum of the
        per-epoch seconds since the previous fidelity; a run that failed in epoch e has NaN metrics at
        the first fidelity >= e, the seconds spent up to the failure there, and ``failed=True``, so a
        :class:`~benchmarks.oracle.TabularOracle` replays it exactly as this oracle served it. Slot k holds
        run k (``extra.repeats == "runs"``: a replay serves run k from slot k, as the search saw it).
        Epochs never trained are NaN. Rows are named by ``space.table_key`` (the architecture string for
        NB201, the graph hash for NB101, as the official tables are), the ``extra`` dictionaries too;
        ``extra.arch_keys`` maps each row to the architecture key that was trained first. ``whole_space``
        marks a recording of a search (``extra.whole_space``): its replay searches the whole space, as the
        search did, instead of the space restricted to the recorded cells.
        """
        with self._lock:
            trials = dict(self._records)
        if not trials:
            raise ValueError("nothing has been trained yet: there is no table to write")
        fids = np.asarray(sorted({int(f) for f in (fidelities if fidelities is not None else self._fidelities)}), dtype=np.int64)
        if fids[0] < 1 or fids[-1] > self.max_epochs:
            raise ValueError(f"fidelities must lie in [1, {self.max_epochs}], got {fids.tolist()}")
        keys = list(dict.fromkeys(key for key, _ in trials))
        n_runs = 1 + max(repeat for _, repeat in trials)
        names = {"valid": "valid_acc", "valid_loss": "valid_loss", "test": "test_acc", "test_loss": "test_loss",
                 "train": "train_acc", "train_loss": "train_loss"}
        curves = {k: np.full((len(keys), n_runs, fids.size), np.nan) for k in names}
        seconds = np.full((len(keys), n_runs, fids.size), np.nan)
        failed = np.zeros((len(keys), n_runs), dtype=bool)
        for (key, repeat), record in trials.items():
            row, n, previous = keys.index(key), record.epochs_done, 0
            failed[row, repeat] = record.failed
            for j, f in enumerate(fids.tolist()):
                if f <= n:
                    for curve, attr in names.items():
                        curves[curve][row, repeat, j] = getattr(record, attr)[f - 1]
                    seconds[row, repeat, j] = float(np.sum(record.seconds[previous:f]))
                elif record.failed and previous < n:
                    seconds[row, repeat, j] = float(np.sum(record.seconds[previous:n]))
                previous = f
        records = [trials[(key, 0)] if (key, 0) in trials else next(r for (k, _), r in trials.items() if k == key)
                   for key in keys]
        c = self.config
        data = self.data
        ids = [self.space.table_key(r.arch) for r in records]
        extra = {
            "settings": dataclasses.asdict(c), "fingerprint": c.fingerprint(), "torch": torch.__version__,
            "device": self.device_name(), "bf16_autocast": self.use_bf16, "python": platform.python_version(),
            "split_sizes": data.sizes, "n_params": {i: r.n_params for i, r in zip(ids, records)},
            "trial_seeds": {i: r.seed for i, r in zip(ids, records)},
            "failures": {_run_name(key, repeat): r.reason for (key, repeat), r in trials.items() if r.failed},
            "arch_keys": {i: r.arch for i, r in zip(ids, records)}, "repeats": "runs", "whole_space": bool(whole_space),
            "cost": "seconds = train pass + validation pass per epoch (test evaluation, checkpoints not charged)",
        }
        if c.space == "nb101":
            network = (f"NB101 network: stem {c.nb101_stem_channels}, {c.nb101_stacks} stacks x "
                       f"{c.nb101_modules} cells")
        else:
            network = f"C={c.C}, N={c.N}"
        provenance = (f"trained with pmf-nas TrainerOracle (NB201 recipe: SGD nesterov 0.9, lr {c.lr} cosine over "
                      f"{c.max_epochs} epochs, wd {c.weight_decay}, batch {c.batch_size}; {network}) on "
                      f"{c.dataset} (split seed {c.split_seed}, train/valid/test {data.sizes['train']}/"
                      f"{data.sizes['valid']}/{data.sizes['test']}), torch {torch.__version__}, {self.device_name()}")
        return TabularBenchmark.from_arrays(
            ids, fids, curves["valid"], seconds, metric=self.metric,
            higher_is_better=self.higher_is_better, name=name, space=self.space.name, dataset=c.dataset,
            provenance=provenance, licence="recorded by the user; the dataset's own licence applies",
            failed=failed, extra=extra,
            notes="accuracies in percent; repeat slot k is the k-th fresh run of the network in the search "
                  "(run 0's trial seed in extra.trial_seeds)",
            **{k: v for k, v in curves.items() if k != "valid"})

    def close(self) -> None:
        """Remove the temporary checkpoint directory if this oracle created it."""
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
