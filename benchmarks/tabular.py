"""The open tabular benchmark format (``pmfnas-tabular``, version 1) and its in-memory table.

A table is a handful of arrays behind a tiny query, indexed by architecture row:

* ``arch_ids`` (N,) str — each architecture's identifier in its space (``SearchSpace.table_key``);
* ``epochs`` (F,) int — the epochs at which values were recorded (the fidelities), increasing;
  a table of finals only has ``epochs == [max_epochs]`` and says so, it does not pretend to hold curves;
* ``seconds`` (N, S, F) float — what reaching fidelity f from fidelity f-1 cost (train + eval);
* ``curves[name]`` (N, S, F) float — one array per recorded metric; ``"valid"`` is the search metric
  named by ``metadata.metric``; optional ones are ``"valid_loss"``, ``"test"``, ``"test_loss"``,
  ``"train"``, ``"train_loss"``;
* ``failed`` (N, S) bool — runs that genuinely failed (diverged, crashed); they are kept, not dropped;
* ``arch_features`` (N, D) float, optional — architecture descriptors for spaces that only exist as a
  table (named by ``metadata.extra["feature_names"]``).

S is the number of repeats (seeds). Repeats are packed from index 0: an architecture with fewer
repeats has NaN in its trailing slots. Every value that was not recorded is NaN, never invented.

On disk a table is either a directory ``NAME/`` holding ``meta.json`` plus one ``.npy`` file per array
(memory-mapped on load, so opening a full NAS-Bench-201 table is O(1)), or a single ``.npz`` file with
the same arrays and the metadata JSON under the key ``meta.json`` (compact, for shipping).
See ``docs/tabular-format.md``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
from benchmarks.files import SHARED_DIRECTORY_MODE, atomic_output

FORMAT_NAME = "pmfnas-tabular"
FORMAT_VERSION = 1
CURVE_NAMES = ("valid", "valid_loss", "test", "test_loss", "train", "train_loss")


class BenchmarkFormatError(ValueError):
    """A benchmark file or array set that does not follow the tabular format; names the problem."""


#: The files a table directory holds; a directory with anything else is not one, so it is never replaced.
_TABLE_FILES = frozenset({"meta.json", "arch_ids.npy", "epochs.npy", "seconds.npy", "failed.npy", "arch_features.npy",
                          *(f"curve.{name}.npy" for name in CURVE_NAMES)})


def check_table_destination(path: str | os.PathLike) -> Path:
    """``path`` as a table path that :meth:`TabularBenchmark.save` may create or replace.

    A ``.npz`` path is one file, replaced atomically. Any other path is a directory that saving replaces
    whole, so it must be new, empty, or a table directory itself (its ``meta.json`` names the format and
    it holds nothing but the table's files). ValueError naming the path otherwise, and for the current
    directory or a directory above it.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return path
    here = Path.cwd().resolve()
    if path.exists() and (path.resolve() == here or path.resolve() in here.parents):
        raise ValueError(f"refusing to replace {str(path)!r}: it is the current directory or one above it; "
                         "give a new directory name for the table")
    if path.name in ("", ".."):
        raise ValueError(f"table directory {str(path)!r} must end in a directory name")
    if path.is_symlink():
        raise ValueError(f"table directory {str(path)!r} is a symbolic link; give the directory itself")
    if not path.exists():
        return path
    if not path.is_dir():
        raise ValueError(f"refusing to replace {str(path)!r}: it is a file, and a table path without .npz is a directory")
    names = sorted(entry.name for entry in path.iterdir())
    if not names:
        return path
    foreign = [name for name in names if name not in _TABLE_FILES or not (path / name).is_file()]
    if not foreign:
        try:
            document = json.loads((path / "meta.json").read_text())
            ours = isinstance(document, dict) and document.get("format") == FORMAT_NAME
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            ours = False
        if ours:
            return path
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    why = f"it holds {shown}" if foreign else "its meta.json is not a pmfnas-tabular one"
    raise ValueError(f"refusing to replace directory {str(path)!r}: it is not a pmfnas table directory ({why}); "
                     "give a new path, or remove it yourself")


def check_searchable(table: "TabularBenchmark") -> None:
    """BenchmarkFormatError unless some architecture has a finite ``valid`` value to search for.

    A table of runs that all failed is a valid recording (``pmfnas record`` of a diverging network), but
    nothing can be searched or evaluated on it; the harness refuses it before writing anything.
    """
    if not np.any(np.isfinite(table.curves["valid"])):
        raise BenchmarkFormatError(f"{table.metadata.name}: curve 'valid' holds no finite value for any "
                                   "architecture (every run failed or none was recorded): there is nothing to search")


@dataclass(frozen=True)
class BenchmarkMetadata:
    """What a table is: where it came from, what it measures and in which direction."""

    name: str
    space: str
    dataset: str
    metric: str
    higher_is_better: bool
    max_epochs: int
    provenance: str
    licence: str
    canonical_keys: bool = False
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping) -> "BenchmarkMetadata":
        if not isinstance(raw, Mapping):
            raise BenchmarkFormatError(f"'metadata' must be a JSON object, got {_shown(raw)}")
        known = {f for f in cls.__dataclass_fields__}
        missing = [f for f in ("name", "space", "dataset", "metric", "higher_is_better", "max_epochs",
                               "provenance", "licence") if f not in raw]
        if missing:
            raise BenchmarkFormatError(f"benchmark metadata lacks required field(s) {missing}")
        return cls(**{k: v for k, v in raw.items() if k in known})

    def check(self) -> None:
        """BenchmarkFormatError naming the first field whose type is wrong.

        JSON gives any type, and a wrong one fails far from the file (a string ``higher_is_better`` is
        truthy and silently flips every regret), so each field's type is checked where the table is made.
        """
        for name in ("name", "space", "dataset", "metric", "provenance", "licence", "notes"):
            if not isinstance(getattr(self, name), str):
                raise BenchmarkFormatError(f"metadata field {name!r} must be a string, got {_shown(getattr(self, name))}")
        for name in ("higher_is_better", "canonical_keys"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise BenchmarkFormatError(f"metadata field {name!r} must be true or false, "
                                           f"got {_shown(getattr(self, name))}")
        if isinstance(self.max_epochs, (bool, np.bool_)) or not isinstance(self.max_epochs, (int, np.integer)):
            raise BenchmarkFormatError(f"metadata field 'max_epochs' must be an integer, got {_shown(self.max_epochs)}")
        if not isinstance(self.extra, dict):
            raise BenchmarkFormatError(f"metadata field 'extra' must be a JSON object, got {_shown(self.extra)}")


def _shown(value: object, limit: int = 60) -> str:
    """``repr`` of a value read from a file, cut short: a message must stay one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class TabularBenchmark:
    """Recorded learning curves of a set of architectures; immutable once built."""

    def __init__(self, arch_ids: np.ndarray, epochs: np.ndarray, seconds: np.ndarray,
                 curves: Mapping[str, np.ndarray], failed: np.ndarray, metadata: BenchmarkMetadata,
                 arch_features: np.ndarray | None = None):
        self.arch_ids = np.asarray(arch_ids)
        self.arch_features = arch_features
        self.epochs = np.asarray(epochs)
        self.seconds = seconds
        self.curves = dict(curves)
        self.failed = np.asarray(failed, dtype=bool)
        self.metadata = metadata
        self._validate()
        self._row_of = {str(a): i for i, a in enumerate(self.arch_ids.tolist())}
        valid = self.curves["valid"]
        # A repeat counts as present when it recorded anything at all, failed runs included.
        present = ~np.all(np.isnan(valid), axis=2) | self.failed
        self.n_repeats = present.sum(axis=1).astype(np.int64)

    @classmethod
    def from_arrays(cls, arch_ids, epochs, valid, seconds, *, metric: str, higher_is_better: bool,
                    name: str = "custom", space: str = "custom", dataset: str = "unknown",
                    provenance: str = "user-supplied arrays", licence: str = "unknown",
                    failed=None, canonical_keys: bool = False, notes: str = "",
                    arch_features=None, extra: dict | None = None, **other_curves) -> "TabularBenchmark":
        """Wrap your own curves.

        ``valid`` and ``seconds`` are (N, F) for one repeat or (N, S, F) for S repeats; the same holds
        for any further curve given by keyword (``test=``, ``valid_loss=``, ...). ``epochs`` lists the
        F recorded epochs; its last entry is the maximum fidelity.
        """
        def as3d(name, array):
            array = np.asarray(array, dtype=np.float32)
            if array.ndim == 2:
                array = array[:, None, :]
            if array.ndim != 3:
                raise BenchmarkFormatError(f"{name} must be (N, F) or (N, S, F), got shape {array.shape}")
            return array

        unknown = sorted(set(other_curves) - set(CURVE_NAMES))
        if unknown:
            raise BenchmarkFormatError(f"unknown curve name(s) {unknown}; allowed: {list(CURVE_NAMES)}")
        curves = {"valid": as3d("valid", valid)}
        curves.update({k: as3d(k, v) for k, v in other_curves.items() if v is not None})
        seconds = as3d("seconds", seconds)
        epochs = np.asarray(epochs)
        if epochs.dtype.kind == "f" and np.all(epochs == np.round(epochs)):
            epochs = epochs.astype(np.int64)
        n, s = curves["valid"].shape[:2]
        failed = np.zeros((n, s), dtype=bool) if failed is None else np.asarray(failed, dtype=bool).reshape(n, -1)
        meta = BenchmarkMetadata(name=name, space=space, dataset=dataset, metric=metric,
                                 higher_is_better=bool(higher_is_better), max_epochs=int(epochs[-1]) if epochs.size else 0,
                                 provenance=provenance, licence=licence, canonical_keys=canonical_keys, notes=notes,
                                 extra=dict(extra or {}))
        features = None if arch_features is None else np.asarray(arch_features, dtype=np.float32)
        return cls(np.asarray(arch_ids, dtype=str), epochs, seconds, curves, failed, meta, features)

    def _validate(self) -> None:
        self.metadata.check()
        if "valid" not in self.curves:
            raise BenchmarkFormatError("a table needs a 'valid' curve (the search metric)")
        unknown = sorted(set(self.curves) - set(CURVE_NAMES))
        if unknown:
            raise BenchmarkFormatError(f"unknown curve name(s) {unknown}; allowed: {list(CURVE_NAMES)}")
        n = len(self.arch_ids)
        if self.arch_ids.ndim != 1 or n == 0:
            raise BenchmarkFormatError(f"arch_ids must be a non-empty 1-d array, got shape {self.arch_ids.shape}")
        if len(set(self.arch_ids.tolist())) != n:
            raise BenchmarkFormatError("arch_ids must be unique")
        if self.epochs.dtype.kind not in "iu":
            raise BenchmarkFormatError(f"epochs must be whole numbers, got {_shown(self.epochs.tolist())} "
                                       f"(dtype {self.epochs.dtype})")
        if self.epochs.ndim != 1 or self.epochs.size == 0 or np.any(np.diff(self.epochs) <= 0) or self.epochs[0] < 1:
            raise BenchmarkFormatError(f"epochs must be a strictly increasing list of positive ints, got {self.epochs.tolist()}")
        if int(self.epochs[-1]) != self.metadata.max_epochs:
            raise BenchmarkFormatError(
                f"metadata max_epochs={self.metadata.max_epochs} but the last recorded epoch is {int(self.epochs[-1])}")
        shape = self.curves["valid"].shape
        if len(shape) != 3 or shape[0] != n or shape[2] != self.epochs.size:
            raise BenchmarkFormatError(f"curve 'valid' has shape {shape}, expected ({n}, S, {self.epochs.size})")
        for name, array in list(self.curves.items()) + [("seconds", self.seconds)]:
            if array.shape != shape:
                raise BenchmarkFormatError(f"array '{name}' has shape {array.shape}, expected {shape}")
        if self.failed.shape != shape[:2]:
            raise BenchmarkFormatError(f"array 'failed' has shape {self.failed.shape}, expected {shape[:2]}")
        if self.arch_features is not None and (self.arch_features.ndim != 2 or self.arch_features.shape[0] != n):
            raise BenchmarkFormatError(f"arch_features has shape {self.arch_features.shape}, expected ({n}, D)")
        for name, array in list(self.curves.items()) + [("seconds", self.seconds)]:
            if array.dtype.kind not in "fiu":
                raise BenchmarkFormatError(f"array '{name}' must hold numbers, got dtype {array.dtype}")
        # NaN is how a table says "not recorded" (failed runs, missing seeds, epochs never trained), so it
        # is allowed anywhere; what is refused is what no recording can produce and what leaves nothing to
        # search or to budget, which would otherwise fail much later as budget=nan or an empty reduction.
        if np.any(np.isinf(self.seconds)):
            raise BenchmarkFormatError("seconds must be finite or NaN (not recorded), found inf")
        if np.any(self.seconds < 0):
            raise BenchmarkFormatError("seconds must not be negative")
        if not np.any(self.seconds > 0):
            raise BenchmarkFormatError("seconds record no positive cost for any architecture (all NaN or zero): "
                                       "a table needs what its epochs cost")

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.arch_ids)

    @property
    def max_epochs(self) -> int:
        return self.metadata.max_epochs

    @property
    def higher_is_better(self) -> bool:
        return self.metadata.higher_is_better

    @property
    def n_repeat_slots(self) -> int:
        return self.curves["valid"].shape[1]

    def row(self, arch_id: str) -> int:
        """Row of an identifier; KeyError naming it when the table does not hold it."""
        try:
            return self._row_of[arch_id]
        except KeyError:
            raise KeyError(f"architecture {arch_id!r} is not in benchmark {self.metadata.name!r}") from None

    def __contains__(self, arch_id: object) -> bool:
        return arch_id in self._row_of

    def fidelity_index(self, epoch: int) -> int:
        """Index of a recorded epoch; ValueError naming the epoch and the recorded ones otherwise."""
        position = int(np.searchsorted(self.epochs, epoch))
        if position >= self.epochs.size or int(self.epochs[position]) != epoch:
            shown = self.epochs.tolist() if self.epochs.size <= 12 else f"{self.epochs[:3].tolist()} ... {self.epochs[-1]}"
            raise ValueError(f"epoch {epoch} is not a recorded fidelity of {self.metadata.name!r}; recorded: {shown}")
        return position

    def final(self, curve: str = "valid") -> np.ndarray:
        """(N,) mean over repeats of a curve at the last fidelity; NaN where nothing was recorded."""
        values = np.asarray(self.curves[curve][:, :, -1], dtype=np.float64)
        with np.errstate(all="ignore"):
            counts = np.sum(~np.isnan(values), axis=1)
            sums = np.nansum(values, axis=1)
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def content_hash(self) -> str:
        """SHA-256 of everything the table holds (metadata and arrays): two tables answer alike iff it matches."""
        digest = hashlib.sha256(json.dumps(self._meta_document(), sort_keys=True).encode())
        for key, array in sorted(self._arrays().items()):
            array = np.ascontiguousarray(array)
            digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
            digest.update(array.tobytes() if array.dtype.kind != "U" else "\n".join(array.tolist()).encode())
        return digest.hexdigest()

    def full_evaluation_seconds(self) -> np.ndarray:
        """(N,) mean over repeats of what one evaluation to max epochs costs."""
        total = np.nansum(np.asarray(self.seconds, dtype=np.float64), axis=2)
        present = ~np.all(np.isnan(np.asarray(self.seconds)), axis=2)
        with np.errstate(all="ignore"):
            return np.where(present.any(axis=1), np.nansum(np.where(present, total, np.nan), axis=1)
                            / np.maximum(present.sum(axis=1), 1), np.nan)

    def best_final(self, curve: str = "valid") -> tuple[str, float]:
        """The architecture with the best mean final value of ``curve`` and that value."""
        finals = self.final(curve)
        if np.all(np.isnan(finals)):
            raise ValueError(f"benchmark {self.metadata.name!r} has no final values of {curve!r}")
        index = int(np.nanargmax(finals) if self.higher_is_better else np.nanargmin(finals))
        return str(self.arch_ids[index]), float(finals[index])

    # ------------------------------------------------------------------- disk
    def save(self, path: str | os.PathLike, compressed: bool | None = None) -> Path:
        """Write the table atomically: a ``.npz`` path gives one file, any other path a directory.

        An existing directory is replaced only if it is a table directory (or empty): see
        :func:`check_table_destination`, whose ValueError is raised before anything is written.
        """
        path = check_table_destination(path)
        arrays = self._arrays()
        meta = json.dumps(self._meta_document(), indent=2, sort_keys=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npz":
            writer = np.savez_compressed if compressed in (None, True) else np.savez
            with atomic_output(path) as tmp, open(tmp, "wb") as handle:
                writer(handle, **{"meta.json": np.frombuffer(meta.encode(), dtype=np.uint8)}, **arrays)
            return path
        tmpdir = Path(tempfile.mkdtemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp"))
        aside = None
        try:
            (tmpdir / "meta.json").write_text(meta)
            for key, array in arrays.items():
                np.save(tmpdir / f"{key}.npy", array, allow_pickle=False)
            os.chmod(tmpdir, SHARED_DIRECTORY_MODE)  # mkdtemp makes it private; a table is shared like its files
            if path.exists():
                # Moved aside rather than deleted until the new table is in place, so a failure can put it back.
                aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=path.name + ".", suffix=".old"))
                os.replace(path, aside / "table")
            os.replace(tmpdir, path)
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            if aside is not None:
                if not path.exists() and (aside / "table").exists():
                    os.replace(aside / "table", path)
                with contextlib.suppress(OSError):
                    aside.rmdir()  # only ever removes it empty: an old table not put back stays there
            raise
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TabularBenchmark":
        """Open a table written by :meth:`save`; one clear BenchmarkFormatError if it is not one."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"benchmark file {str(path)!r} does not exist")
        try:
            if path.is_dir():
                meta_file = path / "meta.json"
                if not meta_file.is_file():
                    raise BenchmarkFormatError(f"{path} is not a pmfnas-tabular directory: meta.json is missing")
                document = json.loads(meta_file.read_text())
                arrays = {}
                for npy in path.glob("*.npy"):
                    arrays[npy.stem] = np.load(npy, mmap_mode="r", allow_pickle=False)
            else:
                # np.load guesses the format from the bytes and reports anything it cannot place as a refused
                # pickle ("allow_pickle"), which is no advice for a file that is simply not a table.
                with open(path, "rb") as handle:
                    if not zipfile.is_zipfile(handle):
                        raise BenchmarkFormatError(
                            f"cannot read benchmark {str(path)!r}: it is not a pmfnas table (not a zip archive, or a "
                            "truncated one); a table is a .npz archive or a directory holding meta.json")
                with np.load(path, allow_pickle=False) as archive:
                    if "meta.json" not in archive.files:
                        raise BenchmarkFormatError(f"{path} is not a pmfnas-tabular file: meta.json is missing")
                    document = json.loads(archive["meta.json"].tobytes().decode())
                    arrays = {k: archive[k] for k in archive.files if k != "meta.json"}
        except (OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, EOFError) as error:
            raise BenchmarkFormatError(f"cannot read benchmark {str(path)!r}: {error}") from None
        except ValueError as error:
            if isinstance(error, BenchmarkFormatError):
                raise
            raise BenchmarkFormatError(f"cannot read benchmark {str(path)!r}: {error}") from None
        return cls._from_document(document, arrays, str(path))

    @classmethod
    def _from_document(cls, document: Mapping, arrays: Mapping[str, np.ndarray], where: str) -> "TabularBenchmark":
        if not isinstance(document, Mapping):
            raise BenchmarkFormatError(f"{where}: meta.json must be a JSON object, got {_shown(document)}")
        if document.get("format") != FORMAT_NAME:
            raise BenchmarkFormatError(f"{where}: format is {document.get('format')!r}, expected {FORMAT_NAME!r}")
        version = document.get("version")
        if version != FORMAT_VERSION:
            raise BenchmarkFormatError(f"{where}: format version {version!r} is not supported (this reader: {FORMAT_VERSION})")
        missing = [k for k in ("arch_ids", "epochs", "seconds", "failed", "curve.valid") if k not in arrays]
        if missing:
            raise BenchmarkFormatError(f"{where}: missing array(s) {missing}")
        if "metadata" not in document:
            raise BenchmarkFormatError(f"{where}: meta.json lacks its 'metadata' object")
        curves = {k[len("curve."):]: v for k, v in arrays.items() if k.startswith("curve.")}
        try:
            return cls(arrays["arch_ids"], arrays["epochs"], arrays["seconds"], curves, arrays["failed"],
                       BenchmarkMetadata.from_dict(document["metadata"]), arrays.get("arch_features"))
        except BenchmarkFormatError as error:
            raise BenchmarkFormatError(f"{where}: {error}") from None

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"arch_ids": np.asarray(self.arch_ids, dtype=str), "epochs": np.asarray(self.epochs, dtype=np.int64),
                  "seconds": np.asarray(self.seconds, dtype=np.float32), "failed": np.asarray(self.failed, dtype=bool)}
        arrays.update({f"curve.{k}": np.asarray(v, dtype=np.float32) for k, v in self.curves.items()})
        if self.arch_features is not None:
            arrays["arch_features"] = np.asarray(self.arch_features, dtype=np.float32)
        return arrays

    def _meta_document(self) -> dict:
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "metadata": asdict(self.metadata)}

    def describe(self) -> dict:
        """The facts ``pmfnas benchmark info`` prints."""
        best_arch, best_value = self.best_final("valid")
        full_cost = self.full_evaluation_seconds()
        return {
            "name": self.metadata.name,
            "space": self.metadata.space,
            "dataset": self.metadata.dataset,
            "architectures": len(self),
            "repeats": int(self.n_repeat_slots),
            "fidelities": int(self.epochs.size),
            "epochs": f"{int(self.epochs[0])}..{int(self.epochs[-1])}" if self.epochs.size > 1 else str(int(self.epochs[0])),
            "metric": self.metadata.metric,
            "direction": "higher is better" if self.higher_is_better else "lower is better",
            "best_final_valid": best_value,
            "best_architecture": best_arch,
            "failed_runs": int(self.failed.sum()),
            "full_evaluation_seconds_median": float(np.nanmedian(full_cost)),
            "full_evaluation_seconds_mean": float(np.nanmean(full_cost)),
            "curves": sorted(self.curves),
            "provenance": self.metadata.provenance,
            "licence": self.metadata.licence,
        }
