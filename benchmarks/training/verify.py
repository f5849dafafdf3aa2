"""Re-check a built benchmark: retrain some of its cells from scratch and compare with what it recorded.

``verify_benchmark(source, cells=2, epochs=2)`` reads the build's manifest (from a build directory's
``manifest.json``, or the ``extra.manifest`` of a merged table or a registered name), rebuilds the exact
training configuration (recipe, network size, data split and sizes, image size, seeds), draws ``cells``
non-failed architectures of the table with ``numpy.random.default_rng(seed)``, trains each ALONE from
its recorded initial weights for the first ``epochs`` epochs of the full schedule (the cosine still spans
the manifest's ``epochs``, so the retrained curve is a prefix of the recorded one), and compares every
recorded curve (valid / train / test accuracy and loss) epoch by epoch.

The cells are retrained with as many torch threads as the build used (its manifest's hardware record;
the global setting is restored afterwards), one cell at a time.

Tolerance (``TOLERANCE``): accuracies within ``accuracy_points`` percentage points and losses within
``loss_relative`` (relative). Measured on the committed CPU build (``results/nb201-fmnist/CONFIGURATION.md``,
``verify_tolerance.py``): on the machine that built it, with one thread and one cell at a time as in the
build, the curves are reproduced **bit for bit** (maximum difference 0). Float-level differences are
amplified by the first epochs of training, though: the same 4 cells retrained with 2 threads instead of 1
(another summation order, as another CPU's kernels would give) differed by up to 1.7 accuracy points and
2.5 % of a loss after 2 epochs; trained together as one batched group (K = 4, grouped convolutions) by up
to 9.6 points and 8.3 %. The tolerance covers the first kind with margin; a build trained in groups of K > 1
cannot be re-checked at 2 epochs within it (retrain its groups, or more epochs, instead).

``pmfnas benchmark verify SOURCE --cells N`` runs it (exit status 0 when every cell agrees, 1 otherwise).
torch is imported only inside :func:`verify_benchmark`.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["TOLERANCE", "verify_benchmark", "add_verify_arguments", "verify_command"]

TOLERANCE = {"accuracy_points": 3.0, "loss_relative": 0.05}
# recorded curve name -> the batched trainer's curve name
_CURVES = {"valid": "valid_acc", "valid_loss": "valid_loss", "train": "train_acc", "train_loss": "train_loss",
           "test": "test_acc", "test_loss": "test_loss"}


def _load(source: str | os.PathLike):
    """(table, manifest) of a build directory, a table file, or a registered benchmark name."""
    from benchmarks.training.build import merge_chunks, read_manifest

    path = Path(source)
    if (path / "manifest.json").is_file():
        return merge_chunks(path), read_manifest(path)
    from benchmarks.registry import load_benchmark

    table = load_benchmark(source)
    manifest = table.metadata.extra.get("manifest")
    if not isinstance(manifest, dict) or "settings" not in manifest:
        raise ValueError(f"{source} was not made by 'pmfnas benchmark build' (its metadata has no build manifest): "
                         "there is no training configuration to re-check it with")
    return table, manifest


def _config(manifest: dict, device: str):
    from benchmarks.training.trainer import TrainConfig

    s = manifest["settings"]
    return TrainConfig(dataset=s["dataset"], data_root=s.get("data_root"), C=s["C"], N=s["N"], max_epochs=s["epochs"],
                       batch_size=s["batch_size"], lr=s["lr"], momentum=s["momentum"], nesterov=s["nesterov"],
                       weight_decay=s["weight_decay"], seed=s["seed"], split_seed=s["split_seed"],
                       train_size=s["train_size"], valid_size=s["valid_size"], test_size=s["test_size"],
                       image_size=s.get("image_size"), device=device, bf16=s["bf16"], deterministic=s["deterministic"],
                       test_every_epoch=s["test_every_epoch"], eval_batch_size=s["eval_batch_size"])


def _build_threads(manifest: dict) -> int | None:
    """The torch thread count of the build's runs when they agree (None: unknown or mixed)."""
    counts = {(run.get("hardware") or {}).get("torch_threads") for run in manifest.get("runs", []) if run.get("built")}
    return counts.pop() if len(counts) == 1 and None not in counts else None


def verify_benchmark(source: str | os.PathLike, cells: int = 2, epochs: int = 2, *, seed: int = 0,
                     device: str = "cpu", data_root: str | None = None, data=None,
                     progress: Callable[[str], None] | None = None) -> dict:
    """Retrain ``cells`` architectures of ``source`` for ``epochs`` epochs and compare (see the module docstring).

    ``data``: prebuilt :class:`~benchmarks.training.data.DataSplits` to use instead of loading the
    manifest's split (tests). Returns a JSON-able report: ``agree`` (every cell within ``TOLERANCE``),
    ``identical`` (every compared value equal), and per cell the maximum absolute difference of each
    accuracy curve and maximum relative difference of each loss curve over the compared epochs.
    """
    from benchmarks.spaces.nb201 import NB201Space
    from benchmarks.training.batched import train_group
    from benchmarks.training.data import load_dataset

    say = progress or (lambda line: None)
    table, manifest = _load(source)
    settings = manifest["settings"]
    for label, value in (("cells", cells), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label}={value!r} must be a positive int")
    if epochs > settings["epochs"]:
        raise ValueError(f"epochs={epochs} exceeds the {settings['epochs']} epochs the table was built with")
    usable = np.flatnonzero(~table.failed[:, 0])
    if cells > usable.size:
        raise ValueError(f"cells={cells} exceeds the {usable.size} non-failed architectures of {source}")
    rows = np.sort(np.random.default_rng(seed).choice(usable, size=cells, replace=False))
    config = _config(manifest, device)
    if data is None:
        data = load_dataset(config.dataset, data_root or config.data_root, split_seed=config.split_seed,
                            train_size=config.train_size, valid_size=config.valid_size, test_size=config.test_size,
                            image_size=config.image_size, device=device)
    import torch

    space = NB201Space()
    report_cells, identical = [], True
    threads = _build_threads(manifest)
    previous_threads = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        results = [train_group([space.parse(str(table.arch_ids[row]))], data, config, stop_after=epochs)
                   for row in rows.tolist()]
    finally:
        torch.set_num_threads(previous_threads)
    for row, result in zip(rows.tolist(), results):
        arch = result.archs[0]
        diffs, agree = {}, True
        for name, key in _CURVES.items():
            if name not in table.curves:
                continue
            recorded = np.asarray(table.curves[name][row, 0, :epochs], dtype=np.float64)
            retrained = np.asarray(result.curves[key][0, :epochs], dtype=np.float64)
            if not np.array_equal(np.isnan(recorded), np.isnan(retrained)):
                diffs[name] = "NaN pattern differs"
                agree = identical = False
                continue
            both = ~np.isnan(recorded)
            if not both.any():
                continue
            if name.endswith("_loss"):
                diff = float(np.max(np.abs(retrained[both] - recorded[both]) / np.abs(recorded[both])))
                agree &= diff <= TOLERANCE["loss_relative"]
            else:
                diff = float(np.max(np.abs(retrained[both] - recorded[both])))
                agree &= diff <= TOLERANCE["accuracy_points"]
            identical &= diff == 0.0
            diffs[name] = diff
        report_cells.append({"arch": arch, "row": int(row), "agree": bool(agree), "max_difference": diffs,
                             "valid_recorded": table.curves["valid"][row, 0, :epochs].tolist(),
                             "valid_retrained": result.curves["valid_acc"][0, :epochs].tolist()})
        say(f"{'agrees' if agree else 'DIFFERS'}: {arch} valid recorded "
            f"{np.round(report_cells[-1]['valid_recorded'], 2).tolist()} retrained "
            f"{np.round(report_cells[-1]['valid_retrained'], 2).tolist()}; max differences "
            + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in diffs.items()))
    built_on = sorted({(run.get("hardware") or {}).get("device_name", "?") for run in manifest.get("runs", [])
                       if run.get("built")})
    return {"source": str(source), "epochs": epochs, "seed": seed, "device": device, "built_on": built_on,
            "torch_threads": threads or previous_threads,
            "batch_k": sorted({run.get("batch_k") for run in manifest.get("runs", []) if run.get("built")}),
            "tolerance": dict(TOLERANCE), "agree": all(c["agree"] for c in report_cells),
            "identical": bool(identical), "cells": report_cells}


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``pmfnas benchmark verify``."""
    parser.add_argument("source", help="a build directory (manifest.json + chunks/), a table made by the build, or its name")
    parser.add_argument("--cells", type=int, default=2, help="architectures to retrain (default 2)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the schedule to retrain (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the choice of architectures (default 0)")
    parser.add_argument("--device", default="cpu", help="device to retrain on (default cpu)")
    parser.add_argument("--data-root", default=None, help="dataset directory (default: the manifest's, else the standard place)")
    parser.add_argument("--json", default=None, help="also write the report to this JSON file")


def verify_command(args: argparse.Namespace) -> int:
    """``pmfnas benchmark verify``: 0 when every retrained cell agrees with the table, 1 otherwise."""
    report = verify_benchmark(args.source, args.cells, args.epochs, seed=args.seed, device=args.device,
                              data_root=args.data_root, progress=lambda line: print(line, flush=True))
    if args.json:
        from benchmarks.files import atomic_write

        atomic_write(Path(args.json), json.dumps(report, indent=2) + "\n")
    verdict = "bit-identical" if report["identical"] else ("within tolerance" if report["agree"] else "NOT within tolerance")
    print(f"{args.source}: {len(report['cells'])} cell(s) retrained for {args.epochs} epoch(s): {verdict} "
          f"(accuracy {TOLERANCE['accuracy_points']} points, loss {TOLERANCE['loss_relative']:.0%} relative)")
    return 0 if report["agree"] else 1
