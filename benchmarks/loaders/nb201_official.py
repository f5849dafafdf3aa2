"""Convert the official NAS-Bench-201 / NATS-Bench (topology) benchmark files into the tabular format.

The files are read through their official APIs, never re-parsed by hand:

* NAS-Bench-201 ``NAS-Bench-201-v1_0-e61699.pth`` and ``NAS-Bench-201-v1_1-096897.pth`` through
  ``nas_201_api.NASBench201API`` (pip ``nas-bench-201``; needs torch: ``pip install "pmf-nas[nb201,train]"``);
* NATS-Bench topology ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` (or its unpacked ``NATS-tss-v1_0-3ffb9-simple``
  archive directory) through ``nats_bench.create(path, "tss", ...)`` (pip ``nats_bench``; no torch).

Only the 200-epoch schedule (``hp="200"``) is converted. Every architecture of the file becomes one row,
in official index order, keyed by its official architecture string (``api.meta_archs[i]``). Every recorded
seed becomes one repeat (ascending seed order, packed from slot 0, NaN after an architecture's last seed).
Epoch ``e`` of the table is the file's 0-based ``iepoch = e - 1``. Anything the file does not hold is NaN.

Per-epoch values are read from the public result objects (``ArchResults.dataset_seed`` /
``ArchResults.all_results`` and the ``ResultsCount`` attributes ``train_acc1es``, ``train_losses``,
``train_times``, ``eval_acc1es``, ``eval_losses``, ``eval_times`` keyed ``"<split>@<iepoch>"``), held by the
API in ``api.arch2infos_dict`` -- the same objects ``get_more_info`` reads, without its per-call overhead
(a full file is 15,625 architectures x up to 3 seeds x 200 epochs).

Split mapping (the official ``remap_dataset_set_names`` / ``get_more_info`` conventions):

================  ======================================  =========================  ======================
dataset           valid, valid_loss, seconds              test, test_loss            train, train_loss
================  ======================================  =========================  ======================
cifar10-valid     cifar10-valid runs, ``x-valid``         same runs, ``ori-test``    same runs, ``train``
cifar10           cifar10-valid runs, ``x-valid`` (*)     cifar10 runs, ``ori-test`` cifar10 runs, ``train``
cifar100          ``x-valid``                             ``x-test``                 ``train``
ImageNet16-120    ``x-valid``                             ``x-test``                 ``train``
================  ======================================  =========================  ======================

(*) The ``cifar10`` runs are trained on train+valid and hold no validation split (``get_more_info(...,
"cifar10")`` returns no ``valid-accuracy``). The official API maps the validation metric of ``cifar10`` to
the ``x-valid`` split of the ``cifar10-valid`` runs (``remap_dataset_set_names("cifar10", "valid")`` ->
``("cifar10-valid", "x-valid")``) and ``simulate_train_eval(..., "cifar10")`` searches on, and charges the
time of, those runs. This converter does the same and says so in the table's ``notes``.

``seconds[n, s, e-1]`` = ``train_times[e-1]`` + ``eval_times["x-valid@{e-1}"]`` of the run that produced
``valid`` in that slot: the cost of that one epoch (train + eval of the valid split), not cumulative.
Accuracies are in percent, as recorded.

The official files are Python pickles (the ``.pth`` through ``torch.load``): only convert files you trust.
"""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from benchmarks.tabular import BenchmarkFormatError, BenchmarkMetadata, TabularBenchmark

__all__ = ["DATASETS", "convert_official", "describe_sources", "detect_kind"]

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
MAX_EPOCHS = 200
HP = "200"
Kind = Literal["auto", "nb201", "nats-tss"]

NB201_INSTALL_HINT = 'pip install "pmf-nas[nb201,train]"'
NATS_INSTALL_HINT = 'pip install "pmf-nas[nb201]"'

# (runs, split) per curve, per dataset; see the module docstring.
_SPLITS: dict[str, dict[str, tuple[str, str]]] = {
    "cifar10-valid": {"valid": ("cifar10-valid", "x-valid"), "test": ("cifar10-valid", "ori-test"),
                      "train": ("cifar10-valid", "train")},
    "cifar10": {"valid": ("cifar10-valid", "x-valid"), "test": ("cifar10", "ori-test"),
                "train": ("cifar10", "train")},
    "cifar100": {"valid": ("cifar100", "x-valid"), "test": ("cifar100", "x-test"), "train": ("cifar100", "train")},
    "ImageNet16-120": {"valid": ("ImageNet16-120", "x-valid"), "test": ("ImageNet16-120", "x-test"),
                       "train": ("ImageNet16-120", "train")},
}

_CIFAR10_NOTE = (
    "cifar10: the official 'cifar10' runs are trained on CIFAR-10 train+valid and have no validation split "
    "(get_more_info(..., 'cifar10') returns no valid-accuracy). Following the official API "
    "(remap_dataset_set_names('cifar10', 'valid') -> ('cifar10-valid', 'x-valid'); simulate_train_eval "
    "searches on and charges the cifar10-valid runs), 'valid', 'valid_loss' and 'seconds' come from the "
    "'cifar10-valid' runs (trained on the train split, evaluated on 'x-valid'), while 'test'/'test_loss' "
    "('ori-test') and 'train'/'train_loss' (train+valid) come from the 'cifar10' runs. These are separate "
    "training runs: repeat slot k holds the k-th seed (ascending) of each run set, so valid and test in a slot "
    "are not the same network."
)


# ---------------------------------------------------------------------------------------------- sources
def describe_sources() -> list[dict[str, str]]:
    """Where to download the official files this converter reads (from the upstream READMEs)."""
    nb201_readme = "https://github.com/D-X-Y/NAS-Bench-201#preparation-and-download"
    nats_readme = "https://github.com/D-X-Y/NATS-Bench#preparation-and-download"
    return [
        {"name": "NAS-Bench-201 v1.0", "file": "NAS-Bench-201-v1_0-e61699.pth", "kind": "nb201", "size": "2.2 GB",
         "url": "https://drive.google.com/open?id=1SKW0Cu0u8-gb18zDpaAGi0f74UdXeGKs", "listed_in": nb201_readme,
         "needs": NB201_INSTALL_HINT},
        {"name": "NAS-Bench-201 v1.1 (recommended by upstream)", "file": "NAS-Bench-201-v1_1-096897.pth",
         "kind": "nb201", "size": "4.7 GB",
         "url": "https://drive.google.com/open?id=16Y0UwGisiouVRxW-W5hEtbxmcHw_0hF_", "listed_in": nb201_readme,
         "needs": NB201_INSTALL_HINT},
        {"name": "NATS-Bench topology (tss) v1.0", "file": "NATS-tss-v1_0-3ffb9.pickle.pbz2", "kind": "nats-tss",
         "size": "",
         "url": "https://drive.google.com/file/d/1vzyK0UVH2D3fTpa1_dSWnp1gvGpAxRul/view?usp=sharing",
         "listed_in": nats_readme, "needs": NATS_INSTALL_HINT},
        {"name": "NATS-Bench topology (tss) v1.0, unpacked archive (untar, pass the directory)",
         "file": "NATS-tss-v1_0-3ffb9-simple.tar", "kind": "nats-tss", "size": "",
         "url": "https://drive.google.com/file/d/17_saCsj_krKjlCBLOJEpNtzPXArMCqxU/view?usp=sharing",
         "listed_in": nats_readme, "needs": NATS_INSTALL_HINT},
    ]


# ------------------------------------------------------------------------------------------- detection
def detect_kind(path: str | os.PathLike) -> Literal["nb201", "nats-tss"]:
    """Which official format ``path`` holds: by name first, then by the file's first bytes."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir() or name.endswith(".pbz2") or name.startswith("nats-tss"):
        return "nats-tss"
    if name.endswith(".pth") or name.startswith("nas-bench-201"):
        return "nb201"
    try:
        with open(path, "rb") as handle:
            head = handle.read(3)
    except OSError as error:
        raise BenchmarkFormatError(f"cannot read official benchmark file {str(path)!r}: {error}") from None
    return "nats-tss" if head == b"BZh" else "nb201"


# ------------------------------------------------------------------------------------------- loading
def _load_nb201(path: Path) -> Any:
    try:
        from nas_201_api import NASBench201API
    except ImportError as error:  # nas_201_api imports torch at module level
        raise ImportError(
            f"converting the NAS-Bench-201 file {str(path)!r} needs torch and the official API "
            f"(nas-bench-201): {NB201_INSTALL_HINT} ({error})") from error
    import torch

    try:
        return NASBench201API(str(path), verbose=False)
    except pickle.UnpicklingError as error:
        # torch >= 2.6 loads with weights_only=True by default and refuses any class outside its allowlist
        # ("Unsupported global"); the official files are full pickles written for older torch. Only that
        # refusal falls back to a full load, as the official API intended; corrupt data is reported as such.
        message = str(error).lower()
        if "weights only load failed" not in message or "unsupported global" not in message:
            # torch's own text advises weights_only=False, which is no cure for a file that is not a pickle.
            raise BenchmarkFormatError(f"cannot read official benchmark file {str(path)!r} as NAS-Bench-201 (.pth): "
                                       "torch cannot unpickle it (corrupt or truncated download, or not that "
                                       "format?)") from None
    warnings.warn(f"{path.name}: torch's weights-only loader refused the file; loading it as a full pickle "
                  "(as the official API did before torch 2.6). Only do this with files you trust.",
                  stacklevel=3)
    data = torch.load(str(path), map_location="cpu", weights_only=False)
    api = NASBench201API(data, verbose=False)
    api.filename = path.name
    return api


def _load_nats(path: Path) -> Any:
    try:
        import nats_bench
    except ImportError as error:
        raise ImportError(f"converting the NATS-Bench file {str(path)!r} needs the official API (nats_bench): "
                          f"{NATS_INSTALL_HINT} ({error})") from error
    fast_mode = path.is_dir()
    if fast_mode:
        meta = path / "meta.pickle.pbz2"
        if not meta.is_file():
            raise BenchmarkFormatError(f"{str(path)!r} is not a NATS-Bench archive directory: {meta.name} is missing")
    return nats_bench.create(str(path), "tss", fast_mode=fast_mode, verbose=False)


def _arch_results(api: Any, index: int, fast_mode_dir: Path | None) -> Any:
    """The hp='200' ArchResults of one architecture, or None when the file holds none."""
    if fast_mode_dir is not None and index not in api.arch2infos_dict:
        api.reload(str(fast_mode_dir), index)  # public API: loads this architecture's per-arch file
    by_hp = api.arch2infos_dict.get(index)
    if by_hp is None:
        return None
    return by_hp.get(HP)


# ------------------------------------------------------------------------------------------- reading
_NAN = float("nan")


def _as_floats(values: list) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray([_NAN if v is None else float(v) for v in values], dtype=np.float64)


def _per_epoch(container: Any, keys: Sequence) -> np.ndarray:
    """Values of a per-epoch dict (or list) at ``keys``; NaN where absent."""
    if container is None:
        return np.full(len(keys), np.nan)
    if isinstance(container, Mapping):
        return _as_floats([container.get(k, _NAN) for k in keys])
    values = list(container)[: len(keys)]
    return _as_floats(values + [_NAN] * (len(keys) - len(values)))


class _Keys:
    iepochs = list(range(MAX_EPOCHS))

    def __init__(self):
        self._split: dict[str, list[str]] = {}

    def split(self, name: str) -> list[str]:
        if name not in self._split:
            self._split[name] = [f"{name}@{i}" for i in range(MAX_EPOCHS)]
        return self._split[name]


def _runs(arch: Any, runs_name: str) -> list[Any]:
    """The ResultsCount of each recorded seed of ``runs_name``, ascending seed order."""
    seeds = sorted(arch.dataset_seed.get(runs_name, [])) if arch is not None else []
    return [arch.all_results[(runs_name, seed)] for seed in seeds]


def _check_epochs(result: Any, where: str) -> None:
    epochs = getattr(result, "epochs", None)
    if epochs is not None and int(epochs) != MAX_EPOCHS:
        raise BenchmarkFormatError(f"{where}: the hp='200' run records {epochs} epochs, expected {MAX_EPOCHS}")


def _licence(dist: str) -> str:
    try:
        from importlib.metadata import metadata
        meta = metadata(dist)
        declared = meta.get("License") or "not declared"
        return (f"{declared} (as declared by the {dist} {meta.get('Version')} package metadata; its LICENSE.md is "
                f"the MIT licence, copyright Xuanyi Dong). The benchmark file itself ships no separate licence "
                f"text; see the upstream repository for terms.")
    except Exception:  # pragma: no cover - metadata missing
        return "MIT (licence of the official API package; see the upstream repository)"


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # pragma: no cover
        return "unknown"


# ------------------------------------------------------------------------------------------- convert
def convert_official(path: str | os.PathLike, dataset: str, *, kind: Kind = "auto") -> TabularBenchmark:
    """Convert an official NAS-Bench-201 ``.pth`` or NATS-tss file/archive into a :class:`TabularBenchmark`.

    ``dataset`` is one of ``"cifar10-valid"``, ``"cifar10"``, ``"cifar100"``, ``"ImageNet16-120"``;
    ``kind`` is ``"nb201"`` (``.pth`` via ``nas_201_api``), ``"nats-tss"`` (``.pickle.pbz2`` file or archive
    directory via ``nats_bench``) or ``"auto"`` (by name, then content). See the module docstring for the
    split mapping. Raises FileNotFoundError for a missing path, ImportError (with the pip command) when the
    official API is not installed, and BenchmarkFormatError naming the path when the file cannot be read.
    """
    path = Path(path)
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r} is not one of {list(DATASETS)}")
    if kind not in ("auto", "nb201", "nats-tss"):
        raise ValueError(f"kind {kind!r} is not one of ['auto', 'nb201', 'nats-tss']")
    if not path.exists():
        raise FileNotFoundError(f"official benchmark file {str(path)!r} does not exist")
    if kind == "auto":
        kind = detect_kind(path)
    if kind == "nb201" and path.is_dir():
        raise BenchmarkFormatError(f"{str(path)!r} is a directory; a NAS-Bench-201 benchmark is one .pth file")

    label = "NAS-Bench-201 (.pth)" if kind == "nb201" else "NATS-Bench topology (tss)"
    loader = _load_nb201 if kind == "nb201" else _load_nats
    try:
        api = loader(path)
    except (ImportError, BenchmarkFormatError):
        raise
    except Exception as error:  # the official loaders raise AssertionError/ValueError/OSError/UnpicklingError...
        raise BenchmarkFormatError(
            f"cannot read official benchmark file {str(path)!r} as {label} (corrupt or truncated download, or not "
            f"that format?): {type(error).__name__}: {_short(error)}") from None

    try:
        return _convert(api, path, dataset, kind)
    except BenchmarkFormatError:
        raise
    except Exception as error:
        raise BenchmarkFormatError(
            f"official benchmark file {str(path)!r} ({label}) does not have the expected structure: "
            f"{type(error).__name__}: {_short(error)}") from None


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _convert(api: Any, path: Path, dataset: str, kind: str) -> TabularBenchmark:
    splits = _SPLITS[dataset]
    search_runs, valid_split = splits["valid"]
    test_runs, test_split = splits["test"]
    train_runs, train_split = splits["train"]
    keys = _Keys()
    fast_dir = path if (kind == "nats-tss" and path.is_dir()) else None

    meta_archs = list(api.meta_archs)
    n = len(meta_archs)
    if n == 0:
        raise BenchmarkFormatError(f"official benchmark file {str(path)!r} lists no architectures")

    # First pass: collect the runs (cheap references) to size the repeat axis.
    per_arch: list[tuple[list[Any], list[Any]]] = []
    for index in range(n):
        arch = _arch_results(api, index, fast_dir)
        search, report = _runs(arch, search_runs), _runs(arch, test_runs)
        per_arch.append((search, report))
    s = max(1, max(max(len(a), len(b)) for a, b in per_arch))

    shape = (n, s, MAX_EPOCHS)
    curves = {name: np.full(shape, np.nan, dtype=np.float32)
              for name in ("valid", "valid_loss", "test", "test_loss", "train", "train_loss")}
    seconds = np.full(shape, np.nan, dtype=np.float32)
    failed = np.zeros((n, s), dtype=bool)
    repeat_counts: dict[int, int] = {}

    for index, (search, report) in enumerate(per_arch):
        where = f"{path}: architecture {index}"
        repeat_counts[len(search)] = repeat_counts.get(len(search), 0) + 1
        for slot, run in enumerate(search):
            _check_epochs(run, f"{where}, {search_runs} seed {getattr(run, 'seed', '?')}")
            acc = _per_epoch(run.eval_acc1es, keys.split(valid_split))
            loss = _per_epoch(run.eval_losses, keys.split(valid_split))
            curves["valid"][index, slot] = acc
            curves["valid_loss"][index, slot] = loss
            train_time = _per_epoch(run.train_times, keys.iepochs)
            eval_time = _per_epoch(run.eval_times, keys.split(valid_split))
            seconds[index, slot] = train_time + eval_time
            # A run that recorded a non-finite validation value diverged: keep it, flag it.
            if not (np.all(np.isfinite(acc)) and np.all(np.isfinite(loss))):
                failed[index, slot] = bool(
                    np.any(np.isinf(acc)) or np.any(np.isinf(loss))
                    or _has_recorded_nan(run.eval_acc1es, keys.split(valid_split))
                    or _has_recorded_nan(run.eval_losses, keys.split(valid_split)))
        for slot, run in enumerate(report):
            _check_epochs(run, f"{where}, {test_runs} seed {getattr(run, 'seed', '?')}")
            curves["test"][index, slot] = _per_epoch(run.eval_acc1es, keys.split(test_split))
            curves["test_loss"][index, slot] = _per_epoch(run.eval_losses, keys.split(test_split))
            curves["train"][index, slot] = _per_epoch(run.train_acc1es, keys.iepochs)
            curves["train_loss"][index, slot] = _per_epoch(run.train_losses, keys.iepochs)

    if kind == "nb201":
        dist, api_name, space_label = "nas-bench-201", "nas_201_api.NASBench201API", "nb201"
    else:
        dist, api_name, space_label = "nats_bench", "nats_bench.create(path, 'tss')", "nats-tss"
    n_evaluated = sum(1 for a, b in per_arch if a or b)
    notes = [
        f"Converted from the official file {path.name} with {api_name} ({dist} {_version(dist)}), hp='200' "
        f"(200-epoch schedule). Rows: all {n} architectures in official index order, keyed by the official "
        f"architecture string; {n_evaluated} hold runs for this dataset, the others are all NaN.",
        f"Splits: valid/valid_loss = '{valid_split}' of the '{search_runs}' runs; test/test_loss = "
        f"'{test_split}' and train/train_loss = 'train' of the '{test_runs}' runs. Accuracies in percent.",
        f"seconds = per-epoch train time + the '{valid_split}' eval time of that epoch (not cumulative), from the "
        f"'{search_runs}' runs; NaN where the file records no time.",
        "Repeats are the recorded seeds in ascending order, packed from slot 0; missing values are NaN.",
    ]
    if dataset == "cifar10":
        notes.append(_CIFAR10_NOTE)
    metadata = BenchmarkMetadata(
        name=f"{space_label}-{dataset}", space="nb201", dataset=dataset, metric="valid_accuracy",
        higher_is_better=True, max_epochs=MAX_EPOCHS,
        provenance=f"{path.name} (official {'NAS-Bench-201' if kind == 'nb201' else 'NATS-Bench tss'} file) "
                   f"converted by pmf-nas benchmarks.loaders.nb201_official via {api_name}",
        licence=_licence(dist), canonical_keys=False, notes=" ".join(notes),
        extra={"source_file": path.name, "kind": kind, "hp": HP, "api": f"{dist} {_version(dist)}",
               "splits": {"valid": [search_runs, valid_split], "test": [test_runs, test_split],
                          "train": [train_runs, train_split]},
               "architectures_by_repeat_count": {str(k): v for k, v in sorted(repeat_counts.items())}},
    )
    return TabularBenchmark(np.asarray(meta_archs, dtype=str), np.arange(1, MAX_EPOCHS + 1, dtype=np.int64),
                            seconds, curves, failed, metadata)


def _has_recorded_nan(container: Any, keys: Sequence) -> bool:
    """Whether a value that IS recorded (key present) is NaN -- distinct from a missing entry."""
    if not isinstance(container, Mapping):
        return False
    for k in keys:
        v = container.get(k)
        if v is not None and v != v:
            return True
    return False
