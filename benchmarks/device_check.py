"""``python -m benchmarks.device_check --out DIR [--quick]``: GPU smoke test and throughput report.

A thin entry point; the work (and every torch import) lives in :mod:`benchmarks.training.device_check`,
whose docstring says what is measured and with which tolerances.
"""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    try:
        from benchmarks.training.device_check import main as run
    except ModuleNotFoundError as error:
        if error.name == "torch":
            print("device_check needs PyTorch (pip install torch); it is not installed", file=sys.stderr)
            return 2
        raise
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
