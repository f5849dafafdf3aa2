import json
import os

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


def _write_npz(path, table, arrays=None, document=None):
    """``table`` as an .npz whose arrays and meta.json document may have been tampered with."""
    arrays = table._arrays() if arrays is None else arrays
    document = table._meta_document() if document is None else document
    np.savez(path, **{"meta.json": np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)}, **arrays)
    return path


@pytest.mark.parametrize("tamper, message", [
    (lambda doc: doc.pop("metadata"), "lacks its 'metadata' object"),
    (lambda doc: doc.__setitem__("metadata", None), "'metadata' must be a JSON object, got None"),
    (lambda doc: doc["metadata"].__setitem__("higher_is_better", "no"), "'higher_is_better' must be true or false"),
    (lambda doc: doc["metadata"].__setitem__("extra", [1]), "'extra' must be a JSON object"),
    (lambda doc: doc["metadata"].__setitem__("max_epochs", "27"), "'max_epochs' must be an integer"),
    (lambda doc: doc["metadata"].__setitem__("name", 7), "'name' must be a string"),
])
def test_malformed_metadata_is_named_with_the_file(tmp_path, table, tamper, message):
    document = table._meta_document()
    tamper(document)
    path = _write_npz(tmp_path / "meta.npz", table, document=document)
    with pytest.raises(BenchmarkFormatError, match=message) as raised:
        TabularBenchmark.load(path)
    assert str(path) in str(raised.value)


def test_meta_json_that_is_not_an_object_is_named(tmp_path, table):
    table.save(tmp_path / "t")
    (tmp_path / "t" / "meta.json").write_text("[1, 2]")
    with pytest.raises(BenchmarkFormatError, match="meta.json must be a JSON object, got \\[1, 2\\]") as raised:
        TabularBenchmark.load(tmp_path / "t")
    assert str(tmp_path / "t") in str(raised.value)


def test_fractional_epochs_are_refused(tmp_path, table):
    arrays = table._arrays()
    arrays["epochs"] = arrays["epochs"] + 0.5
    with pytest.raises(BenchmarkFormatError, match="epochs must be whole numbers"):
        TabularBenchmark.load(_write_npz(tmp_path / "e.npz", table, arrays))
    with pytest.raises(BenchmarkFormatError, match="epochs must be whole numbers"):
        TabularBenchmark.from_arrays(["a"], [1.5], np.ones((1, 1)), np.ones((1, 1)), metric="m", higher_is_better=True)


def test_a_text_file_is_not_a_table_and_gets_no_pickle_advice(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("architecture,accuracy\nx,91.2\n")
    with pytest.raises(BenchmarkFormatError, match="is not a pmfnas table") as raised:
        TabularBenchmark.load(path)
    assert str(path) in str(raised.value) and "pickle" not in str(raised.value)


def _nan_like(array):
    return np.full_like(array, np.nan)


@pytest.mark.parametrize("key, value, message", [
    ("seconds", _nan_like, "seconds record no positive cost"),
    ("seconds", np.zeros_like, "seconds record no positive cost"),
    ("seconds", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 3, np.inf, a), "found inf"),
])
def test_tables_nothing_can_be_searched_on_are_refused_at_load(tmp_path, table, key, value, message):
    arrays = table._arrays()
    arrays[key] = value(arrays[key]).astype(arrays[key].dtype)
    with pytest.raises(BenchmarkFormatError, match=message):
        TabularBenchmark.load(_write_npz(tmp_path / "t.npz", table, arrays))


def test_nan_for_runs_that_failed_or_never_ran_still_loads(tmp_path):
    # Guard: what real tables record (an architecture never run, a run that diverged) stays valid.
    valid = np.array([[[1.0, 2.0]], [[np.nan, np.nan]], [[3.0, np.nan]]])
    seconds = np.array([[[5.0, 5.0]], [[np.nan, np.nan]], [[5.0, 5.0]]])
    table = TabularBenchmark.from_arrays(["a", "b", "c"], [1, 2], valid, seconds, metric="m",
                                         higher_is_better=True, failed=[[False], [False], [True]])
    loaded = TabularBenchmark.load(table.save(tmp_path / "t.npz"))
    assert loaded.n_repeats.tolist() == [1, 0, 1] and loaded.failed[:, 0].tolist() == [False, False, True]


def test_save_refuses_to_replace_a_directory_that_is_not_a_table(tmp_path, table):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a pmfnas table directory .*notes.txt") as raised:
        table.save(precious)
    assert str(precious) in str(raised.value)
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    # A table directory with a foreign file added is not replaced either.
    table.save(tmp_path / "t")
    (tmp_path / "t" / "analysis.csv").write_text("mine")
    with pytest.raises(ValueError, match="analysis.csv"):
        table.save(tmp_path / "t")
    assert (tmp_path / "t" / "analysis.csv").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious", "t"]


def test_save_refuses_the_current_directory_and_those_above(tmp_path, table, monkeypatch):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    (inner / "keep.txt").write_text("mine")
    monkeypatch.chdir(inner)
    for target in (".", "..", str(tmp_path)):
        with pytest.raises(ValueError, match="current directory or one above it"):
            table.save(target)
    assert [p.name for p in inner.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


def test_save_replaces_its_own_table_directory_and_restores_it_when_that_fails(tmp_path, table, monkeypatch):
    target = tmp_path / "t"
    target.mkdir()  # an empty directory holds nothing to lose
    table.save(target)
    other = synthetic_table(n_archs=5)
    other.save(target)
    assert TabularBenchmark.load(target).arch_ids.tolist() == other.arch_ids.tolist()

    real_replace = os.replace

    def fail_moving_the_new_table_in(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_moving_the_new_table_in)
    with pytest.raises(OSError, match="disk full"):
        table.save(target)
    monkeypatch.undo()
    assert TabularBenchmark.load(target).arch_ids.tolist() == other.arch_ids.tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["t"]


def test_a_table_directory_is_readable_by_everyone_like_its_files(tmp_path, table):
    # The temporary directory it is written in is private (mkdtemp): the saved table must not be.
    saved = table.save(tmp_path / "shared")
    assert saved.stat().st_mode & 0o755 == 0o755
    assert all(entry.stat().st_mode & 0o044 == 0o044 for entry in saved.iterdir())


def test_a_table_whose_runs_all_failed_loads_but_the_harness_will_not_search_it(tmp_path, table, capsys):
    from harness.cli import main

    arrays = table._arrays()
    arrays["curve.valid"] = _nan_like(arrays["curve.valid"])
    path = _write_npz(tmp_path / "t.npz", table, arrays)
    TabularBenchmark.load(path)  # a recording of runs that all diverged is still a recording
    for argv in (["compare", "--benchmark", str(path), "--methods", "random", "--out", str(tmp_path / "o")],
                 ["search", "--benchmark", str(path), "--budget-evals", "3", "--journal", str(tmp_path / "j")],
                 ["predictor-eval", "--benchmark", str(path), "--out", str(tmp_path / "p")]):
        assert main(argv) == 2, argv
        assert "'valid' holds no finite value for any architecture" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.npz"]
