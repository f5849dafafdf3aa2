"""``pmfnas benchmark list`` and ``info`` on the shipped benchmarks."""
from benchmarks.registry import describe_benchmarks
from harness.cli import main


def test_list_prints_every_benchmark_with_size_metric_direction_shipping_and_licence(capsys):
    assert main(["benchmark", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "architectures", "×", "fidelities", "metric", "direction", "ships", "licence"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == [d.name for d in describe_benchmarks()]
    assert {"nbnlp-wt2", "nb201-c10-sample", "nb201-final:cifar10-valid", "nb201-pth", "nats-tss"} <= set(rows)
    assert "344 × 50" in rows["nbnlp-wt2"] and "lower is better" in rows["nbnlp-wt2"]
    assert "Apache-2.0" in rows["nbnlp-wt2"] and "  yes  " in rows["nbnlp-wt2"]
    assert "200 × 200" in rows["nb201-c10-sample"] and "valid_accuracy" in rows["nb201-c10-sample"]
    assert "15,625 × 1" in rows["nb201-final:cifar100"] and "no: convert" in rows["nb201-pth"]


def test_info_of_the_nb201_sample_names_its_derivation_and_features(capsys):
    assert main(["benchmark", "info", "nb201-c10-sample"]) == 0
    out = capsys.readouterr().out
    assert "architectures                   200" in out and "91.3507" in out
    assert "train_time" in out and "/ 200" in out  # how the per-epoch seconds were derived
    assert "grad_norm, snip, grasp, fisher, jacob_cov, plain, synflow_bn, log10_1p_synflow" in out
