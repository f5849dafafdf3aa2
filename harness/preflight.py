"""Checks made before any work starts, so that a wrong path, device or installation fails at once.

Each check raises ``ValueError`` naming the problem (the command line prints it as one line, exit 2).
Nothing here creates a file or a directory: a command that is refused leaves nothing behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["TRAIN_EXTRA_HINT", "check_output_dir", "check_output_file", "require_torch", "check_device"]

TRAIN_EXTRA_HINT = "pip install 'pmf-nas[train]'"


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_can_create_in(directory: Path, target: Path, flag: str) -> None:
    """Files can be made in ``directory`` (which may not exist yet): its nearest existing ancestor is a writable
    directory. ``target`` is the path the user gave, for the message."""
    ancestor = _nearest_existing(directory)
    if not ancestor.is_dir():
        raise ValueError(f"{flag} {target}: {ancestor} is a file, not a directory")
    try:
        # A real probe, not os.access: it also catches read-only file systems and is right for root.
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".pmfnas-write-probe-")
    except OSError as error:
        raise ValueError(f"{flag} {target}: cannot write in {ancestor} ({error.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """An output directory: an existing writable directory, or one that can be created."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"{flag} {target} is a file, not a directory")
    _check_can_create_in(target, target, flag)
    return target


def check_output_file(path: str | os.PathLike, flag: str, directory_allowed: bool = False) -> Path:
    """An output file (or, with ``directory_allowed``, a table directory) that can be written.

    A table path ending in ``.npz`` is one file, any other a directory (the open format's two forms).
    """
    target = Path(path)
    wants_directory = directory_allowed and target.suffix != ".npz"
    if target.exists():
        if wants_directory and not target.is_dir():
            raise ValueError(f"{flag} {target} is a file, but a table path without .npz is a directory")
        if not wants_directory and target.is_dir():
            raise ValueError(f"{flag} {target} is a directory, not a file")
    # Files are replaced atomically through a temporary file beside them: the parent must take new files.
    _check_can_create_in(target if wants_directory else target.parent, target, flag)
    return target


def require_torch(what: str = "real training") -> None:
    """torch is importable, or ValueError telling how to install the ``train`` extra."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ValueError(f"{what} needs the train extra: {TRAIN_EXTRA_HINT}") from None


def check_device(device: str | None) -> None:
    """The torch device asked for exists here (``None``: the default, always fine)."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {device!r} is not a torch device (cpu, cuda, cuda:N)") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise ValueError(f"--device {device} asks for CUDA, but torch {torch.__version__} ({build}) sees no GPU")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device} asks for Apple MPS, which torch {torch.__version__} does not see here")
