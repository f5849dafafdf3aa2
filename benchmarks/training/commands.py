"""The trainer options of ``pmfnas record`` and ``pmfnas search --train``, and what ``pmfnas record`` does.

Searches themselves have one entry point, the harness (``harness.cli``, ``harness.runner``).

``add_trainer_arguments(parser)`` adds the trainer options to an argparse parser and
``trainer_from_args(args)`` builds the oracle from them, so both commands share one set of flags.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from benchmarks.tabular import check_table_destination
# The options parse without torch (the CLI then says that real training needs the train extra);
# the trainer, which imports torch, is imported only to train.
from benchmarks.training.config import COMPILE_MODES, SPACES, TRAINER_CHOICES, TrainConfig

if TYPE_CHECKING:
    from benchmarks.tabular import TabularBenchmark
    from benchmarks.training.trainer import TrainerOracle

__all__ = ["add_trainer_arguments", "add_path_arguments", "parse_fidelities", "trainer_from_args", "resolved_trainer",
           "record"]


def add_path_arguments(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--trainer`` and ``--compile-mode``: how the training step runs (:mod:`benchmarks.training.paths`)."""
    parser.add_argument("--trainer", choices=TRAINER_CHOICES, default=default,
                        help="how the training step runs: eager; graph (the whole step captured in a CUDA graph and "
                             "replayed); compiled (torch.compile, see --compile-mode); batched (K cells as one network: "
                             "benchmark build only); auto (default): graph on CUDA, eager elsewhere, saying why")
    parser.add_argument("--compile-mode", choices=COMPILE_MODES, default=COMPILE_MODES[0],
                        help=f"torch.compile mode of --trainer compiled (default {COMPILE_MODES[0]}; reduce-overhead "
                             "adds CUDA graphs)")


def resolved_trainer(args: argparse.Namespace, device: str, *, batched: bool = False, say=None) -> str:
    """The path ``args.trainer`` runs on ``device`` (ValueError for a path the device cannot run); the reason
    for falling back to eager, if any, goes to ``say`` (default: one line on stderr)."""
    from benchmarks.training.paths import resolve_trainer

    path, note = resolve_trainer(getattr(args, "trainer", "auto"), device, batched=batched)
    if note:
        (say or (lambda line: print(line, file=sys.stderr, flush=True)))(note)
    return path


def add_trainer_arguments(parser: argparse.ArgumentParser, dataset_flag: str = "--dataset") -> None:
    """The TrainerOracle options (defaults: the NAS-Bench-201 recipe; ``--epochs`` 12 for quick runs)."""
    d = TrainConfig()
    parser.add_argument(dataset_flag, dest="dataset", default="fashion-mnist",
                        help="fashion-mnist, cifar10, cifar100 or imagenet16-120 (default fashion-mnist)")
    parser.add_argument("--data-root", default=None, help="dataset directory (default: the dataset's standard place)")
    parser.add_argument("--epochs", type=int, default=12, help="maximum epochs; the cosine schedule spans them (default 12)")
    parser.add_argument("--fidelities", default=None,
                        help="comma-separated epochs a job may stop at (default every epoch up to --epochs)")
    parser.add_argument("--space", choices=SPACES, default=d.space,
                        help=f"nb201 (NAS-Bench-201 cells) or nb101 (NAS-Bench-101 cells, needs nasbench-pytorch) "
                             f"(default {d.space})")
    parser.add_argument("--C", type=int, default=d.C, help=f"nb201: channels of the first stage (default {d.C})")
    parser.add_argument("--N", type=int, default=d.N, help=f"nb201: cells per stage (default {d.N})")
    parser.add_argument("--nb101-stem-channels", type=int, default=d.nb101_stem_channels,
                        help=f"nb101: channels of the stem and the first stack (default {d.nb101_stem_channels})")
    parser.add_argument("--nb101-stacks", type=int, default=d.nb101_stacks,
                        help=f"nb101: stacks, each after the first halving the resolution (default {d.nb101_stacks})")
    parser.add_argument("--nb101-modules", type=int, default=d.nb101_modules,
                        help=f"nb101: cells per stack (default {d.nb101_modules})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--train-size", type=int, default=None, help="keep the first n training images of the split")
    parser.add_argument("--valid-size", type=int, default=None)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--train-seed", type=int, default=d.seed, help="seed of weights, data order and augmentation")
    parser.add_argument("--split-seed", type=int, default=d.split_seed, help="seed of the train/valid split")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--checkpoint-dir", default=None, help="where checkpoints go (default: a temporary directory)")
    parser.add_argument("--resume", action="store_true", help="continue architectures checkpointed in --checkpoint-dir")
    add_path_arguments(parser)


def parse_fidelities(text: str | None) -> list[int] | None:
    """The epochs of ``--fidelities`` (None when not given); ValueError naming the option and the bad entry."""
    if not text:
        return None
    epochs = []
    for part in (part.strip() for part in str(text).split(",")):
        if not part:
            continue
        if not re.fullmatch(r"[0-9]+", part) or int(part) < 1:
            raise ValueError(f"--fidelities {text!r}: {part!r} is not a positive whole epoch; "
                             "give comma-separated epochs, e.g. 1,3,12")
        epochs.append(int(part))
    return epochs


def trainer_from_args(args: argparse.Namespace) -> TrainerOracle:
    import torch

    from benchmarks.training.trainer import TrainerOracle

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    fidelities = parse_fidelities(args.fidelities)
    oracle = TrainerOracle(
        TrainConfig(dataset=args.dataset, data_root=args.data_root, space=args.space, C=args.C, N=args.N,
                    nb101_stem_channels=args.nb101_stem_channels, nb101_stacks=args.nb101_stacks,
                    nb101_modules=args.nb101_modules, max_epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, seed=args.train_seed, split_seed=args.split_seed,
                    train_size=args.train_size, valid_size=args.valid_size, test_size=args.test_size,
                    device=device, bf16=not args.no_bf16, channels_last=args.channels_last,
                    trainer=resolved_trainer(args, device), compile_mode=args.compile_mode),
        fidelities=fidelities, checkpoint_dir=args.checkpoint_dir, reuse_checkpoints=args.resume)
    oracle.prepare()  # a missing dataset is a usage error, not a failed trial
    return oracle


def record(oracle: TrainerOracle, archs: Sequence[str], out: str | Path | None = None, name: str = "recorded",
           epochs: int | None = None, progress: Callable[[str], None] | None = print) -> TabularBenchmark:
    """Train each architecture to ``epochs`` (default the maximum), then return (and save) the table."""
    if out is not None:
        check_table_destination(out)  # before the training, not after it
    epochs = oracle.max_epochs if epochs is None else epochs
    for i, arch in enumerate(archs):
        evaluation = oracle.evaluate(arch, epochs)
        if progress:
            status = f"FAILED ({evaluation.reason})" if evaluation.failed else f"valid {evaluation.value:.2f}%"
            progress(f"[{i + 1}/{len(archs)}] {oracle.space.parse(arch)}: {evaluation.epoch} epochs, {status}, "
                     f"{evaluation.cost:.1f} s")
    table = oracle.to_table(name)
    if out is not None:
        table.save(out)
    return table
