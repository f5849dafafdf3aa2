"""Per-cell CPU cost of candidate nb201-fmnist configurations: one model alone vs batched groups.

Usage (from the repository root):
    python results/nb201-fmnist/measure_cpu.py --image-size 16 --train-size 5000 --k 1,8 --threads 1
Prints one JSON line per measurement: wall and process (CPU) seconds per epoch (train pass + valid pass)
and per cell. Cells: the cheapest and most expensive canonical cells by FLOPs plus a seeded sample.
"""
import argparse
import json
import os
import resource
import time

import numpy as np
import torch

from benchmarks.spaces.nb201 import NB201Space
from benchmarks.training.batched import train_group
from benchmarks.training.build import nb201_flops
from benchmarks.training.data import load_dataset
from benchmarks.training.trainer import TrainConfig


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--valid-size", type=int, default=None)
    parser.add_argument("--k", default="1,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    valid = args.valid_size or args.train_size
    data = load_dataset("fashion-mnist", train_size=args.train_size, valid_size=valid, test_size=16,
                        image_size=args.image_size)
    pool = NB201Space().unique_architectures()
    flops = [nb201_flops(a, args.C, args.N, 1, data.spec.size) for a in pool]
    rng = np.random.default_rng(0)
    cells = [pool[int(np.argmin(flops))], pool[int(np.argmax(flops))]]
    cells += [pool[i] for i in rng.choice(len(pool), size=args.cells - 2, replace=False)]
    config = TrainConfig(C=args.C, N=args.N, max_epochs=args.epochs, train_size=args.train_size, valid_size=valid,
                         test_size=16, image_size=args.image_size, test_every_epoch=False, device="cpu")
    for k in (int(x) for x in args.k.split(",")):
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        accs = []
        for begin in range(0, len(cells), k):
            result = train_group(cells[begin:begin + k], data, config)
            accs += result.curves["valid_acc"][:, -1].tolist()
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        n = len(cells) * args.epochs
        print(json.dumps({"image_size": data.spec.size, "train": args.train_size, "valid": valid, "C": args.C,
                          "N": args.N, "K": k, "threads": args.threads, "cells": len(cells), "epochs": args.epochs,
                          "wall_s_per_cell_epoch": round(wall / n, 3), "cpu_s_per_cell_epoch": round(cpu / n, 3),
                          "load1": os.getloadavg()[0], "valid_acc_last": [round(a, 1) for a in accs]}), flush=True)


if __name__ == "__main__":
    main()
