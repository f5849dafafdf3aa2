"""Names users type → tables and the spaces that go with them."""
from __future__ import annotations

import os
from pathlib import Path

from benchmarks.spaces.base import SearchSpace
from benchmarks.spaces.finite import FiniteSpace
from benchmarks.tabular import TabularBenchmark

NB201_FINAL_PREFIX = "nb201-final:"


def benchmark_names() -> list[str]:
    """The built-in benchmark names."""
    from benchmarks.loaders.nb201_final import DATASET_FILES
    return ["nbnlp-wt2"] + [NB201_FINAL_PREFIX + d for d in sorted(DATASET_FILES)]


def load_benchmark(name_or_path: str | os.PathLike) -> TabularBenchmark:
    """A built-in benchmark by name, or a pmfnas-tabular file/directory by path."""
    text = str(name_or_path)
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
