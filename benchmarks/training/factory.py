"""Trainers for worker processes that share one checkpoint directory (:class:`~harness.workers.ProcessPool`).

A process pool's workers each build their own oracle; :class:`TrainerFactory` builds trainers that keep
no trial state in memory between jobs, so a promotion continues the architecture's checkpoint on
whichever process it lands.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TrainerFactory"]


@dataclass(frozen=True)
class TrainerFactory:
    """``oracle_factory`` of a :class:`ProcessPool` of real trainers that share one ``checkpoint_dir``.

    Every worker's oracle trains with ``config`` (a :class:`~benchmarks.training.trainer.TrainConfig`) and
    ``fidelities`` into ``checkpoint_dir`` with ``reuse_checkpoints=True`` and keeps no trial state in
    memory between jobs: each job continues the architecture's checkpoint on disk, whichever worker trained
    it before, and is charged only the epochs it adds. (The runner never runs one architecture twice at
    once, so no two processes write one checkpoint.) A trial that fails leaves its failed record beside its
    checkpoint (``<checkpoint>.failed.json``), so the parent can record it. Checkpoints already in
    ``checkpoint_dir`` with these settings are continued, not retrained.

    ``device`` (from the pool's ``devices``) places the worker: it must be of ``config.device``'s type, and
    for CUDA the worker makes it the current device, so ``config.device`` should be ``"cuda"`` (an index
    there would pin every worker to it; ``config.device`` is part of the settings fingerprint, so all
    workers keep the same one and share checkpoints). ``num_threads`` sets ``torch.set_num_threads`` in
    each worker (None: torch's default, every core, in every process).

    In the parent, :meth:`trainer` is a :class:`~benchmarks.training.trainer.TrainerOracle` of the same
    settings on the same directory (a pool's ``oracle``), and its ``adopt_runs`` makes it know the trials
    the workers trained, e.g. to record them with ``to_table``.
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
        self.n_architectures = first.n_architectures
        self.identify = first.identify

    def evaluate(self, arch: str, epochs: int, start: int = 0, repeat: int = 0, stop=None):
        return self.factory.trainer(self.data).evaluate(arch, epochs, start=start, repeat=repeat, stop=stop)
