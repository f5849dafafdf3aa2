"""The throughput benchmark runs on the CPU with --quick, and counts FLOPs right."""
import json

import pytest

torch = pytest.importorskip("torch")

from benchmarks.training.build import nb201_flops  # noqa: E402
from benchmarks.training.throughput import BEST_CELL, count_flops, sizes_for  # noqa: E402
from harness.cli import main  # noqa: E402

MIXED = "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_flop_counts_agree_with_the_analytic_count():
    sz = sizes_for(quick=True)
    for arch in (BEST_CELL, MIXED):
        counted = count_flops(arch, sz, in_channels=1, image_size=28, num_classes=10)
        forward = nb201_flops(arch, C=sz["C"], N=sz["N"], in_channels=1, image_size=28, num_classes=10)
        assert counted["valid_batch"] == forward * sz["eval_batch"]  # convolutions + classifier, 2 per MAC
        # backward costs about two forwards (no gradient for the input images): 2x < train/forward <= 3x
        assert 2 * forward * sz["batch"] < counted["train_step"] <= 3 * forward * sz["batch"]
        assert counted["per_arch_epoch"] == pytest.approx(
            (counted["train_step"] / sz["batch"] + counted["valid_batch"] / sz["eval_batch"]) * sz["full_images"])


def test_quick_benchmark_runs_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "tp"
    status = main(["benchmark", "throughput", "--quick", "--device", "cpu", "--out", str(out), "--no-isolate",
                   "--compile-modes", "none", "--sample", "2", "--k", "2",
                   "--workloads", "sample"])  # the best-cell rows are the same code on another cell
    assert status == 0
    report = json.loads((out / "throughput.json").read_text())
    rows = {(r["workload"], r["path"]): r for r in report["rows"]}
    assert set(rows) == {("sample", p) for p in ("eager", "graph", "eager x2", "graph x2", "batched K=2",
                                                 "batched K=2 graph")}
    for key, row in rows.items():
        if row["trainer"] == "graph":
            assert row["skip"] == "CUDA graphs need CUDA; the device is cpu" and "arch_epochs_per_s" not in row
        else:
            assert "error" not in row, row.get("error")
            assert row["arch_epochs_per_s"] > 0 and row["tflops_per_s"] > 0 and row["setup_s"] >= 0
            assert row["cells_timed"] == 2
    # the FLOPs of an arch-epoch are the mean of the sample's networks' at these sizes
    sample = report["cells"]["sample"]
    mean = sum(report["flops"][a]["per_arch_epoch"] for a in sample) / len(sample)
    assert rows[("sample", "eager")]["tflop_per_arch_epoch"] == pytest.approx(mean / 1e12)
    # two processes side by side, one cell each: together faster than either alone
    detail = rows[("sample", "eager x2")]["detail"]
    assert len(detail) == 2 and all(len(part["cells"]) == 1 for part in detail)
    assert rows[("sample", "eager x2")]["arch_epochs_per_s"] > max(1 / part["cells"][0]["steady_s"] for part in detail)
    assert report["summary"]["goal_met"] is None  # a quick run is no measurement
    table = (out / "throughput.md").read_text()
    assert "| sample | batched K=2 |" in table and "CUDA graphs need CUDA" in table
    assert "arch-epochs/s" in capsys.readouterr().out


def test_unknown_path_is_refused(tmp_path, capsys):
    assert main(["benchmark", "throughput", "--quick", "--out", str(tmp_path / "x"), "--trainer", "warp"]) == 2
    assert "--trainer 'warp'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
