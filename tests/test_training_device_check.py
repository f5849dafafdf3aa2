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
