"""Every user error of the command line: one line naming the problem, exit status 2, nothing written, no training.

Each case builds its arguments in a fresh directory; the checks are the same for all of them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import REPO, synthetic_table

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
MALFORMED = "|nor_conv_3x3~0|+|conv_9x9~0|nor_conv_3x3~1|"


def _unwritable_dir(tmp: Path) -> Path:
    """A directory this process cannot create files in (root ignores permissions, but not sysfs)."""
    if os.geteuid() == 0:
        return Path("/sys")
    locked = tmp / "read-only"
    locked.mkdir()
    locked.chmod(0o555)
    return locked


def _setup(tmp: Path) -> dict:
    """Paths the cases use: a small table, a file, an unwritable directory, a finished comparison."""
    table = tmp / "t.npz"
    synthetic_table(n_archs=40, n_epochs=9).save(table)
    finals = tmp / "finals.npz"
    synthetic_table(n_archs=40, n_epochs=1).save(finals)
    a_file = tmp / "a-file"
    a_file.write_text("not a directory\n")
    return {"table": str(table), "finals": str(finals), "file": str(a_file), "tmp": str(tmp),
            "unwritable": str(_unwritable_dir(tmp))}


# (arguments with {placeholders}, text the one line must contain)
CASES = {
    "compare --out is a file": (
        ["compare", "--benchmark", "{table}", "--methods", "random", "--out", "{file}"], "is a file, not a directory"),
    "compare --out below a file": (
        ["compare", "--benchmark", "{table}", "--methods", "random", "--out", "{file}/sub"],
        "a-file is a file, not a directory"),
    "compare --out unwritable": (
        ["compare", "--benchmark", "{table}", "--methods", "random", "--out", "{unwritable}/out"], "cannot write in"),
    "compare budget below one evaluation": (
        ["compare", "--benchmark", "{table}", "--methods", "random", "--budget", "1", "--out", "{tmp}/o"],
        "below one full evaluation"),
    "compare budget-evals below one evaluation": (
        ["compare", "--benchmark", "{table}", "--methods", "random", "--budget-evals", "0.5", "--out", "{tmp}/o"],
        "below one full evaluation"),
    "compare budget inf": (
        ["compare", "--benchmark", "{table}", "--budget", "inf", "--out", "{tmp}/o"], "must be a finite number"),
    "compare budget nan": (
        ["compare", "--benchmark", "{table}", "--budget", "nan", "--out", "{tmp}/o"], "must be a finite number"),
    "compare budget twice": (
        ["compare", "--benchmark", "{table}", "--budget", "900", "--budget-evals", "3", "--out", "{tmp}/o"],
        "not allowed with argument"),
    "compare processes 0": (
        ["compare", "--benchmark", "{table}", "--processes", "0", "--out", "{tmp}/o"],
        "argument --processes: must be at least 1, got 0"),
    "compare seeds 0": (["compare", "--benchmark", "{table}", "--seeds", "0", "--out", "{tmp}/o"], "--seeds"),
    "compare workers 0": (["compare", "--benchmark", "{table}", "--workers", "0", "--out", "{tmp}/o"], "--workers"),
    "compare no method": (
        ["compare", "--benchmark", "{table}", "--methods", " , ", "--out", "{tmp}/o"],
        "methods [' ', ' '] name no method"),
    "compare unknown method": (
        ["compare", "--benchmark", "{table}", "--methods", "random,bohb", "--out", "{tmp}/o"], "unknown method"),
    "compare abbreviated option": (
        ["compare", "--bench", "{table}", "--out", "{tmp}/o"], "unrecognized arguments: --bench"),
    "predictor-eval seeds 0": (
        ["predictor-eval", "--benchmark", "{table}", "--seeds", "0", "--out", "{tmp}/o"],
        "argument --seeds: must be at least 1, got 0"),
    "predictor-eval --out is a file": (
        ["predictor-eval", "--benchmark", "{table}", "--train-archs", "10", "--seeds", "1", "--out", "{file}"],
        "is a file, not a directory"),
    "convert --out below a file": (
        ["benchmark", "convert", "nb201-final", "--dataset", "cifar100", "--out", "{file}/c100.npz"],
        "is a file, not a directory"),
    "search resume without a journal": (
        ["search", "--benchmark", "{table}", "--budget-evals", "3", "--resume", "--journal", "{tmp}/absent.jsonl"],
        "no journal at"),
    "search budget-evals below one evaluation": (
        ["search", "--benchmark", "{table}", "--budget-evals", "0.1"], "below one full evaluation"),
    "search budget-evals in real mode": (
        ["search", "--train", "fashion-mnist", "--budget-evals", "3", "--device", "cpu"],
        "--budget-evals counts full evaluations of a tabular benchmark"),
    "search budget twice": (
        ["search", "--benchmark", "{table}", "--budget", "9", "--budget-hours", "1"], "not allowed with argument"),
    "search unknown method with a journal": (
        ["search", "--benchmark", "{table}", "--budget-evals", "3", "--method", "foo", "--journal", "{tmp}/j.jsonl"],
        "unknown searcher 'foo'"),
    "predictor-eval a fraction twice": (
        ["predictor-eval", "--benchmark", "{table}", "--fraction", "0.1,0.1", "--out", "{tmp}/o"],
        "name a fraction twice"),
    "search --journal is a directory": (
        ["search", "--benchmark", "{table}", "--budget-evals", "3", "--journal", "{tmp}"], "is a directory, not a file"),
    "search --record in tabular mode": (
        ["search", "--benchmark", "{table}", "--budget-evals", "3", "--record", "{tmp}/r.npz"],
        "--record saves the curves that real training measured"),
    "search --record unwritable": (
        ["search", "--train", "fashion-mnist", "--budget", "60", "--device", "cpu", "--epochs", "1",
         "--record", "{unwritable}/r.npz"], "cannot write in"),
    "search abbreviated --device": (
        ["search", "--train", "fashion-mnist", "--budget", "60", "--devic", "cpu"], "unrecognized arguments: --devic"),
    "record a malformed architecture": (
        ["record", BEST, MALFORMED, "--out", "{tmp}/rec.npz", "--epochs", "1", "--device", "cpu"],
        f"architecture 2 of 2 ('{MALFORMED}') is not a valid nb201 architecture"),
    "record --out unwritable": (
        ["record", BEST, "--out", "{unwritable}/rec.npz", "--epochs", "1", "--device", "cpu"], "cannot write in"),
    "record --out below a file": (
        ["record", BEST, "--out", "{file}/rec.npz", "--epochs", "1", "--device", "cpu"], "is a file, not a directory"),
}


def _fill(argv: list[str], paths: dict) -> list[str]:
    return [a.format(**paths) for a in argv]


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _assert_one_line_error(err: str, must_contain: str) -> None:
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and ": error: " in err and err.startswith("pmfnas"), err
    assert must_contain in err, err


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_error_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys):
    argv, must_contain = CASES[case]
    paths = _setup(tmp_path)
    before = _listing(tmp_path)
    assert main(_fill(argv, paths)) == 2
    captured = capsys.readouterr()
    _assert_one_line_error(captured.err, must_contain)
    assert captured.out == ""  # nothing ran: no training line, no progress
    assert _listing(tmp_path) == before


def test_cuda_asked_on_a_machine_without_it(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the error is for a CPU-only torch or a machine without a GPU")
    for argv in (["record", BEST, "--out", str(tmp_path / "r.npz"), "--device", "cuda"],
                 ["search", "--train", "fashion-mnist", "--budget", "60", "--device", "cuda:0"]):
        assert main(argv) == 2
        _assert_one_line_error(capsys.readouterr().err, "asks for CUDA, but torch")
    assert list(tmp_path.iterdir()) == []


def test_compare_on_a_folder_in_use(tmp_path, capsys):
    from harness.comparison import folder_lock

    paths = _setup(tmp_path)
    out = tmp_path / "busy"
    out.mkdir()
    with folder_lock(out):
        assert main(["compare", "--benchmark", paths["table"], "--methods", "random", "--seeds", "1",
                     "--out", str(out), "--quiet"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "in use by another pmfnas compare")
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_compare_on_a_ray_cluster_that_is_not_there(tmp_path, capsys):
    pytest.importorskip("ray")
    paths = _setup(tmp_path)
    before = _listing(tmp_path)
    # Port 1 on this machine: nothing listens there, so the connection is refused at once.
    assert main(["compare", "--benchmark", paths["table"], "--methods", "random", "--seeds", "1", "--ray",
                 "127.0.0.1:1", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "no Ray cluster at '127.0.0.1:1'")
    assert _listing(tmp_path) == before


def test_compare_resume_with_another_benchmark_names_it(tmp_path, capsys):
    paths = _setup(tmp_path)
    out = str(tmp_path / "o")
    common = ["--methods", "random", "--seeds", "2", "--budget-evals", "3", "--out", out, "--quiet"]
    assert main(["compare", "--benchmark", paths["table"], *common]) == 0
    capsys.readouterr()
    assert main(["compare", "--benchmark", paths["finals"], *common, "--resume"]) == 2
    _assert_one_line_error(capsys.readouterr().err, f"benchmark: '{paths['table']}' in the folder, "
                                                    f"'{paths['finals']}' now")


# torch made unimportable, as on an installation without the train extra (a finder that refuses it, rather
# than sys.modules['torch'] = None, which libraries probing sys.modules for torch would trip over).
NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoTorch())
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [
    ["search", "--method", "pmfnas", "--train", "fashion-mnist", "--budget-hours", "2", "--device", "cpu",
     "--epochs", "24", "--record", "{tmp}/fmnist.npz"],
    ["record", BEST, "--out", "{tmp}/best.npz", "--epochs", "12"],
    ["benchmark", "build", "--out", "{tmp}/build", "--epochs", "2"],
], ids=["search", "record", "build"])
def test_real_training_without_torch_says_how_to_install_it(argv, tmp_path):
    # The README's real-mode commands on an installation without the train extra (torch made unimportable).
    argv = [a.format(tmp=tmp_path) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", NO_TORCH, *argv], capture_output=True, text=True, cwd=REPO,
                            env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    _assert_one_line_error(result.stderr, "needs the train extra: pip install 'pmf-nas[train]'")
    assert list(tmp_path.iterdir()) == []


def test_tabular_search_works_without_torch(tmp_path):
    paths = _setup(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", NO_TORCH, "search", "--benchmark", paths["table"], "--method",
                             "asha", "--budget-evals", "3", "--quiet"], capture_output=True, text=True, cwd=tempfile.gettempdir(),
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("chosen: ")


def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    """`pmfnas benchmark info X | head -1`: the closed pipe ends the command quietly, status 0."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "benchmark", "info", "nbnlp-wt2"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    process.stdout.close()  # before the command writes a line: its first write meets a closed pipe
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0
    assert "error" not in stderr and "Traceback" not in stderr, stderr
