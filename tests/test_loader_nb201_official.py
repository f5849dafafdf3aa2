"""Round-trip tests of the official NAS-Bench-201 / NATS-tss converter on tiny files in the official layout.

The real files (2-5 GB) cannot be downloaded in CI, so each test writes a tiny benchmark with the official
classes (``ArchResults``, ``ResultsCount`` and their ``state_dict()``), saved the way the official files are
(``torch.save`` for NAS-Bench-201, ``nats_bench.pickle_save`` for NATS-tss), and checks that every value put
in comes back out of the converted table at the right (architecture, repeat, epoch).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from benchmarks.loaders.nb201_official import (DATASETS, convert_official, describe_sources, detect_kind)
from benchmarks.tabular import BenchmarkFormatError, TabularBenchmark

EPOCHS = 200
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
]
# Seeds recorded per (architecture, dataset) for hp='200'. Arch 1 has one seed (not the smallest one, so
# packing from slot 0 is visible) and different seeds per run set; arch 3 was never evaluated.
SEEDS = {
    0: {"cifar10-valid": [777, 888], "cifar10": [777, 888], "cifar100": [777, 888], "ImageNet16-120": [777, 888]},
    1: {"cifar10-valid": [888], "cifar10": [777, 999], "cifar100": [999], "ImageNet16-120": [777]},
    2: {"cifar10-valid": [777, 888, 999], "cifar10": [777, 888, 999], "cifar100": [777, 888, 999],
        "ImageNet16-120": [777, 888, 999]},
    3: {},
}
EVAL_SPLITS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
               "cifar100": ("x-valid", "x-test", "ori-test"), "ImageNet16-120": ("x-valid", "x-test", "ori-test")}
# Holes punched into the tiny file after building it: (arch, dataset, seed) -> what is missing.
MISSING_VALID_EPOCH = (0, "cifar10-valid", 888, 149)  # x-valid@149 absent -> epoch 150 NaN
NO_TRAIN_TIMES = (2, "cifar100", 999)                 # train_times None -> seconds NaN


def _values(arch: int, dataset: str, seed: int):
    """The synthetic record of one run, deterministic so the tests can recompute it."""
    rng = np.random.default_rng([arch, DATASETS.index(dataset), seed])
    record = {"train_acc": rng.uniform(10, 100, EPOCHS), "train_loss": rng.uniform(0, 3, EPOCHS),
              "train_time": rng.uniform(5, 20, EPOCHS), "eval": {}}
    for split in EVAL_SPLITS[dataset]:
        record["eval"][split] = (rng.uniform(10, 100, EPOCHS), rng.uniform(0, 3, EPOCHS), rng.uniform(0.5, 2, EPOCHS))
    return record


def _build(module, numpy_scalar_latency: bool = False) -> dict:
    """{arch_index: {hp: ArchResults state_dict}} built with the official classes of ``module``."""
    ArchResults, ResultsCount = module.ArchResults, module.ResultsCount
    arch2infos = {}
    for index, arch_str in enumerate(ARCHS):
        full = ArchResults(index, arch_str)
        for dataset, seeds in SEEDS[index].items():
            for seed in seeds:
                rec = _values(index, dataset, seed)
                config = {"name": "infer.tiny", "C": 16, "N": 5, "arch_str": arch_str, "num_classes": 10}
                latency = [np.float64(0.01)] if numpy_scalar_latency else [0.01]
                result = ResultsCount(dataset, None, {i: float(v) for i, v in enumerate(rec["train_acc"])},
                                      {i: float(v) for i, v in enumerate(rec["train_loss"])}, 0.5, 10.0, config,
                                      seed, EPOCHS, latency)
                result.update_train_info(result.train_acc1es, None, result.train_losses,
                                         {i: float(v) for i, v in enumerate(rec["train_time"])})
                accs, losses, times = {}, {}, {}
                for split, (acc, loss, time) in rec["eval"].items():
                    for i in range(EPOCHS):
                        accs[f"{split}@{i}"], losses[f"{split}@{i}"], times[f"{split}@{i}"] = \
                            float(acc[i]), float(loss[i]), float(time[i])
                result.update_eval(accs, losses, times)
                if (index, dataset, seed) == MISSING_VALID_EPOCH[:3]:
                    key = f"x-valid@{MISSING_VALID_EPOCH[3]}"
                    del result.eval_acc1es[key], result.eval_losses[key], result.eval_times[key]
                if (index, dataset, seed) == NO_TRAIN_TIMES:
                    result.train_times = None
                full.update(dataset, seed, result)
        less = ArchResults(index, arch_str)  # the 12-epoch results: not converted, left empty
        arch2infos[index] = {"12": less.state_dict(), "200": full.state_dict()}
    return arch2infos


def _nb201_file(tmp_path, name="NAS-Bench-201-v1_1-096897.pth", **kwargs):
    torch = pytest.importorskip("torch")
    api_utils = pytest.importorskip("nas_201_api.api_utils")
    infos = _build(api_utils, **kwargs)
    data = {"meta_archs": list(ARCHS),
            "arch2infos": {i: {"less": h["12"], "full": h["200"]} for i, h in infos.items() if SEEDS[i]},
            "evaluated_indexes": [i for i in infos if SEEDS[i]]}
    path = tmp_path / name
    torch.save(data, path)
    return path


def _nats_file(tmp_path):
    api_utils = pytest.importorskip("nats_bench.api_utils")
    infos = _build(api_utils)
    data = {"meta_archs": list(ARCHS), "arch2infos": {i: h for i, h in infos.items() if SEEDS[i]},
            "evaluated_indexes": [i for i in infos if SEEDS[i]]}
    api_utils.pickle_save(data, str(tmp_path / "NATS-tss-v1_0-3ffb9.pickle"))  # appends .pbz2
    return tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2"


def _nats_archive(tmp_path):
    """The unpacked ``NATS-tss-v1_0-3ffb9-simple`` layout read with fast_mode=True."""
    api_utils = pytest.importorskip("nats_bench.api_utils")
    infos = _build(api_utils)
    root = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    api_utils.pickle_save({"meta_archs": list(ARCHS)}, str(root / "meta.pickle"))
    for index, by_hp in infos.items():
        api_utils.pickle_save(by_hp, str(root / f"{index:06d}.pickle"))
    return root


# Which (run set, split) each curve reads, per dataset (the official conventions).
SEARCH = {"cifar10-valid": "cifar10-valid", "cifar10": "cifar10-valid", "cifar100": "cifar100",
          "ImageNet16-120": "ImageNet16-120"}
TEST_SPLIT = {"cifar10-valid": "ori-test", "cifar10": "ori-test", "cifar100": "x-test", "ImageNet16-120": "x-test"}


def _check_round_trip(table: TabularBenchmark, dataset: str) -> None:
    f32 = np.float32
    assert table.arch_ids.tolist() == ARCHS
    assert table.max_epochs == EPOCHS and table.epochs.tolist() == list(range(1, EPOCHS + 1))
    meta = table.metadata
    assert (meta.space, meta.dataset, meta.metric, meta.higher_is_better) == ("nb201", dataset, "valid_accuracy", True)
    assert meta.licence.startswith("MIT")
    search_runs, report_runs = SEARCH[dataset], dataset
    expected_slots = max(max((len(v) for v in SEEDS[i].values()), default=0) for i in SEEDS)
    assert table.n_repeat_slots == expected_slots
    for index in range(len(ARCHS)):
        search_seeds = sorted(SEEDS[index].get(search_runs, []))
        report_seeds = sorted(SEEDS[index].get(report_runs, []))
        assert table.n_repeats[index] == len(search_seeds)
        for slot, seed in enumerate(search_seeds):
            rec = _values(index, search_runs, seed)
            acc, loss, time = (np.array(a, dtype=np.float64) for a in rec["eval"]["x-valid"])
            seconds = rec["train_time"] + time
            if (index, search_runs, seed) == MISSING_VALID_EPOCH[:3]:
                acc[MISSING_VALID_EPOCH[3]] = loss[MISSING_VALID_EPOCH[3]] = np.nan
                seconds[MISSING_VALID_EPOCH[3]] = np.nan
            if (index, search_runs, seed) == NO_TRAIN_TIMES:
                seconds[:] = np.nan
            np.testing.assert_array_equal(table.curves["valid"][index, slot], acc.astype(f32))
            np.testing.assert_array_equal(table.curves["valid_loss"][index, slot], loss.astype(f32))
            np.testing.assert_array_equal(table.seconds[index, slot], seconds.astype(f32))
        for slot, seed in enumerate(report_seeds):
            rec = _values(index, report_runs, seed)
            acc, loss, _ = rec["eval"][TEST_SPLIT[dataset]]
            np.testing.assert_array_equal(table.curves["test"][index, slot], acc.astype(f32))
            np.testing.assert_array_equal(table.curves["test_loss"][index, slot], loss.astype(f32))
            np.testing.assert_array_equal(table.curves["train"][index, slot], rec["train_acc"].astype(f32))
            np.testing.assert_array_equal(table.curves["train_loss"][index, slot], rec["train_loss"].astype(f32))
        # Padding: every slot after an architecture's last seed is NaN, per side.
        for name in ("valid", "valid_loss"):
            assert np.all(np.isnan(table.curves[name][index, len(search_seeds):]))
        assert np.all(np.isnan(table.seconds[index, len(search_seeds):]))
        for name in ("test", "test_loss", "train", "train_loss"):
            assert np.all(np.isnan(table.curves[name][index, len(report_seeds):]))
    assert not table.failed.any()


@pytest.mark.parametrize("dataset", DATASETS)
def test_nb201_pth_round_trip(tmp_path, dataset):
    path = _nb201_file(tmp_path)
    table = convert_official(path, dataset)
    _check_round_trip(table, dataset)
    assert table.metadata.extra["kind"] == "nb201"
    assert "NAS-Bench-201-v1_1-096897.pth" in table.metadata.provenance
    # Spot-check against the official accessor too: epoch 10 of arch 0, first seed, through get_more_info.
    from nas_201_api import NASBench201API
    api = NASBench201API(str(path), verbose=False)
    info = api.get_more_info(0, SEARCH[dataset], iepoch=9, hp="200", is_random=777)
    assert table.curves["valid"][0, 0, 9] == np.float32(info["valid-accuracy"])
    assert table.curves["valid_loss"][0, 0, 9] == np.float32(info["valid-loss"])


def test_nb201_cifar10_maps_valid_to_cifar10_valid_runs_and_says_so(tmp_path):
    table = convert_official(_nb201_file(tmp_path, name="NAS-Bench-201-v1_0-e61699.pth"), "cifar10")
    notes = table.metadata.notes
    assert "cifar10-valid" in notes and "x-valid" in notes and "train+valid" in notes
    assert table.metadata.extra["splits"]["valid"] == ["cifar10-valid", "x-valid"]
    assert table.metadata.extra["splits"]["test"] == ["cifar10", "ori-test"]
    # Arch 1: valid from its single cifar10-valid seed (888), test from its two cifar10 seeds (777, 999).
    assert table.n_repeats[1] == 1
    assert not np.isnan(table.curves["test"][1, 1]).any() and np.isnan(table.curves["valid"][1, 1]).all()


def test_nb201_torch_weights_only_fallback(tmp_path):
    """A file holding numpy scalars is refused by torch>=2.6's weights-only loader; we still read it, loudly."""
    path = _nb201_file(tmp_path, numpy_scalar_latency=True)
    with pytest.warns(UserWarning, match="full pickle"):
        table = convert_official(path, "cifar100")
    _check_round_trip(table, "cifar100")


def test_nb201_table_survives_save_and_load(tmp_path):
    table = convert_official(_nb201_file(tmp_path), "ImageNet16-120")
    again = TabularBenchmark.load(table.save(tmp_path / "out.npz"))
    _check_round_trip(again, "ImageNet16-120")
    assert again.metadata == table.metadata


@pytest.mark.parametrize("dataset", ["cifar10-valid", "cifar10", "ImageNet16-120"])
def test_nats_tss_file_and_archive_round_trip(tmp_path, dataset):
    file_table = convert_official(_nats_file(tmp_path), dataset)
    _check_round_trip(file_table, dataset)
    assert file_table.metadata.extra["kind"] == "nats-tss"
    dir_table = convert_official(_nats_archive(tmp_path), dataset)
    _check_round_trip(dir_table, dataset)
    for name in file_table.curves:
        np.testing.assert_array_equal(file_table.curves[name], dir_table.curves[name])
    np.testing.assert_array_equal(file_table.seconds, dir_table.seconds)


def test_detect_kind(tmp_path):
    pytest.importorskip("nats_bench")
    assert detect_kind(_nats_file(tmp_path)) == "nats-tss"
    assert detect_kind(_nats_archive(tmp_path)) == "nats-tss"
    odd = tmp_path / "renamed.bin"
    odd.write_bytes((tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2").read_bytes())
    assert detect_kind(odd) == "nats-tss"
    assert convert_official(odd, "cifar100").n_repeat_slots == 3
    assert detect_kind(tmp_path / "NAS-Bench-201-v1_0-e61699.pth") == "nb201"


# ------------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize("name", ["NAS-Bench-201-v1_1-096897.pth", "NATS-tss-v1_0-3ffb9.pickle.pbz2"])
def test_missing_file_names_the_path(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(FileNotFoundError, match=str(path).replace("\\", "\\\\")):
        convert_official(path, "cifar10-valid")


def test_corrupt_nats_file_names_the_path(tmp_path):
    pytest.importorskip("nats_bench")
    path = tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2"
    path.write_bytes(b"BZh91AY&SY this is not a bz2 stream")
    with pytest.raises(BenchmarkFormatError, match="NATS-tss-v1_0-3ffb9.pickle.pbz2"):
        convert_official(path, "cifar100")
    archive = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    archive.mkdir()
    with pytest.raises(BenchmarkFormatError, match="NATS-tss-v1_0-3ffb9-simple"):
        convert_official(archive, "cifar100")


def test_corrupt_nb201_file_names_the_path(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("nas_201_api")
    path = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(BenchmarkFormatError, match="NAS-Bench-201-v1_0-e61699.pth") as refused:
        convert_official(path, "cifar10")
    assert "weights_only" not in str(refused.value)  # torch's advice to load it as a full pickle is no cure here
    wrong = tmp_path / "wrong.pth"
    torch.save({"meta_archs": ARCHS}, wrong)  # a readable pickle without the official keys
    with pytest.raises(BenchmarkFormatError, match="wrong.pth"):
        convert_official(wrong, "cifar10")


def test_missing_api_gives_install_hint(tmp_path, monkeypatch):
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    path.write_bytes(b"\x80")
    monkeypatch.setitem(sys.modules, "nas_201_api", None)  # makes `import nas_201_api` raise ImportError
    with pytest.raises(ImportError, match=r'pmf-nas\[nb201,train\]'):
        convert_official(path, "cifar10")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="cifar10-valid"):
        convert_official(tmp_path, "cifar-10")
    with pytest.raises(ValueError, match="kind"):
        convert_official(tmp_path, "cifar10", kind="nb101")


def test_describe_sources_lists_the_official_files():
    files = {s["file"]: s for s in describe_sources()}
    assert {"NAS-Bench-201-v1_0-e61699.pth", "NAS-Bench-201-v1_1-096897.pth",
            "NATS-tss-v1_0-3ffb9.pickle.pbz2"} <= set(files)
    assert all(s["url"].startswith("https://") and s["kind"] in ("nb201", "nats-tss") for s in files.values())
