"""Running experiments: the runner, comparisons, metrics, reports and the ``pmfnas`` command line."""
from harness.comparison import compare

__all__ = ["compare"]
