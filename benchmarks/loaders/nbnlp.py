"""NAS-Bench-NLP WikiText-2 training logs (Klyuchnikov et al. 2020, Apache-2.0) → tabular format.

The package ships the converted table (``benchmarks/data/nbnlp-wt2.npz``, which ``load_benchmark("nbnlp-wt2")``
opens); this loader reads the raw zip (``$PMFNAS_NBNLP_LOGS``, ``../shared/...`` or any path given) for
``pmfnas benchmark convert nbnlp-wt2 PATH`` and for the test that the shipped table equals a fresh
conversion. Diverged runs ("loss is nan!") are kept and marked failed; their curves stop
where the log stops (NaN afterwards), and their recorded seconds are charged up to that point.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from benchmarks.tabular import BenchmarkFormatError, TabularBenchmark

MAX_EPOCHS = 50
RECIPE_OPS = ("linear", "blend", "elementwise_prod", "elementwise_sum",
              "activation_tanh", "activation_sigm", "activation_leaky_relu")
FEATURE_NAMES = tuple(f"n_{op}" for op in RECIPE_OPS) + ("n_nodes", "n_hidden_states", "log10_params")
SOURCE = ("github.com/fmsnew/nas-bench-nlp-release, train_logs_wikitext-2/logs.zip, "
          "commit a6d90a3b19e3966b1d009c0970b3761aa46707d1")


RELATIVE_LOCATION = Path("shared") / "data" / "nasbench-nlp-wt2" / "logs.zip"


def candidate_logs_paths() -> list[Path]:
    """Where the logs are looked for, in order: ``$PMFNAS_NBNLP_LOGS``, then ``../shared/data/...`` beside
    the current directory (a checkout's root), then beside the source tree (an editable install)."""
    places = []
    if os.environ.get("PMFNAS_NBNLP_LOGS"):
        places.append(Path(os.environ["PMFNAS_NBNLP_LOGS"]))
    places.append(Path.cwd().parent / RELATIVE_LOCATION)
    places.append(Path(__file__).resolve().parents[2].parent / RELATIVE_LOCATION)
    return places


def default_logs_path() -> Path:
    """The first place of :func:`candidate_logs_paths` that holds the logs (the first place if none does)."""
    places = candidate_logs_paths()
    return next((p for p in places if p.is_file()), places[0])


def recipe_features(recipe: dict, num_params: int) -> np.ndarray:
    """Counts of each op, node count, hidden-state count and log10 parameter count of a cell recipe."""
    ops = Counter(node.get("op") for node in recipe.values())
    hidden = sum(1 for name in recipe if name.startswith("h_new"))
    return np.array([ops.get(op, 0) for op in RECIPE_OPS] + [len(recipe), hidden, np.log10(max(num_params, 1))],
                    dtype=np.float64)


def load_nbnlp(path: str | os.PathLike | None = None) -> TabularBenchmark:
    """Read the WikiText-2 logs zip into a table: 344 architectures × 50 epochs of validation loss."""
    places = [Path(path)] if path is not None else candidate_logs_paths()
    path = next((p for p in places if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"NAS-Bench-NLP logs not found at {', '.join(repr(str(p)) for p in dict.fromkeys(places))}; "
            f"download logs.zip from {SOURCE} and pass its path (or set PMFNAS_NBNLP_LOGS)")
    runs = defaultdict(list)
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".json"))
            if not names:
                raise BenchmarkFormatError(f"{path} holds no NAS-Bench-NLP log files (*.json)")
            for name in names:
                log = json.loads(archive.read(name))
                runs[str(log["recepie_id"])].append(log)
    except (zipfile.BadZipFile, OSError) as error:
        raise BenchmarkFormatError(f"cannot read NAS-Bench-NLP logs {str(path)!r}: {error}") from None
    except (KeyError, json.JSONDecodeError) as error:
        raise BenchmarkFormatError(f"{path}: a log file is not a NAS-Bench-NLP log ({error!r})") from None

    arch_ids = sorted(runs, key=int)
    slots = max(len(v) for v in runs.values())
    shape = (len(arch_ids), slots, MAX_EPOCHS)
    valid, test, train, seconds = (np.full(shape, np.nan, dtype=np.float32) for _ in range(4))
    failed = np.zeros(shape[:2], dtype=bool)
    features = np.zeros((len(arch_ids), len(FEATURE_NAMES)))
    for i, arch in enumerate(arch_ids):
        # Experiment id orders repeats reproducibly.
        for r, log in enumerate(sorted(runs[arch], key=lambda log: log["experiment_id"])):
            n = len(log["val_losses"])
            if n > MAX_EPOCHS:
                raise BenchmarkFormatError(f"log of recipe {arch} has {n} epochs, more than {MAX_EPOCHS}")
            valid[i, r, :n] = log["val_losses"]
            test[i, r, :n] = log["test_losses"]
            train[i, r, :n] = log["train_losses"]
            seconds[i, r, :len(log["wall_times"])] = log["wall_times"]
            failed[i, r] = log["status"] != "OK"
        first = runs[arch][0]
        features[i] = recipe_features(json.loads(first["recepie"]), int(first["num_params"]))
    return TabularBenchmark.from_arrays(
        arch_ids, np.arange(1, MAX_EPOCHS + 1), valid, seconds, test=test, train=train, failed=failed,
        metric="valid_loss", higher_is_better=False, name="nbnlp-wt2", space="nbnlp", dataset="wikitext-2",
        provenance=f"NAS-Bench-NLP (Klyuchnikov et al. 2020) training logs, {SOURCE}; read from {path.name}",
        licence="Apache-2.0",
        notes=("metric is cross-entropy loss (perplexity = exp(loss)); curves 'test' and 'train' are losses too; "
               "failed runs diverged to NaN and their curves end there"),
        arch_features=features, extra={"feature_names": list(FEATURE_NAMES)})
