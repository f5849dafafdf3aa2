"""The CPU build of nb201-fmnist: down-sampled images, the seeded cell sample, and ``benchmark verify``.

The last test re-checks the committed build (``build-data/nb201-fmnist``): two of its cells are retrained
from scratch for 2 epochs with the manifest's configuration and must reproduce the recorded curves.
"""
import dataclasses
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.spaces.nb201 import NB201Space  # noqa: E402
from benchmarks.tabular import TabularBenchmark  # noqa: E402
from benchmarks.training.build import (N_CANONICAL, build_benchmark, chunk_path, merge_chunks,  # noqa: E402
                                       read_manifest, sample_canonical)
from benchmarks.training.data import load_dataset, resize_images, synthetic_splits  # noqa: E402
from benchmarks.training.verify import TOLERANCE, verify_benchmark  # noqa: E402
from tests.conftest import REPO, fashion_mnist_or_fail  # noqa: E402

SPACE = NB201Space()
COMMITTED = REPO / "build-data" / "nb201-fmnist"
TOY = dict(epochs=3, chunk_size=2, batch_k=1, device="cpu", C=4, N=1, batch_size=32, progress=None)


@pytest.fixture(scope="module")
def small_data():
    return fashion_mnist_or_fail(train_size=128, valid_size=128, test_size=64, image_size=12)


@pytest.fixture(scope="module")
def toy_build(small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu-build") / "b"
    build_benchmark(out, data=small_data, sample=4, sample_seed=3, cost_sample=3, cost_epochs=1, cost_clock="process",
                    **TOY)
    return out


def test_images_are_down_sampled_once_by_area_averaging(small_data):
    full = fashion_mnist_or_fail(train_size=128, valid_size=128, test_size=64)
    assert small_data.spec.size == 12 and full.spec.size == 28 and small_data.spec.pad == full.spec.pad
    for part in ("train_x", "valid_x", "test_x"):
        small, big = getattr(small_data, part), getattr(full, part)
        assert small.dtype == torch.uint8 and small.shape == (big.shape[0], 1, 12, 12)
    assert torch.equal(small_data.train_y, full.train_y)  # the same images, only smaller
    # A 2x2 block average: the area resize of a 4x4 image to 2x2.
    image = torch.tensor([[[[0, 2, 10, 10], [4, 6, 10, 10], [255, 255, 0, 1], [255, 255, 0, 0]]]], dtype=torch.uint8)
    assert resize_images(image, 2).tolist() == [[[[3, 10], [255, 0]]]]
    # Brightness is kept (28 -> 12 windows overlap, so edge pixels weigh a little differently).
    assert abs(small_data.train_x.float().mean().item() - full.train_x.float().mean().item()) < 2.0
    assert synthetic_splits(4, 1, 1, like="fashion-mnist", image_size=16).train_x.shape == (4, 1, 16, 16)


@pytest.mark.parametrize("size", [3, 29, 12.0, True])
def test_bad_image_size_is_refused(size):
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("fashion-mnist", train_size=8, valid_size=8, test_size=8, image_size=size)


def test_sample_is_seeded_uniform_and_prefix_stable():
    a = sample_canonical(1000, seed=0)
    assert a == sample_canonical(1000, seed=0) and a != sample_canonical(1000, seed=1)
    assert len(set(a)) == 1000 and all(SPACE.canonical(x) == x for x in a)
    assert sample_canonical(1500, seed=0)[:1000] == a  # a larger sample extends a smaller one
    # Uniform over the classes: the first 1,000 of the official order hold ~1000 * 1000/6466 of them.
    first = set(SPACE.unique_architectures()[:1000])
    assert 120 <= len(first & set(a)) <= 190
    for bad in (0, N_CANONICAL + 1, 2.5):
        with pytest.raises(ValueError, match="sample"):
            sample_canonical(bad)


def test_build_records_sample_and_image_size(toy_build):
    manifest = read_manifest(toy_build)
    settings = manifest["settings"]
    assert settings["image_size"] == 12 and settings["sample"] == 4 and settings["sample_seed"] == 3
    assert "permutation(6466)[:4]" in settings["archs_source"]
    table = merge_chunks(toy_build)
    assert table.arch_ids.tolist() == sample_canonical(4, seed=3)
    # FLOPs are those of the down-sampled input.
    assert manifest["cost_model"]["geometry"]["image_size"] == 12
    cost = manifest["cost_model"]
    # Timed by the process's CPU clock: the fit's points are those CPU seconds, all positive.
    assert cost["clock"] == "process" and "process CPU time" in cost["measured_with"]
    points = [m["seconds_per_epoch"] for m in cost["measured"]]
    assert points == cost["process_cpu_seconds_per_epoch"] and min(points) > 0
    assert "CPU seconds of the process" in manifest["seconds_derivation"]
    with pytest.raises(ValueError, match="cost_clock"):
        build_benchmark(toy_build.parent / "other", sample=4, cost_clock="process", cost_epochs=2, **TOY)
    with pytest.raises(ValueError, match="cost_clock"):
        build_benchmark(toy_build.parent / "other", sample=4, cost_clock="cpu", **TOY)
    with pytest.raises(ValueError, match="not both"):
        build_benchmark(toy_build, ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"], sample=4, **TOY)


def test_verify_reproduces_a_cpu_build_bit_for_bit(toy_build, small_data):
    report = verify_benchmark(toy_build, cells=2, epochs=2, data=small_data)
    assert report["agree"] and report["identical"] and len(report["cells"]) == 2
    for cell in report["cells"]:
        assert cell["max_difference"]["valid"] == 0.0 and cell["max_difference"]["train_loss"] == 0.0
        assert cell["valid_recorded"] == cell["valid_retrained"]


def test_verify_catches_a_table_that_is_not_what_the_manifest_says(toy_build, small_data, tmp_path):
    tampered = tmp_path / "t"
    shutil.copytree(toy_build, tampered)
    manifest = read_manifest(tampered)
    manifest["settings"]["lr"] = 0.01  # the recorded curves were not trained with this
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    report = verify_benchmark(tampered, cells=2, epochs=2, data=small_data)
    assert not report["agree"] and not report["identical"]
    worst = max(c["max_difference"]["train_loss"] for c in report["cells"])
    assert worst > TOLERANCE["loss_relative"]

    # A chunk whose recorded validation accuracies were moved by 4 points (beyond the tolerance).
    edited = tmp_path / "e"
    shutil.copytree(toy_build, edited)
    for index in (0, 1):
        chunk = TabularBenchmark.load(chunk_path(edited, index))
        curves = {k: np.asarray(v).copy() for k, v in chunk.curves.items()}
        curves["valid"] += 4.0
        chunk_path(edited, index).unlink()
        TabularBenchmark(chunk.arch_ids, chunk.epochs, chunk.seconds, curves, chunk.failed, chunk.metadata,
                         chunk.arch_features).save(chunk_path(edited, index))
    report = verify_benchmark(edited, cells=2, epochs=2, data=small_data)
    assert not report["agree"]
    assert all(c["max_difference"]["valid"] == pytest.approx(4.0, abs=1e-4) for c in report["cells"])
    assert all(c["max_difference"]["valid_loss"] == 0.0 for c in report["cells"])


def test_verify_command_and_its_errors(toy_build, tmp_path, capsys):
    from harness.cli import main

    out = tmp_path / "report.json"
    # The manifest's own split (Fashion-MNIST at 12x12, 128/128/64 images) is loaded by the command.
    assert main(["benchmark", "verify", str(toy_build), "--cells", "1", "--epochs", "1", "--json", str(out)]) == 0
    assert "bit-identical" in capsys.readouterr().out and json.loads(out.read_text())["agree"]
    with pytest.raises(ValueError, match="exceeds the 3 epochs"):
        verify_benchmark(toy_build, cells=1, epochs=4)
    with pytest.raises(ValueError, match="exceeds the 4 non-failed"):
        verify_benchmark(toy_build, cells=5)
    plain = tmp_path / "plain.npz"
    table = merge_chunks(toy_build)
    TabularBenchmark(table.arch_ids, table.epochs, table.seconds, table.curves, table.failed,
                     dataclasses.replace(table.metadata, extra={})).save(plain)
    with pytest.raises(ValueError, match="no build manifest"):
        verify_benchmark(plain)


def test_committed_build_is_reproduced_by_retraining_two_cells():
    if not (COMMITTED / "manifest.json").is_file() or not chunk_path(COMMITTED, 0).is_file():
        pytest.fail(f"the committed nb201-fmnist build is missing from {COMMITTED}")
    settings = read_manifest(COMMITTED)["settings"]
    assert settings["image_size"] is not None and settings["sample"] >= 1000 and settings["epochs"] >= 20
    report = verify_benchmark(COMMITTED, cells=2, epochs=2, seed=0)
    assert report["agree"], report["cells"]
    for cell in report["cells"]:
        assert np.isfinite(cell["valid_retrained"]).all()


def test_the_shipped_table_is_reproduced_by_retraining_two_cells():
    """The issue's CI check, on the table inside the package (its manifest travels in ``extra.manifest``)."""
    report = verify_benchmark("nb201-fmnist", cells=2, epochs=2, seed=1)
    assert report["agree"], report["cells"]
    assert len(report["cells"]) == 2
