"""Shared fixtures: small synthetic tables, and the raw benchmark files (for conversion tests only)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.spaces.nb201 import NB201Space
from benchmarks.tabular import TabularBenchmark

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
NBNLP_LOGS = SHARED_DATA / "nasbench-nlp-wt2" / "logs.zip"
NB201_SAMPLE_CSV = SHARED_DATA / "nb201-c10valid-sample" / "curves.csv"


def synthetic_table(n_archs: int = 40, n_epochs: int = 27, repeats: int = 1, seed: int = 0,
                    higher_is_better: bool = True) -> TabularBenchmark:
    """Saturating curves whose final values differ per architecture, with per-epoch costs that vary."""
    rng = np.random.default_rng(seed)
    final = rng.uniform(50, 95, size=(n_archs, 1, 1))
    rate = rng.uniform(0.05, 0.4, size=(n_archs, 1, 1))
    epochs = np.arange(1, n_epochs + 1)
    noise = rng.normal(0, 0.3, size=(n_archs, repeats, n_epochs))
    valid = final * (1 - np.exp(-rate * epochs)) + noise
    if not higher_is_better:
        valid = 100 - valid
    seconds = rng.uniform(5, 15, size=(n_archs, 1, 1)) * np.ones((1, repeats, n_epochs))
    features = np.column_stack([final[:, 0, 0] + rng.normal(0, 5, n_archs), rate[:, 0, 0]])
    return TabularBenchmark.from_arrays(
        [f"a{i:03d}" for i in range(n_archs)], epochs, valid, seconds, test=valid + 1.0,
        metric="accuracy", higher_is_better=higher_is_better, name="synthetic", arch_features=features,
        extra={"feature_names": ["final_proxy", "rate"]})


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny nets gain nothing from threads, and OpenMP threads stall badly on a busy 2-core machine."""
    torch = sys.modules.get("torch")  # only the training tests import it; tabular tests must not need it
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def table() -> TabularBenchmark:
    return synthetic_table()


def fashion_mnist_or_fail(**sizes):
    """A small Fashion-MNIST split for the training tests; a clear failure when the data is not installed."""
    from benchmarks.training.data import load_dataset

    try:
        return load_dataset("fashion-mnist", **sizes)
    except FileNotFoundError as error:
        pytest.fail(f"Fashion-MNIST is needed (apt-get install dataset-fashion-mnist): {error}")


def raw_file_or_skip(path: Path) -> Path:
    """A raw source file for a test that checks a conversion against it; the test skips, naming the file,
    where it is absent (a clone without ``shared/`` beside it). Every other test uses the shipped tables."""
    if not path.is_file():
        pytest.skip(f"raw source file {path} is absent (shared/ beside the checkout); only the conversion "
                    "check against it is skipped")
    return path


@pytest.fixture
def raw_nbnlp_logs() -> Path:
    """The raw NAS-Bench-NLP ``logs.zip``, for conversion tests only."""
    return raw_file_or_skip(NBNLP_LOGS)


@pytest.fixture
def raw_nb201_sample_csv() -> Path:
    """The raw NAS-Bench-201 sample ``curves.csv``, for conversion tests only."""
    return raw_file_or_skip(NB201_SAMPLE_CSV)


@pytest.fixture(scope="session")
def nb201_sized_table() -> TabularBenchmark:
    """A synthetic table the size of NAS-Bench-201 (15,625 cells × 200 epochs), for the speed benchmarks."""
    rng = np.random.default_rng(0)
    epochs = np.arange(1, 200 + 1)
    final = rng.uniform(10, 94, size=(15625, 1))
    rate = rng.uniform(0.01, 0.2, size=(15625, 1))
    valid = (final * (1 - np.exp(-rate * epochs))).astype(np.float32)
    seconds = np.repeat(rng.uniform(5, 20, size=(15625, 1)), 200, axis=1).astype(np.float32)
    return TabularBenchmark.from_arrays(NB201Space().all_architectures(), epochs, valid, seconds,
                                        metric="valid_accuracy", higher_is_better=True, space="nb201")
