"""The device check runs end to end on the CPU with --quick (a smoke test for the GPU script)."""
import json

import pytest

torch = pytest.importorskip("torch")

from benchmarks.device_check import main  # noqa: E402


def test_quick_device_check_on_cpu(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status = main(["--out", str(tmp_path), "--quick", "--device", "cpu", "--max-concurrent", "2", "--timeout", "120"])
    finally:
        torch.set_num_threads(before)
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert status == 0 and report["ok"], report.get("errors")
    assert report["forward_backward"]["ok"] and report["resume"]["weights_bitwise_equal"]
    assert report["single"]["arch_epochs_per_second"] > 0 and len(report["single"]["seconds"]) == report["sizes"]["epochs"]
    assert report["concurrent"]["completed"] == report["concurrent"]["k"] == 2, report["concurrent"].get("errors")
    assert report["concurrent"]["aggregate_arch_epochs_per_second"] > 0
    assert "arch-epochs/s" in (tmp_path / "device_check.md").read_text()


@pytest.mark.parametrize("single, aggregate, completed, device, cores, flagged", [
    (1.0, 13.5, 2, "cpu", 2, True),     # the reported case: 13.5x from 2 trials on 2 cores
    (1.0, 1.9, 2, "cpu", 2, False),     # near-linear: fine
    (1.0, 3.5, 8, "cpu", 2, True),      # 8 trials cannot beat 2 cores by 3.5x
    (1.0, 4.1, 8, "cuda", 2, False),    # the H200 measurement: 8 processes, 4.1x
    (1.0, 9.0, 4, "cuda", 64, True),
])
def test_concurrency_gain_flags_the_impossible(single, aggregate, completed, device, cores, flagged):
    from benchmarks.training.device_check import concurrency_gain

    result = concurrency_gain({"arch_epochs_per_second": single},
                              {"aggregate_arch_epochs_per_second": aggregate, "completed": completed}, device, cores)
    assert result["gain_over_single"] == pytest.approx(aggregate / single)
    assert bool(result["implausible"]) is flagged
    if flagged:
        assert "implausible" in result["implausible"] and f"{aggregate / single:.1f}x" in result["implausible"]
