"""Image datasets as tensors, a fixed train/valid split, and augmentation done with tensor ops.

Datasets (``load_dataset(name, root=None, ...)``):

``fashion-mnist``
    The four IDX files of Zalando's Fashion-MNIST (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
    optionally ``.gz``), read with numpy. Default directory: ``/usr/share/datasets/fashion-mnist/``
    (Debian/Ubuntu package ``dataset-fashion-mnist``). 1x28x28, 10 classes.
``cifar10`` / ``cifar100``
    The official python pickles: ``ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch}`` or
    ``ROOT/cifar-100-python/{train,test}`` (fine labels), read with pickle. When they are missing and
    ``download=True``, torchvision (imported lazily, only then) downloads them into ``ROOT``; offline
    or without torchvision the error names the directory and the files expected there. 3x32x32.
``imagenet16-120``
    NAS-Bench-201's down-sampled ImageNet: ``ROOT`` holds the pickles of Chrabaszcz et al.'s 16x16
    ImageNet, ``train_data_batch_1`` .. ``train_data_batch_10`` and ``val_data`` (each a dict with
    ``data``: (n, 768) uint8 rows laid out as 3x16x16, and ``labels``: 1-based ints in 1..1000), as
    NAS-Bench-201 expects in its ``ImageNet16`` directory. Only labels 1..120 are kept (shifted to
    0..119), which gives 151,700 training and 6,000 validation images. 3x16x16, 120 classes.

Split (the same rule for every dataset, documented so that results are reproducible): the official
training set is permuted with ``numpy.random.default_rng(split_seed)``; the first half
(``n_train // 2``) is ``train``, the rest ``valid`` — as NAS-Bench-201's ``cifar10-valid`` splits
CIFAR-10's 50,000 training images into 25,000 + 25,000. ``test`` is the official test set.
Sizes: Fashion-MNIST 30,000 / 30,000 / 10,000; CIFAR-10 and CIFAR-100 25,000 / 25,000 / 10,000;
ImageNet16-120 75,850 / 75,850 / 6,000. ``train_size`` / ``valid_size`` / ``test_size`` keep the first
n of each part (a seeded, hence reproducible, subset). ``image_size`` (default: the dataset's own)
down-samples every image once, at load, to ``image_size x image_size`` by area averaging
(``torch.nn.functional.interpolate(mode="area")``, i.e. adaptive average pooling), rounded back to uint8;
the returned spec carries the new size, augmentation and normalisation are unchanged (cheap small
benchmarks: ``pmfnas benchmark build --image-size 16``).

Images stay uint8 tensors (N, C, H, W) on the training device; :func:`make_batch` augments, converts
and normalises a batch there. Augmentation (training batches only, seeded by a ``torch.Generator``
on the CPU so that a run is reproducible on any device): random crop with zero padding of ``pad``
pixels then a horizontal flip with probability 1/2 — CIFAR pad 4 (the NAS-Bench-201 recipe),
ImageNet16-120 pad 2 (likewise), Fashion-MNIST pad 2 (our choice; flips keep every Fashion-MNIST
label valid). Normalisation uses the per-channel means/stds of the NAS-Bench-201 code for CIFAR and
ImageNet16 and the training-set mean/std (0.2860, 0.3530) for Fashion-MNIST.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["DATASETS", "DEFAULT_ROOTS", "DatasetSpec", "DataSplits", "read_idx", "load_arrays", "load_dataset",
           "synthetic_splits", "split_indices", "resized_spec", "resize_images", "draw_augmentation", "augment",
           "make_batch"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    in_channels: int
    size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int
    flip: bool


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec("fashion-mnist", 1, 28, 10, (0.2860,), (0.3530,), 2, True),
    "cifar10": DatasetSpec("cifar10", 3, 32, 10, tuple(x / 255 for x in (125.3, 123.0, 113.9)),
                           tuple(x / 255 for x in (63.0, 62.1, 66.7)), 4, True),
    "cifar100": DatasetSpec("cifar100", 3, 32, 100, tuple(x / 255 for x in (129.3, 124.1, 112.4)),
                            tuple(x / 255 for x in (68.2, 65.4, 70.4)), 4, True),
    "imagenet16-120": DatasetSpec("imagenet16-120", 3, 16, 120, tuple(x / 255 for x in (122.68, 116.66, 104.01)),
                                  tuple(x / 255 for x in (63.22, 61.26, 65.09)), 2, True),
}

_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
            "cifar-10": "cifar10", "cifar-100": "cifar100", "imagenet16": "imagenet16-120",
            "imagenet16_120": "imagenet16-120"}

DEFAULT_ROOTS: dict[str, str] = {
    "fashion-mnist": "/usr/share/datasets/fashion-mnist",
    "cifar10": "~/.cache/pmfnas/data",
    "cifar100": "~/.cache/pmfnas/data",
    "imagenet16-120": "~/.cache/pmfnas/data/ImageNet16",
}


def canonical_name(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return key


# --------------------------------------------------------------------------------------------- reading
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array of its declared type and shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: IDX header declares shape {shape} but holds {data.size} elements")
    return data.reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"Fashion-MNIST file {stem}[.gz] not found in {root} (install the Debian package "
                            "'dataset-fashion-mnist' or pass the directory holding the four IDX files)")


def _fashion_mnist(root: Path):
    if not root.is_dir():
        raise FileNotFoundError(f"Fashion-MNIST directory {root} does not exist (apt-get install dataset-fashion-mnist, "
                                "or pass the directory holding train-images-idx3-ubyte[.gz] and the other IDX files)")
    parts = []
    for prefix in ("train", "t10k"):
        images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
        parts += [images[:, None, :, :], labels.astype(np.int64)]
    return tuple(parts)


_CIFAR_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}


def _cifar(name: str, root: Path, download: bool):
    folder, train_files, test_files, label_key = _CIFAR_LAYOUT[name]
    base = root / folder
    missing = [f for f in train_files + test_files if not (base / f).is_file()]
    if missing and download:
        try:
            from torchvision import datasets  # lazy: only needed to download
        except ImportError as error:
            raise FileNotFoundError(
                f"{name} is not in {base} (missing {missing}) and torchvision, needed to download it, cannot be "
                f"imported ({error}); put the official python pickles ({folder}/...) under {root}") from None
        try:
            cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
            cls(str(root), train=True, download=True)
            cls(str(root), train=False, download=True)
        except Exception as error:  # offline, checksum error, ...
            raise FileNotFoundError(f"{name} is not in {base} and downloading it into {root} failed: {error}") from None
        missing = [f for f in train_files + test_files if not (base / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{name} is not in {base}: missing {missing}; put the official python pickles there "
                                f"or call with download=True (needs torchvision and network)")

    def read(files):
        xs, ys = [], []
        for f in files:
            with open(base / f, "rb") as handle:
                entry = pickle.load(handle, encoding="bytes")
            xs.append(np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry[label_key], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    return (*read(train_files), *read(test_files))


def _imagenet16(root: Path, num_classes: int = 120):
    train_files = [f"train_data_batch_{i}" for i in range(1, 11)]
    missing = [f for f in train_files + ["val_data"] if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"ImageNet16-120 is not in {root}: missing {missing}. Expected NAS-Bench-201's ImageNet16 "
                                "directory: the 16x16 down-sampled ImageNet pickles train_data_batch_1..10 and val_data")

    def read(files):
        xs, ys = [], []
        for f in files:
            with open(root / f, "rb") as handle:
                entry = pickle.load(handle, encoding="latin1")
            labels = np.asarray(entry["labels"], dtype=np.int64)
            keep = (labels >= 1) & (labels <= num_classes)
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 16, 16)[keep])
            ys.append(labels[keep] - 1)
        return np.concatenate(xs), np.concatenate(ys)

    return (*read(train_files), *read(["val_data"]))


def load_arrays(name: str, root: str | os.PathLike | None = None, download: bool = False):
    """``(train_x, train_y, test_x, test_y)`` of the official sets as read-only numpy arrays (uint8 NCHW, int64).

    Cached per (dataset, directory) for the life of the process.
    """
    name = canonical_name(name)
    root = os.path.abspath(os.path.expanduser(str(root if root is not None else DEFAULT_ROOTS[name])))
    return _load_arrays_cached(name, root, bool(download))


@functools.lru_cache(maxsize=4)
def _load_arrays_cached(name: str, root_text: str, download: bool):
    root = Path(root_text)
    if name == "fashion-mnist":
        arrays = _fashion_mnist(root)
    elif name in _CIFAR_LAYOUT:
        arrays = _cifar(name, root, download)
    else:
        arrays = _imagenet16(root)
    for array in arrays:
        array.setflags(write=False)
    return arrays


def split_indices(n_train: int, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented split: a permutation by ``default_rng(split_seed)``, first half train, rest valid."""
    perm = np.random.default_rng(split_seed).permutation(n_train)
    half = n_train // 2
    return perm[:half], perm[half:]


@dataclass
class DataSplits:
    """train / valid / test images (uint8 NCHW) and labels (int64) on one device, plus their spec."""

    spec: DatasetSpec
    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    split_seed: int
    root: str

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "valid": len(self.valid_y), "test": len(self.test_y)}

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalisation mean and std as (1, C, 1, 1) tensors on the data's device (cached)."""
        cached = self.__dict__.get("_stats")
        if cached is None or cached[0].device != self.train_x.device:
            cached = _stats(self.spec, self.train_x.device)
            self.__dict__["_stats"] = cached
        return cached

    def to(self, device: str | torch.device) -> "DataSplits":
        moved = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")}
        return DataSplits(self.spec, split_seed=self.split_seed, root=self.root, **moved)


def _take(n: int | None, what: str, available: int) -> int:
    if n is None:
        return available
    if isinstance(n, bool) or int(n) < 1:
        raise ValueError(f"{what}={n!r} must be a positive int or None")
    return min(int(n), available)


def load_dataset(name: str, root: str | os.PathLike | None = None, *, split_seed: int = 0,
                 train_size: int | None = None, valid_size: int | None = None, test_size: int | None = None,
                 device: str | torch.device = "cpu", download: bool = False,
                 image_size: int | None = None) -> DataSplits:
    """The dataset split by the documented rule (see the module docstring), as tensors on ``device``.

    ``image_size``: down-sample every image to that many pixels a side (see the module docstring).
    """
    name = canonical_name(name)
    spec = resized_spec(DATASETS[name], image_size)
    train_x, train_y, test_x, test_y = load_arrays(name, root, download)
    tr, va = split_indices(len(train_y), split_seed)
    tr = tr[: _take(train_size, "train_size", len(tr))]
    va = va[: _take(valid_size, "valid_size", len(va))]
    nt = _take(test_size, "test_size", len(test_y))
    used_root = str(root if root is not None else DEFAULT_ROOTS[name])

    def tensor(a):
        images = torch.from_numpy(np.array(a, copy=True))
        if images.dim() == 4 and spec.size != images.shape[-1]:
            images = resize_images(images, spec.size)
        return images.to(device)

    return DataSplits(spec, tensor(train_x[tr]), tensor(train_y[tr]), tensor(train_x[va]), tensor(train_y[va]),
                      tensor(test_x[:nt]), tensor(test_y[:nt]), split_seed, used_root)


def resized_spec(spec: DatasetSpec, image_size: int | None) -> DatasetSpec:
    """``spec`` at ``image_size`` pixels a side (None: its own); ValueError unless 4 <= size <= its own."""
    if image_size is None or image_size == spec.size:
        return spec
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 4 <= image_size <= spec.size:
        raise ValueError(f"image_size={image_size!r} must be an int from 4 to {spec.name}'s own size {spec.size} "
                         "(images are only down-sampled)")
    return dataclasses.replace(spec, size=image_size)


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 NCHW images down-sampled to ``size x size`` by area averaging, rounded back to uint8."""
    small = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="area")
    return small.round_().clamp_(0, 255).to(torch.uint8)


# ------------------------------------------------------------------------------------------ batches
def draw_augmentation(n: int, spec: DatasetSpec, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop offsets (n, 2) in [0, 2*pad] and flip flags (n,) for ``n`` images, drawn on the CPU from ``generator``.

    Drawn once per epoch and moved to the device in one copy, so a training step never waits for the host.
    """
    offsets = torch.randint(0, 2 * spec.pad + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    if not spec.flip:
        flips.zero_()
    return offsets, flips


def augment(images: torch.Tensor, pad: int, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Random crop (zero padding ``pad``, top-left corner ``offsets``) then horizontal flip where ``flips``.

    ``images`` is an NCHW batch; everything runs on its device with tensor ops.
    """
    b, c, h, w = images.shape
    out = images
    if pad > 0:
        device = images.device
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        rows = (offsets[:, 0:1] + torch.arange(h, device=device))[:, None, :, None]  # (B,1,H,1)
        cols = (offsets[:, 1:2] + torch.arange(w, device=device))[:, None, None, :]  # (B,1,1,W)
        batch = torch.arange(b, device=device)[:, None, None, None]
        chans = torch.arange(c, device=device)[None, :, None, None]
        out = padded[batch, chans, rows, cols]
    return torch.where(flips[:, None, None, None], out.flip(3), out)


def make_batch(images: torch.Tensor, spec: DatasetSpec, *, offsets: torch.Tensor | None = None,
               flips: torch.Tensor | None = None, stats: tuple[torch.Tensor, torch.Tensor] | None = None,
               channels_last: bool = False) -> torch.Tensor:
    """uint8 NCHW images -> normalised float32 batch, augmented when ``offsets``/``flips`` are given.

    ``stats`` are the (1, C, 1, 1) mean and std on the images' device (:meth:`DataSplits.stats`).
    """
    if offsets is not None:
        images = augment(images, spec.pad, offsets, flips if flips is not None
                         else torch.zeros(len(images), dtype=torch.bool, device=images.device))
    if stats is None:
        stats = _stats(spec, images.device)
    x = (images.float().div_(255.0) - stats[0]) / stats[1]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _stats(spec: DatasetSpec, device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(spec.mean, device=device).view(1, -1, 1, 1),
            torch.tensor(spec.std, device=device).view(1, -1, 1, 1))


def synthetic_splits(n_train: int, n_valid: int, n_test: int, *, like: str = "cifar10", seed: int = 0,
                     device: str | torch.device = "cpu", image_size: int | None = None) -> DataSplits:
    """Random uint8 images and labels shaped like ``like`` (for throughput checks and smoke tests only),
    ``image_size`` pixels a side when given (as :func:`load_dataset` would down-sample them)."""
    spec = resized_spec(DATASETS[canonical_name(like)], image_size)
    generator = torch.Generator().manual_seed(seed)

    def part(n):
        x = torch.randint(0, 256, (n, spec.in_channels, spec.size, spec.size), generator=generator, dtype=torch.uint8)
        y = torch.randint(0, spec.num_classes, (n,), generator=generator)
        return x.to(device), y.to(device)

    (trx, try_), (vax, vay), (tex, tey) = part(n_train), part(n_valid), part(n_test)
    return DataSplits(spec, trx, try_, vax, vay, tex, tey, split_seed=seed, root=f"synthetic:{spec.name}")
