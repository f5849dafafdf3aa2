"""A real (tiny) search interrupted and resumed from its journal and checkpoints: same search, nothing retrained."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.training.trainer import TrainerOracle  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.journal import JournalingPool, journaled, read_journal  # noqa: E402
from harness.runner import Runner  # noqa: E402
from harness.workers import ThreadedPool  # noqa: E402
from search.base import Job, Problem, Searcher  # noqa: E402
from tests.conftest import fashion_mnist_or_fail  # noqa: E402


class TinyHalving(Searcher):
    """Four sampled architectures at 1 epoch, then the best two continued to 2 epochs."""

    def __init__(self, problem, rng, n=4):
        super().__init__(problem, rng)
        archs = []
        while len(archs) < n:
            arch = problem.space.sample(rng)
            if arch not in archs:
                archs.append(arch)
        self.queue = [Job(a, 1) for a in archs]
        self.scores: dict[str, float] = {}
        self.n = n

    def ask(self):
        return self.queue.pop(0) if self.queue else None

    def tell(self, job, observation):
        if job.epochs == 1:
            self.scores[job.arch] = self.score(observation.value)
            if len(self.scores) == self.n:
                ranked = sorted(self.scores, key=lambda a: -self.scores[a])
                self.queue += [Job(a, 2, resume=True) for a in ranked[: self.n // 2]]


@pytest.fixture(scope="module")
def data():
    return fashion_mnist_or_fail(train_size=128, valid_size=128, test_size=64)


def trainer(data, checkpoint_dir, resume=False):
    oracle = TrainerOracle(data=data, checkpoint_dir=checkpoint_dir, C=4, N=1, batch_size=64, max_epochs=2,
                           fidelities=(1, 2), device="cpu", reuse_checkpoints=resume)
    oracle.trained_epochs = 0
    train_epoch = oracle._train_epoch

    def counting(*args):
        oracle.trained_epochs += 1
        return train_epoch(*args)
    oracle._train_epoch = counting
    return oracle


def search(oracle, wrap=lambda pool: pool, max_jobs=None):
    pool = wrap(ThreadedPool(oracle, 1))
    problem = Problem(oracle.space, oracle.fidelities, oracle.higher_is_better)
    try:
        return Runner(TinyHalving(problem, np.random.default_rng(7)), pool, budget=1e6, max_jobs=max_jobs).run()
    finally:
        pool.shutdown()


def test_interrupted_real_search_resumes_without_retraining(data, tmp_path):
    whole_trainer = trainer(data, tmp_path / "whole")
    whole = search(whole_trainer)
    assert len(whole.trace) == 6 and whole.trace["resume"].sum() == 2 and whole_trainer.trained_epochs == 6

    journal = tmp_path / "run" / "journal.jsonl"
    first_trainer = trainer(data, tmp_path / "run")
    first = search(first_trainer, lambda pool: JournalingPool(pool, journal), max_jobs=3)
    assert first.stopped_because == "max_jobs" and first_trainer.trained_epochs == 3
    recorded = read_journal(journal)
    assert len(recorded) == 3

    again = trainer(data, tmp_path / "run", resume=True)
    calls = []
    evaluate = again.evaluate
    again.evaluate = lambda arch, epochs, **where: calls.append(evaluate(arch, epochs, **where)) or calls[-1]
    resumed = search(again, lambda pool: journaled(pool, journal, resume=True))

    columns = ["arch", "epochs", "resume", "failed", "counted"]
    assert resumed.trace[columns].values.tolist() == whole.trace[columns].values.tolist()
    assert np.array_equal(resumed.trace["value"].to_numpy(), whole.trace["value"].to_numpy())
    assert resumed.chosen_arch == whole.chosen_arch and resumed.chosen_value == whole.chosen_value
    # Nothing done before the interruption is trained again: the 4th architecture (1 epoch) and the second
    # epochs of the two promoted ones are all that is trained; the replayed jobs never reach the trainer, and the
    # promotions continue the checkpoints the interrupted session left.
    assert again.trained_epochs == 3
    assert len(calls) == 3 and all(c.cost > 0 for c in calls)
    assert resumed.trace["cost"].iloc[:3].tolist() == first.trace["cost"].tolist()  # the recorded costs
    # The clock goes on from the journal's last time; the journal now records the whole search.
    assert (resumed.trace["start"].iloc[3:] >= recorded.end_time).all()
    final = read_journal(journal)
    assert len(final) == 6 and final.sessions == 1 and final.running == []


def test_cli_search_resume_continues_the_checkpoint_dirs_journal(tmp_path, capsys, monkeypatch):
    common = ["search", "--train", "fashion-mnist", "--method", "random", "--budget", "3600", "--quiet",
              "--epochs", "2", "--fidelities", "1,2", "--C", "4", "--N", "1", "--train-size", "128",
              "--valid-size", "128", "--test-size", "64", "--batch-size", "64", "--device", "cpu"]

    def chosen(out):
        line = next(line for line in out.splitlines() if line.startswith("chosen:"))
        return line.split(" epochs,")[0]  # the choice, evaluations and epochs (not the wall-clock seconds)

    assert main([*common, "--checkpoint-dir", str(tmp_path / "whole"), "--max-jobs", "3"]) == 0
    whole = chosen(capsys.readouterr().out)
    run = ["--checkpoint-dir", str(tmp_path / "run")]
    assert main([*common, *run, "--max-jobs", "1"]) == 0
    capsys.readouterr()
    assert len(read_journal(tmp_path / "run" / "journal.jsonl")) == 1

    trained = []
    train_epoch = TrainerOracle._train_epoch
    monkeypatch.setattr(TrainerOracle, "_train_epoch", lambda self, *a: trained.append(1) or train_epoch(self, *a))
    assert main([*common, *run, "--max-jobs", "3", "--resume"]) == 0
    captured = capsys.readouterr()
    assert "1 finished jobs are replayed" in captured.err
    assert chosen(captured.out) == whole
    assert len(trained) == 2 * 2  # two new architectures, two epochs each; the first one is not trained again
    journal = read_journal(tmp_path / "run" / "journal.jsonl")
    assert len(journal) == 3 and journal.sessions == 1

    assert main([*common, *run, "--max-jobs", "3"]) == 2
    assert "already records a search: pass --resume" in capsys.readouterr().err
    assert main([*common, *run, "--max-jobs", "3", "--resume", "--seed", "1"]) == 2
    assert "seed 0 there, 1 here" in capsys.readouterr().err
