"""The installed pmf-nas version, for ``pmfnas --version`` and the settings a results folder records."""
from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "pmf-nas"


def package_version() -> str:
    """The version of the installed ``pmf-nas`` distribution, or ``"unknown (not installed)"`` when run from a
    source tree that was never installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"
