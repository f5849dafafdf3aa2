"""Pilot of a candidate nb201-fmnist configuration: is it informative, and what does a cell cost on this CPU?

Usage (from the repository root):
    python results/nb201-fmnist/pilot_cpu.py --image-size 12 --train-size 1000 --batch-size 128 --cells 24 --epochs 20
Trains a seeded uniform sample of the 6,466 canonical NB201 cells ONE AT A TIME (K=1 batched trainer: the
build's training path) and prints, as JSON: CPU (user+sys, getrusage) and wall seconds per cell-epoch, the
projected CPU-hours for 1,000 cells x epochs, the spread of final validation accuracy among cells with a
live input-output path (max - min and 10th..90th percentile), and Spearman(valid at 10 % of epochs, final).
"""
import argparse
import json
import os
import resource
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.spaces.nb201 import EDGES, NB201Space
from benchmarks.training.batched import train_group
from benchmarks.training.data import load_dataset
from benchmarks.training.trainer import TrainConfig


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def has_live_path(space: NB201Space, arch: str) -> bool:
    """Whether non-``none`` edges connect the cell's input (node 0) to its output (node 3)."""
    reached = {0}
    for (to_node, from_node), op in zip(EDGES, space.ops(arch)):  # edges are in topological order
        if op != "none" and from_node in reached:
            reached.add(to_node)
    return 3 in reached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--valid-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--cells", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the curves and numbers to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    valid = args.valid_size or args.train_size
    data = load_dataset("fashion-mnist", train_size=args.train_size, valid_size=valid, test_size=16,
                        image_size=args.image_size)
    space = NB201Space()
    pool = space.unique_architectures()
    cells = [pool[i] for i in np.random.default_rng(args.seed).choice(len(pool), size=args.cells, replace=False)]
    config = TrainConfig(C=args.C, N=args.N, max_epochs=args.epochs, batch_size=args.batch_size,
                         train_size=args.train_size, valid_size=valid, test_size=16, image_size=args.image_size,
                         test_every_epoch=False, device="cpu")
    curves, cpu, wall = [], [], []
    for arch in cells:
        w0, c0 = time.perf_counter(), cpu_seconds()
        result = train_group([arch], data, config)
        cpu.append(cpu_seconds() - c0)
        wall.append(time.perf_counter() - w0)
        curves.append(result.curves["valid_acc"][0].tolist())
    curves = np.array(curves)
    live = np.array([has_live_path(space, a) for a in cells])
    final = curves[live, -1]
    early = curves[live, max(1, round(0.1 * args.epochs)) - 1]
    per_cell_epoch = float(np.sum(cpu) / (len(cells) * args.epochs))
    report = {"image_size": data.spec.size, "train": args.train_size, "valid": valid, "batch_size": args.batch_size,
              "C": args.C, "N": args.N, "epochs": args.epochs, "cells": len(cells), "live": int(live.sum()),
              "cpu_s_per_cell_epoch": round(per_cell_epoch, 3),
              "wall_s_per_cell_epoch": round(float(np.sum(wall) / (len(cells) * args.epochs)), 3),
              "projected_cpu_hours_1000_cells": round(per_cell_epoch * 1000 * args.epochs / 3600, 2),
              "final_valid_live": {"min": round(float(final.min()), 2), "p10": round(float(np.percentile(final, 10)), 2),
                                   "median": round(float(np.median(final)), 2),
                                   "p90": round(float(np.percentile(final, 90)), 2), "max": round(float(final.max()), 2)},
              "spread_live_points": round(float(final.max() - final.min()), 2),
              "early_epoch": max(1, round(0.1 * args.epochs)),
              "spearman_early_final": round(float(spearmanr(early, final).statistic), 3),
              "load1_at_end": os.getloadavg()[0]}
    print(json.dumps(report), flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({**report, "archs": cells, "valid_curves": curves.tolist(), "cpu_seconds": cpu, "wall_seconds": wall},
                      handle, indent=1)


if __name__ == "__main__":
    main()
