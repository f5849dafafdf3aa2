"""Writing files so that a reader never sees half of one: the one atomic-write helper of the project.

Every output (tables, checkpoints, result files, plots) is written to a temporary file beside its
destination and renamed over it only once complete, so an interruption leaves the old file or none,
never a truncated one. Outputs are meant to be shared, so they get mode 0644 (``mkstemp`` makes
private 0600 files).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["SHARED_DIRECTORY_MODE", "SHARED_FILE_MODE", "atomic_output", "atomic_write"]

SHARED_FILE_MODE = 0o644
SHARED_DIRECTORY_MODE = 0o755


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``, else it is removed.

    ``suffix`` ends the temporary name (some writers choose the format by extension, e.g. ``".tmp.png"``).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, SHARED_FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically, mode 0644."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
