"""build_benchmark / merge_chunks on the CPU at toy sizes: chunks, resume, atomicity, cost model, merge, CLI."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.oracle import TabularOracle  # noqa: E402
from benchmarks.spaces.nb201 import NB201Space  # noqa: E402
from benchmarks.tabular import TabularBenchmark  # noqa: E402
from benchmarks.training.build import (build_benchmark, chunk_path,  # noqa: E402
                                       fit_cost_model, merge_chunks, nb201_flops, nb201_params, predict_cost,
                                       read_manifest)
from benchmarks.training.nb201_model import build_network, count_parameters  # noqa: E402
from tests.conftest import fashion_mnist_or_fail  # noqa: E402

SPACE = NB201Space()
ARCHS = SPACE.unique_architectures()[:4]
TOY = dict(epochs=2, chunk_size=2, batch_k=2, device="cpu", C=4, N=1, batch_size=32, progress=None)


@pytest.fixture(scope="module")
def data():
    return fashion_mnist_or_fail(train_size=128, valid_size=128, test_size=64)


@pytest.fixture(scope="module")
def built(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "fmnist"
    summary = build_benchmark(out, ARCHS, data=data, cost_sample=4, cost_epochs=1, **TOY)
    return out, summary


def test_two_chunks_and_a_manifest(built):
    out, summary = built
    assert summary["built"] == [0, 1] and summary["complete"] and summary["stopped"] is None
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["chunk-00000.npz", "chunk-00001.npz"]
    first = TabularBenchmark.load(chunk_path(out, 0))
    assert first.arch_ids.tolist() == ARCHS[:2] and first.metadata.canonical_keys
    manifest = read_manifest(out)
    assert manifest["settings"]["epochs"] == 2 and manifest["settings"]["chunk_size"] == 2
    assert manifest["git_commit"] and manifest["torch"] == torch.__version__
    assert manifest["hardware"]["device_name"].startswith("CPU")
    assert "ALONE" in manifest["seconds_derivation"] and "NOT the batched wall time" in manifest["seconds_derivation"]
    cost = manifest["cost_model"]
    # 4 measured points cannot determine the 5-coefficient op-count model: it falls back to a + b*FLOPs.
    assert cost["requested"] == "ops" and cost["used"] == "flops" and cost["n"] == 4
    assert len(cost["coefficients"]) == 2 and np.isfinite(cost["r2"]) and len(cost["measured"]) == 4
    assert manifest["runs"][-1]["status"] == "finished" and manifest["runs"][-1]["built"] == [0, 1]
    # Every architecture is charged the cost model's seconds, the same every epoch.
    expected = predict_cost(cost, ARCHS[:2])
    np.testing.assert_allclose(first.seconds[:, 0, :], np.repeat(expected[:, None], 2, axis=1), rtol=1e-6)


def test_merge_and_replay_through_canonical_keys(built, tmp_path):
    out, _ = built
    table = merge_chunks(out, out=tmp_path / "nb201-fmnist.npz")
    again = TabularBenchmark.load(tmp_path / "nb201-fmnist.npz")
    for t in (table, again):
        assert t.arch_ids.tolist() == ARCHS and t.epochs.tolist() == [1, 2] and t.metadata.canonical_keys
        assert t.metadata.space == "nb201" and t.metadata.metric == "valid_accuracy" and t.higher_is_better
        assert "CC-BY-4.0" in t.metadata.licence and "Zalando" in t.metadata.licence
        assert not t.failed.any() and "PARTIAL" not in t.metadata.notes
        for name in ("valid", "valid_loss", "test", "test_loss", "train", "train_loss"):
            assert np.isfinite(np.asarray(t.curves[name])).all(), name
        assert np.isfinite(np.asarray(t.seconds)).all() and (np.asarray(t.seconds) > 0).all()
        assert t.metadata.extra["feature_names"] == ["n_params", "flops"]
    # A non-canonical member of a stored class is answered by its representative's row.
    other = next(a for a in SPACE.all_architectures() if SPACE.canonical(a) in ARCHS and SPACE.canonical(a) != a)
    oracle = TabularOracle(again, SPACE, repeat=0)
    evaluation = oracle.evaluate(other, 2)
    row = again.row(SPACE.canonical(other))
    assert evaluation.values.tolist() == np.asarray(again.curves["valid"][row, 0], dtype=np.float64).tolist()
    assert evaluation.cost == pytest.approx(float(np.sum(again.seconds[row, 0])))


def test_deleted_chunk_is_rebuilt_alone(built, data):
    out, _ = built
    keep = chunk_path(out, 0)
    before = keep.stat().st_mtime_ns
    chunk_path(out, 1).unlink()
    cost_before = read_manifest(out)["cost_model"]
    summary = build_benchmark(out, ARCHS, data=data, cost_sample=4, cost_epochs=1, **TOY)
    assert summary["built"] == [1] and summary["skipped"] == [0]
    assert keep.stat().st_mtime_ns == before and chunk_path(out, 1).is_file()
    manifest = read_manifest(out)
    assert manifest["cost_model"] == cost_before and len(manifest["runs"]) == 2  # the fit is reused, not redone


def test_interrupted_build_leaves_whole_chunks_only(data, tmp_path, monkeypatch):
    out = tmp_path / "b"

    def kill_in_second_chunk(event, chunk, **info):
        if event == "epoch" and chunk == 1:
            raise KeyboardInterrupt("simulated kill in the middle of chunk 1")

    with pytest.raises(KeyboardInterrupt):
        build_benchmark(out, ARCHS, data=data, cost_sample=1, cost_epochs=1, callback=kill_in_second_chunk, **TOY)
    assert chunk_path(out, 0).is_file() and not chunk_path(out, 1).exists()
    assert not list(out.rglob("*.tmp"))
    assert TabularBenchmark.load(chunk_path(out, 0)).arch_ids.tolist() == ARCHS[:2]
    assert read_manifest(out)["runs"][-1]["status"].startswith("interrupted")
    partial = merge_chunks(out)
    assert len(partial) == 2 and "PARTIAL: 2 of the 4 architectures" in partial.metadata.notes
    assert partial.metadata.extra["missing_chunks"] == [1]

    # A failure while writing the file leaves no partial file either.
    def broken_writer(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken_writer)
    with pytest.raises(OSError, match="disk full"):
        build_benchmark(out, ARCHS, data=data, cost_sample=1, cost_epochs=1, **TOY)
    assert not chunk_path(out, 1).exists() and not list(out.rglob("*.tmp"))
    monkeypatch.undo()
    summary = build_benchmark(out, ARCHS, data=data, cost_sample=1, cost_epochs=1, **TOY)
    assert summary["built"] == [1] and summary["complete"]
    # Settings that change results may not change on the same directory.
    with pytest.raises(ValueError, match="other settings"):
        build_benchmark(out, ARCHS, data=data, cost_sample=1, cost_epochs=1, **{**TOY, "epochs": 3})


def test_diverged_run_is_kept_as_failed(data, tmp_path):
    def poison(event, **info):
        if event == "epoch" and info["epoch"] == 1:
            with torch.no_grad():
                k = info["archs"].index(ARCHS[1])  # groups are formed in op-sequence order, not chunk order
                dict(info["model"].named_parameters())["classifier.weight"][k].fill_(float("nan"))

    out = tmp_path / "f"
    build_benchmark(out, ARCHS[:2], data=data, cost_sample=1, cost_epochs=1, callback=poison, **TOY)
    table = merge_chunks(out)
    assert table.failed[:, 0].tolist() == [False, True]
    assert "diverged" in table.metadata.extra["failures"][ARCHS[1]]
    valid, seconds = np.asarray(table.curves["valid"]), np.asarray(table.seconds)
    assert np.isfinite(valid[0]).all() and np.isfinite(valid[1, 0, 0]) and np.isnan(valid[1, 0, 1])
    assert np.isfinite(seconds[1, 0, :]).all()  # the failing epoch 2 is charged, nothing after it exists
    evaluation = TabularOracle(table, SPACE, repeat=0).evaluate(ARCHS[1], 2)
    assert evaluation.failed and evaluation.epochs.tolist() == [1, 2]


def test_analytic_sizes_and_cost_fit():
    for arch in ARCHS + ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]:
        assert nb201_params(arch, C=4, N=1, in_channels=1) == count_parameters(build_network(arch, 10, C=4, N=1, in_channels=1))
        assert nb201_params(arch) == count_parameters(build_network(arch, 10))
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(40)]
    geometry = dict(C=16, N=5, in_channels=1, image_size=28, num_classes=10)
    truth = np.array([0.5 + 1e-9 * nb201_flops(a, 16, 5, 1, 28, 10) for a in archs])
    model = fit_cost_model(archs, truth, "ops", **geometry)
    assert model["used"] == "ops" and model["r2"] > 0.999999 and len(model["coefficients"]) == 5
    np.testing.assert_allclose(predict_cost(model, archs), truth, rtol=1e-9)
    assert fit_cost_model(archs[:1], truth[:1], "ops", **geometry)["used"] == "constant"


def test_build_command_resumes_and_merges(built, tmp_path, capsys):
    out, _ = built
    from harness.cli import main

    merged = tmp_path / "m.npz"
    # Through the ``pmfnas benchmark build`` command line.
    args = (["benchmark", "build", "--out", str(out), "--epochs", "2", "--chunk-size", "2", "--batch-k", "2", "--device", "cpu",
                              "--C", "4", "--N", "1", "--batch-size", "32", "--train-size", "128", "--valid-size", "128",
                              "--test-size", "64", "--cost-sample", "4", "--cost-epochs", "1", "--merge", str(merged),
                              "--quiet", "--archs-file", str(_archs_file(tmp_path))])
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2/2 chunks (0 built now, 2 already there)" in printed and "wrote" in printed
    assert TabularBenchmark.load(merged).arch_ids.tolist() == ARCHS
    assert json.loads((out / "manifest.json").read_text())["runs"][-1]["status"] == "finished"


def _archs_file(tmp_path):
    path = tmp_path / "archs.txt"
    path.write_text("# four canonical cells\n" + "\n".join(ARCHS) + "\n")
    return path


def _build_one_shard(out, archs, shard, report):
    """One build (``shard``: None or (i, n)) in a process of its own, as ``pmfnas benchmark build`` runs."""
    torch.set_num_threads(1)  # as the CPU build does: the same summation order in every process
    said = []
    summary = build_benchmark(out, archs, cost_sample=4, cost_epochs=1, shard=shard, train_size=128,
                              valid_size=128, test_size=64, **{**TOY, "progress": said.append})
    report.write_text(json.dumps({"built": summary["built"], "said": said}))


def test_two_shards_build_one_directory_together(tmp_path):
    """``--shard 0/2`` and ``--shard 1/2`` started together as processes: one calibrates, both record their
    runs, and the chunks are those of an unsharded build (results do not depend on who built a chunk)."""
    import multiprocessing

    out = tmp_path / "sharded"
    (out / "chunks").mkdir(parents=True)
    (out / "chunks" / "chunk-00001.npz.tmp").write_bytes(b"left by a killed builder")
    archs = SPACE.unique_architectures()[:6]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per shard, as two commands would be
    reports = [tmp_path / f"shard{i}.json" for i in (0, 1)]
    shards = [context.Process(target=_build_one_shard, args=(out, archs, (i, 2), reports[i])) for i in (0, 1)]
    for shard in shards:
        shard.start()
    for shard in shards:
        shard.join(timeout=600)
    reference_out = tmp_path / "unsharded"
    whole = context.Process(target=_build_one_shard, args=(reference_out, archs, None, tmp_path / "whole.json"))
    whole.start()
    whole.join(timeout=600)
    assert [shard.exitcode for shard in shards] + [whole.exitcode] == [0, 0, 0]
    done = [json.loads(report.read_text()) for report in reports]
    assert done[0]["built"] == [0, 2] and done[1]["built"] == [1]
    calibrated = [i for i in (0, 1) if any(line.startswith("cost model:") for line in done[i]["said"])]
    assert len(calibrated) == 1, done
    manifest = read_manifest(out)
    assert sorted((run["shard"], run["built"], run["status"]) for run in manifest["runs"]) == [
        ("0/2", [0, 2], "finished"), ("1/2", [1], "finished")]
    assert not list(out.rglob("*.tmp"))
    merged = merge_chunks(out)
    reference = merge_chunks(reference_out)
    assert merged.arch_ids.tolist() == reference.arch_ids.tolist() == archs
    for name in merged.curves:  # the same curves to the bit as one process building every chunk
        np.testing.assert_array_equal(np.asarray(merged.curves[name]), np.asarray(reference.curves[name]), err_msg=name)
    np.testing.assert_allclose(merged.seconds[:, 0, :], np.repeat(predict_cost(manifest["cost_model"], archs)[:, None], 2, axis=1),
                               rtol=1e-6)


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0), (0.5, 2), "0/2"])
def test_a_bad_shard_is_refused_by_name(shard, tmp_path):
    with pytest.raises(ValueError, match="shard="):
        build_benchmark(tmp_path / "x", ARCHS, shard=shard, **TOY)
    assert not (tmp_path / "x").exists()


SMALL_DATA = dict(cost_sample=1, train_size=64, valid_size=64, test_size=64)
TOY_FLAGS = ["--device", "cpu", "--epochs", "2", "--chunk-size", "2", "--batch-k", "2", "--C", "4", "--N", "1",
             "--batch-size", "32", "--train-size", "64", "--valid-size", "64", "--test-size", "64", "--cost-sample", "1",
             "--quiet"]


@pytest.mark.parametrize("bad, message", [
    (dict(dataset="foo"), "unknown dataset 'foo'"),
    (dict(image_size=0), "image_size=0"),
    (dict(train_size=0), "train_size=0"),
    (dict(valid_size=-1), "valid_size=-1"),
    (dict(max_chunks=0), "max_chunks=0"),
    (dict(max_chunks=-1), "max_chunks=-1"),
    (dict(max_chunks=2.5), "max_chunks=2.5"),
    (dict(chunk_size="2"), "chunk_size='2' must be a positive int"),
    (dict(epochs=None), "epochs=None must be a positive int"),
    (dict(test_size=float("nan")), "test_size=nan"),
    (dict(time_budget_s=-5.0), "time_budget_s=-5.0"),
])
def test_bad_build_arguments_are_refused_before_anything_is_written(tmp_path, bad, message):
    # Anything written first (the manifest records the settings) would make the corrected rerun a clash.
    with pytest.raises(ValueError, match=message):
        build_benchmark(tmp_path / "x", ARCHS[:2], **{**TOY, **SMALL_DATA, **bad})
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("option, rule", [(["--max-chunks", "0"], "must be at least 1, got 0"),
                                          (["--max-chunks", "-1"], "must be at least 1, got -1"),
                                          (["--max-chunks", "2.5"], "'2.5' is not a whole number"),
                                          (["--time-budget", "-5"], "must be a finite number above 0, got -5"),
                                          (["--time-budget", "inf"], "must be a finite number above 0, got inf")])
def test_build_command_names_a_non_positive_limit(tmp_path, capsys, option, rule):
    from harness.cli import main

    out = tmp_path / "x"
    assert main(["benchmark", "build", "--out", str(out), "--archs-file", str(_archs_file(tmp_path)), *TOY_FLAGS,
                 *option]) == 2
    assert f"argument {option[0]}: {rule}" in capsys.readouterr().err
    assert not out.exists()


def test_build_command_checks_the_merge_destination_before_building(tmp_path, capsys):
    from harness.cli import main

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    out = tmp_path / "x"
    assert main(["benchmark", "build", "--out", str(out), "--archs-file", str(_archs_file(tmp_path)), *TOY_FLAGS,
                 "--merge", str(precious)]) == 2
    assert "not a pmfnas table directory" in capsys.readouterr().err
    assert not out.exists() and [p.name for p in precious.iterdir()] == ["notes.txt"]


def test_record_checks_its_output_directory_before_training(tmp_path):
    from benchmarks.training.commands import record

    class MustNotTrain:
        max_epochs = 2

        def evaluate(self, arch, epochs):
            raise AssertionError("trained before the output directory was checked")

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a pmfnas table directory"):
        record(MustNotTrain(), ARCHS[:1], out=precious, progress=None)
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("fidelities, bad", [("a,b", "a"), ("1,1.5,12", "1.5"), ("0,12", "0")])
def test_bad_fidelities_name_the_option(fidelities, bad):
    import argparse

    from benchmarks.training.commands import add_trainer_arguments, trainer_from_args

    parser = argparse.ArgumentParser()
    add_trainer_arguments(parser)
    args = parser.parse_args(["--fidelities", fidelities, "--device", "cpu"])
    with pytest.raises(ValueError, match=f"--fidelities '{fidelities}': '{bad}' is not a positive whole epoch"):
        trainer_from_args(args)
