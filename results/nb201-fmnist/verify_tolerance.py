"""How far do legitimate float-level differences move 2 epochs of the committed build's curves?

Usage (from the repository root): python results/nb201-fmnist/verify_tolerance.py
Retrains 4 cells of chunk 0 of build-data/nb201-fmnist for the first 2 epochs of the schedule (a) alone with
2 torch threads instead of 1 (another summation order inside the convolutions, as another CPU would have),
and (b) together as one batched group of K=4 (grouped convolutions); prints the maximum absolute
difference from the recorded curves (accuracy points) and the maximum relative difference of the losses.
"""
import json

import numpy as np
import torch

from benchmarks.training.batched import train_group
from benchmarks.training.build import read_manifest
from benchmarks.training.data import load_dataset
from benchmarks.training.verify import _CURVES, _config, _load
from tests.conftest import REPO

BUILD = REPO / "build-data" / "nb201-fmnist"


def differences(table, rows, result):
    out = {}
    for name, key in _CURVES.items():
        recorded = np.asarray(table.curves[name][rows, 0, :2], dtype=np.float64)
        retrained = np.asarray(result.curves[key][:, :2], dtype=np.float64)
        finite = ~np.isnan(recorded)
        if not finite.any():
            continue
        diff = np.abs(retrained[finite] - recorded[finite])
        out[name] = float(np.max(diff / np.abs(recorded[finite]) if name.endswith("_loss") else diff))
    return out


def main():
    table, manifest = _load(BUILD)
    config = _config(manifest, "cpu")
    data = load_dataset(config.dataset, split_seed=config.split_seed, train_size=config.train_size,
                        valid_size=config.valid_size, test_size=config.test_size, image_size=config.image_size)
    rows = [0, 1, 2, 3]
    archs = [str(a) for a in table.arch_ids[rows]]
    torch.set_num_threads(2)
    alone = [train_group([a], data, config, stop_after=2) for a in archs]
    merged = type(alone[0])(archs, 20, {k: np.vstack([r.curves[k] for r in alone]) for k in alone[0].curves},
                            None, None, None, None)
    torch.set_num_threads(1)
    grouped = train_group(archs, data, config, stop_after=2)
    print(json.dumps({"two_threads_alone": differences(table, rows, merged),
                      "batched_K4_one_thread": differences(table, rows, grouped)}, indent=1))


if __name__ == "__main__":
    main()
