"""Running experiments: the runner, comparisons, metrics, reports and the ``pmfnas`` command line."""
from __future__ import annotations

__all__ = ["compare"]


def __getattr__(name: str):
    # Imported on first use: the comparison pulls in pandas, scipy and matplotlib, which the command
    # line must not pay for on `pmfnas --help` or `pmfnas benchmark list`.
    if name == "compare":
        from harness.comparison import compare
        return compare
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
