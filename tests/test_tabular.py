import json

import numpy as np
import pytest

from benchmarks.tabular import BenchmarkFormatError, TabularBenchmark
from tests.conftest import synthetic_table


def test_round_trip_directory_and_npz(tmp_path):
    table = synthetic_table(repeats=2)
    for target in (tmp_path / "t", tmp_path / "t.npz"):
        table.save(target)
        loaded = TabularBenchmark.load(target)
        assert loaded.arch_ids.tolist() == table.arch_ids.tolist()
        assert loaded.epochs.tolist() == table.epochs.tolist()
        for name in ("valid", "test"):
            np.testing.assert_array_equal(loaded.curves[name], table.curves[name])
        np.testing.assert_array_equal(loaded.seconds, table.seconds)
        np.testing.assert_array_equal(loaded.arch_features, table.arch_features)
        assert loaded.metadata == table.metadata


def test_missing_repeats_stay_nan_and_are_counted():
    valid = np.full((3, 3, 4), np.nan)
    valid[0, :3] = 1.0
    valid[1, :2] = 2.0
    valid[2, :1] = 3.0
    table = TabularBenchmark.from_arrays(["x", "y", "z"], [1, 2, 3, 4], valid, np.ones_like(valid),
                                         metric="m", higher_is_better=True)
    assert table.n_repeats.tolist() == [3, 2, 1]
    assert np.isnan(table.curves["valid"][2, 1:]).all()
    np.testing.assert_allclose(table.final(), [1.0, 2.0, 3.0])
    assert table.best_final() == ("z", 3.0)


def test_fidelity_index_names_the_bad_epoch(table):
    assert table.fidelity_index(5) == 4
    with pytest.raises(ValueError, match="epoch 99 is not a recorded fidelity"):
        table.fidelity_index(99)


def test_unknown_architecture_is_named(table):
    with pytest.raises(KeyError, match="'nope' is not in benchmark 'synthetic'"):
        table.row("nope")


@pytest.mark.parametrize("mutation, message", [
    (lambda d: d.pop("curve.valid"), "missing array"),
    (lambda d: d.__setitem__("seconds", d["seconds"][:, :, :3]), "array 'seconds' has shape"),
    (lambda d: d.__setitem__("arch_ids", np.array(["a"] * len(d["arch_ids"]))), "arch_ids must be unique"),
    (lambda d: d.__setitem__("epochs", d["epochs"][::-1].copy()), "strictly increasing"),
])
def test_corrupt_arrays_give_one_clear_error(tmp_path, table, mutation, message):
    arrays = table._arrays()
    mutation(arrays)
    meta = json.dumps(table._meta_document()).encode()
    path = tmp_path / "bad.npz"
    np.savez(path, **{"meta.json": np.frombuffer(meta, dtype=np.uint8)}, **arrays)
    with pytest.raises(BenchmarkFormatError, match=message):
        TabularBenchmark.load(path)


def test_wrong_version_and_garbage_files(tmp_path, table):
    table.save(tmp_path / "t")
    document = json.loads((tmp_path / "t" / "meta.json").read_text())
    document["version"] = 99
    (tmp_path / "t" / "meta.json").write_text(json.dumps(document))
    with pytest.raises(BenchmarkFormatError, match="format version 99 is not supported"):
        TabularBenchmark.load(tmp_path / "t")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(BenchmarkFormatError, match="cannot read benchmark"):
        TabularBenchmark.load(garbage)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TabularBenchmark.load(tmp_path / "absent.npz")


def test_save_leaves_no_partial_output_on_failure(tmp_path, table, monkeypatch):
    target = tmp_path / "t.npz"

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", explode)
    with pytest.raises(OSError):
        table.save(target)
    assert list(tmp_path.iterdir()) == []


def test_from_arrays_rejects_bad_shapes():
    with pytest.raises(BenchmarkFormatError, match="must be \\(N, F\\) or \\(N, S, F\\)"):
        TabularBenchmark.from_arrays(["a"], [1], np.zeros(3), np.zeros(3), metric="m", higher_is_better=True)
    with pytest.raises(BenchmarkFormatError, match="unknown curve name"):
        TabularBenchmark.from_arrays(["a"], [1], np.zeros((1, 1)), np.zeros((1, 1)), metric="m",
                                     higher_is_better=True, bogus=np.zeros((1, 1)))
