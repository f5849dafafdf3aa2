"""``TrainConfig``: everything that determines a real training run, without importing torch.

It lives apart from :mod:`benchmarks.training.trainer` so that the command line can parse the trainer's
options (and say clearly that torch is missing) on an installation without the ``train`` extra.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

__all__ = ["SPACES", "TRAINERS", "TRAINER_CHOICES", "COMPILE_MODES", "TrainConfig"]

SPACES = ("nb201", "nb101")
# How a trial's training step runs (benchmarks.training.paths). They compute the same curve (within the
# tolerance documented there), so the choice is not part of the settings fingerprint: a checkpoint written
# by one path is continued by any other.
TRAINERS = ("eager", "graph", "compiled")
# What --trainer accepts: "auto" picks the fastest path the device has; "batched" trains K cells as one
# network (benchmark build and the throughput benchmark only).
TRAINER_CHOICES = ("auto", "eager", "graph", "compiled", "batched")
COMPILE_MODES = ("max-autotune-no-cudagraphs", "reduce-overhead", "default")
_NB201_ONLY = ("C", "N")
_NB101_ONLY = ("nb101_stem_channels", "nb101_stacks", "nb101_modules")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (and hence its curve).

    ``space`` is ``"nb201"`` (networks sized by ``C`` and ``N``) or ``"nb101"`` (sized by
    ``nb101_stem_channels``, ``nb101_stacks`` and ``nb101_modules`` cells per stack).
    ``train_size``/``valid_size``/``test_size`` keep the first n images of each split (None: all).
    ``image_size`` down-samples the images to that many pixels a side at load (None: the dataset's own).
    ``bf16`` applies bf16 autocast on CUDA devices that support it (ignored on the CPU).
    ``test_every_epoch=False`` evaluates the test split only at the last epoch of each ``evaluate``
    call (the fidelities the search stopped at) instead of after every epoch.
    ``trainer`` is how the step runs (:mod:`benchmarks.training.paths`: ``eager``, ``graph`` = the whole
    step in a CUDA graph, ``compiled`` = ``torch.compile`` with ``compile_mode`` and ``compile_backend``);
    like ``eval_batch_size`` it is left out of the fingerprint.
    """

    dataset: str = "fashion-mnist"
    data_root: str | None = None
    space: str = "nb201"
    C: int = 16
    N: int = 5
    nb101_stem_channels: int = 128
    nb101_stacks: int = 3
    nb101_modules: int = 3
    max_epochs: int = 200
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    seed: int = 0
    split_seed: int = 0
    train_size: int | None = None
    valid_size: int | None = None
    test_size: int | None = None
    image_size: int | None = None
    device: str = "cpu"
    bf16: bool = True
    channels_last: bool = False
    deterministic: bool = False
    test_every_epoch: bool = True
    eval_batch_size: int = 1024
    trainer: str = "eager"
    compile_mode: str = "max-autotune-no-cudagraphs"
    compile_backend: str = "inductor"

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"space={self.space!r} must be one of {', '.join(SPACES)}")
        if self.trainer not in TRAINERS:
            raise ValueError(f"trainer={self.trainer!r} must be one of {', '.join(TRAINERS)} (resolve 'auto' with "
                             "benchmarks.training.paths.resolve_trainer first)")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode={self.compile_mode!r} must be one of {', '.join(COMPILE_MODES)}")
        for name in ("C", "N", "max_epochs", "batch_size", "eval_batch_size") + _NB101_ONLY:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "N" else 1):
                raise ValueError(f"{name}={value!r} must be a positive int")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be positive")

    def fingerprint(self) -> str:
        """A short hash of the settings that change what a run computes (not where checkpoints go).

        The other space's size options are left out, and for NB201 ``space`` too, so NB201 settings
        hash as they did before NB101 existed (their checkpoints are still found).
        """
        ignored = {"data_root", "test_every_epoch", "eval_batch_size", "trainer", "compile_mode", "compile_backend"}
        if self.image_size is None:  # settings from before the option existed hash as they did
            ignored.add("image_size")
        ignored |= {"space", *_NB101_ONLY} if self.space == "nb201" else set(_NB201_ONLY)
        relevant = {k: v for k, v in dataclasses.asdict(self).items() if k not in ignored}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
