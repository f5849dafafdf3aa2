"""Names users type → tables and the spaces that go with them.

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
from importlib import metadata
from pathlib import Path
from typing import Callable

from benchmarks.spaces.base import SearchSpace
from benchmarks.spaces.finite import FiniteSpace
from benchmarks.tabular import TabularBenchmark

NB201_FINAL_PREFIX = "nb201-final:"
ENTRY_POINT_GROUP = "pmfnas.benchmarks"

_REGISTERED: dict[str, Callable[[], TabularBenchmark]] = {}
_entry_points_loaded = False


def _built_in_names() -> list[str]:
    from benchmarks.loaders.nb201_final import DATASET_FILES
    return ["nbnlp-wt2"] + [NB201_FINAL_PREFIX + d for d in sorted(DATASET_FILES)]


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
    if text == "nbnlp-wt2":
        from benchmarks.loaders.nbnlp import load_nbnlp
        return load_nbnlp()
    if text.startswith(NB201_FINAL_PREFIX):
        from benchmarks.loaders.nb201_final import load_nb201_final
        return load_nb201_final(text[len(NB201_FINAL_PREFIX):])
    path = Path(text)
    if path.exists():
        return TabularBenchmark.load(path)
    raise ValueError(f"benchmark {text!r} is neither a built-in name ({', '.join(benchmark_names())}) "
                     "nor an existing pmfnas-tabular file or directory")


def space_for(table: TabularBenchmark) -> SearchSpace:
    """The search space a table's architectures live in."""
    kind = table.metadata.space
    if kind == "nb201":
        from benchmarks.spaces.nb201 import NB201Space
        return NB201Space()
    if kind == "nb101":
        from benchmarks.spaces.nb101 import NB101Space
        return NB101Space()
    return FiniteSpace(kind, table.arch_ids.tolist(), table.arch_features,
                       table.metadata.extra.get("feature_names", ()))
