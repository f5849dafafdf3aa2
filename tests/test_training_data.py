"""Datasets as tensors: IDX parsing, the documented split, loaders for the pickle formats, augmentation."""
import gzip
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.training.data import (DATASETS, augment, draw_augmentation, load_arrays, load_dataset,  # noqa: E402
                                      make_batch, read_idx, split_indices, synthetic_splits)

FMNIST = "/usr/share/datasets/fashion-mnist"


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_plain_and_gzipped(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(_idx_bytes(array))
    (tmp_path / "b-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)
    assert np.array_equal(read_idx(tmp_path / "b-idx3-ubyte.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_fashion_mnist_split_is_documented_and_seeded():
    try:
        data = load_dataset("fashion-mnist")
    except FileNotFoundError as error:
        pytest.fail(f"Fashion-MNIST is expected in {FMNIST} (apt-get install dataset-fashion-mnist): {error}")
    assert data.sizes == {"train": 30_000, "valid": 30_000, "test": 10_000}
    assert data.train_x.dtype == torch.uint8 and data.train_x.shape[1:] == (1, 28, 28)
    train, valid = split_indices(60_000, 0)
    assert len(set(train) | set(valid)) == 60_000 and not set(train) & set(valid)
    images, labels, test_x, _ = load_arrays("fashion-mnist")
    assert torch.equal(data.train_x[:5], torch.from_numpy(images[train[:5]].copy()))
    assert torch.equal(data.valid_y[:5], torch.from_numpy(labels[valid[:5]].copy()))
    assert torch.equal(data.test_x, torch.from_numpy(test_x.copy()))
    small = load_dataset("fashion-mnist", split_seed=0, train_size=100, valid_size=50, test_size=20)
    assert small.sizes == {"train": 100, "valid": 50, "test": 20}
    assert torch.equal(small.train_x, data.train_x[:100])
    other = load_dataset("fashion-mnist", split_seed=1, train_size=100)
    assert not torch.equal(other.train_x, small.train_x)


def test_missing_directories_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        load_arrays("fashion-mnist", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_arrays("cifar10", tmp_path)
    with pytest.raises(FileNotFoundError, match="train_data_batch_1"):
        load_arrays("imagenet16-120", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_arrays("mnist-ish", tmp_path)


def test_cifar_and_imagenet16_pickles(tmp_path):
    rng = np.random.default_rng(0)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 6)]:
        entry = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        with open(base / name, "wb") as handle:
            pickle.dump(entry, handle)
    data = load_dataset("cifar10", tmp_path)
    assert data.sizes == {"train": 10, "valid": 10, "test": 6}
    assert data.train_x.shape[1:] == (3, 32, 32)

    root = tmp_path / "ImageNet16"
    root.mkdir()
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        labels = [1, 120, 121, 1000, 5]  # 1-based; only 1..120 are kept
        entry = {"data": rng.integers(0, 256, (5, 768), dtype=np.uint8), "labels": labels}
        with open(root / name, "wb") as handle:
            pickle.dump(entry, handle)
    train_x, train_y, test_x, test_y = load_arrays("imagenet16-120", root)
    assert train_x.shape == (30, 3, 16, 16) and test_x.shape == (3, 3, 16, 16)
    assert sorted(set(train_y.tolist())) == [0, 4, 119]


def test_augmentation_is_crop_then_flip_and_seeded():
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    spec = DATASETS["cifar10"]
    offsets, flips = draw_augmentation(6, spec, torch.Generator().manual_seed(3))
    again = draw_augmentation(6, spec, torch.Generator().manual_seed(3))
    assert torch.equal(offsets, again[0]) and torch.equal(flips, again[1])
    out = augment(images, 4, offsets, flips)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for i in range(6):
        r, c = offsets[i].tolist()
        expected = padded[i, :, r: r + 8, c: c + 8]
        assert torch.equal(out[i], expected.flip(2) if flips[i] else expected)
    batch = make_batch(images, spec)
    assert batch.dtype == torch.float32
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    assert torch.allclose(batch, (images.float() / 255 - mean) / std)


def test_synthetic_splits_shapes():
    data = synthetic_splits(10, 5, 3, like="fashion-mnist")
    assert data.sizes == {"train": 10, "valid": 5, "test": 3}
    assert data.train_x.shape == (10, 1, 28, 28)
