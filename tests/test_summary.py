"""pmfnas report: SUMMARY.md and its figure from several compare folders."""
import json

import pandas as pd
import pytest
from matplotlib.image import imread

from harness.cli import main
from harness.comparison import compare
from harness.summary import read_folder, summary_tables
from tests.conftest import synthetic_table


def hand_folder(path, regrets: dict, budget=100.0, title="hand", settings=None):
    """A compare folder written by hand: runs.csv with the given regrets per method (one per seed)."""
    path.mkdir(parents=True)
    rows = [{"method": m, "seed": s, "budget": budget, "regret": r} for m, values in regrets.items()
            for s, r in enumerate(values)]
    pd.DataFrame(rows).to_csv(path / "runs.csv", index=False)
    if title is not None:
        (path / "summary.md").write_text(f"# Comparison on {title}\n\nMetric: ...\n")
    if settings is not None:
        (path / "settings.json").write_text(json.dumps(settings))
    return path


def test_ranks_best_other_and_one_sided_p_values(tmp_path):
    folder = read_folder(hand_folder(tmp_path / "a", {
        "good": [0.0, 0.1, 0.0, 0.2, 0.1, 0.0],
        "fair": [0.1, 0.2, 0.1, 0.3, 0.2, 0.1],   # 0.1 worse than good on every seed
        "poor": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]}))  # worst on every seed
    [(key, table)] = summary_tables([folder])
    assert key == ("hand", 100.0, None)
    assert table.index.tolist() == ["good", "fair", "poor"]
    assert table["mean_rank"].tolist() == [1.0, 2.0, 3.0]
    assert table["best_other"].tolist() == ["fair", "good", "good"]
    assert table.loc["good", "median_difference"] == pytest.approx(-0.1)
    # 6 same-sign differences: one-sided p = 2^-6 in the true direction, 1 in the other.
    assert table.loc["good", "p_better"] == pytest.approx(1 / 64) and table.loc["poor", "p_worse"] == pytest.approx(1 / 64)
    assert table.loc["good", "p_worse"] == 1.0
    # Holm over the 4 distinct directional tests {good<fair, fair<good, poor<good, good<poor} = {1/64, 1, 1, 1/64}.
    assert table.loc["good", "p_better_holm"] == pytest.approx(4 / 64)
    assert table.loc["fair", "p_worse_holm"] == pytest.approx(4 / 64)
    assert table.loc["poor", "p_worse_holm"] == pytest.approx(4 / 64)
    assert table.attrs["n_tests"] == 4


def test_report_of_two_compare_folders(tmp_path, capsys):
    path = tmp_path / "t.npz"
    synthetic_table(n_archs=60, n_epochs=27).save(path)
    small, large = tmp_path / "small", tmp_path / "large"
    compare(str(path), ["random", "hyperband"], budget=1500, seeds=3, out=small, processes=1)
    compare(str(path), ["random", "hyperband"], budget=3000, seeds=3, out=large, processes=1)
    (small / "settings.json").unlink()  # a folder written before compare recorded its settings: read summary.md
    # The settings file of a compare folder: used when present.
    (large / "settings.json").write_text(json.dumps({"benchmark": "synthetic-large", "budget": 3000, "workers": 2,
                                                     "methods": ["random", "hyperband"], "seeds": [0, 1, 2]}))
    out = tmp_path / "results" / "SUMMARY.md"
    assert main(["report", str(small), str(large), "--out", str(out)]) == 0
    text = out.read_text()
    assert f"`pmfnas report {small} {large} --out {out}`" in text
    assert "## synthetic, budget 1,500 simulated s, workers unknown" in text
    assert "## synthetic-large, budget 3,000 simulated s, 2 workers" in text
    runs = pd.read_csv(large / "runs.csv")
    hyperband = runs[runs["method"] == "hyperband"]["regret"]
    assert f"| hyperband | 3 | {hyperband.mean():.4g} ± {hyperband.std():.4g} | {hyperband.median():.4g} |" in text
    assert imread(out.with_suffix(".png")).shape[0] > 200
    assert "wrote" in capsys.readouterr().out


def test_labels_name_the_folders(tmp_path):
    a = hand_folder(tmp_path / "a", {"x": [0.1, 0.2], "y": [0.2, 0.3]}, title=None)
    b = hand_folder(tmp_path / "b", {"x": [0.1, 0.2], "y": [0.2, 0.3]}, title=None)
    out = tmp_path / "S.md"
    assert main(["report", str(a), str(b), "--label", "first", "--label", "second", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## first, budget 100" in text and "## second, budget 100" in text


@pytest.mark.parametrize("problem, message", [
    ("no runs", "has no runs.csv: not a 'pmfnas compare' output folder"),
    ("no name", "no settings.json and no summary.md naming its benchmark: give --label"),
    ("duplicate", "x seed 0 is in both"),
    ("budget mismatch", "says budget 50 but"),
    ("labels", "1 labels for 2 folders"),
])
def test_bad_folders_are_refused_and_nothing_is_written(tmp_path, capsys, problem, message):
    a = hand_folder(tmp_path / "a", {"x": [0.1, 0.2], "y": [0.2, 0.3]})
    b = tmp_path / "b"
    extra = []
    if problem == "no runs":
        b.mkdir()
    elif problem == "no name":
        hand_folder(b, {"x": [0.1]}, title=None)
    elif problem == "duplicate":
        hand_folder(b, {"x": [0.3]})
    elif problem == "budget mismatch":
        hand_folder(b, {"x": [0.3]}, settings={"benchmark": "s", "budget": 50, "workers": 1})
    else:
        hand_folder(b, {"x": [0.3]})
        extra = ["--label", "only-one"]
    out = tmp_path / "out" / "SUMMARY.md"
    assert main(["report", str(a), str(b), *extra, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.parent.exists()  # not even the folder it would have gone in


def test_a_method_alone_in_its_group_is_reported_without_a_comparison(tmp_path, capsys):
    alone = hand_folder(tmp_path / "alone", {"x": [0.1, 0.3]})
    out = tmp_path / "S.md"
    assert main(["report", str(alone), "--out", str(out)]) == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| x |"))
    assert row.split(" | ")[1:6] == ["2", "0.2 ± 0.1414", "0.2", "1", "—"]


def test_report_out_below_a_file_names_the_file(tmp_path, capsys):
    folder = hand_folder(tmp_path / "f", {"x": [0.1], "y": [0.2]})
    (tmp_path / "a-file").write_text("")
    assert main(["report", str(folder), "--out", str(tmp_path / "a-file" / "S.md")]) == 2
    assert "a-file is a file, not a directory" in capsys.readouterr().err
