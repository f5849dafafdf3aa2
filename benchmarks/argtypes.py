"""argparse ``type`` functions shared by every ``pmfnas`` command, so one option reads and refuses alike everywhere.

They live beside the benchmarks rather than in ``harness.cli`` because ``benchmark build``'s options are declared
in ``benchmarks.training.build``, and the benchmarks never import the harness (data flows benchmark → harness).
"""
from __future__ import annotations

import argparse
import math

__all__ = ["positive_int", "positive_number"]


def positive_int(text: str) -> int:
    """A whole number of at least 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_number(text: str) -> float:
    """A finite number above 0 (argparse names the option in its error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value
