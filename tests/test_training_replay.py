"""Record -> replay: a real (tiny) search recorded by TrainerOracle replays decision for decision on its table."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.oracle import TabularOracle  # noqa: E402
from benchmarks.spaces.nb201 import NB201Space  # noqa: E402
from benchmarks.tabular import TabularBenchmark  # noqa: E402
from benchmarks.training.trainer import TrainerOracle  # noqa: E402
from harness.runner import Runner, run_tabular  # noqa: E402
from harness.workers import ThreadedPool  # noqa: E402
from search.base import Job, Problem, Searcher  # noqa: E402
from tests.conftest import fashion_mnist_or_fail  # noqa: E402


class TinyHalving(Searcher):
    """Synchronous successive halving over ``n`` sampled architectures at rungs 1, 2, 4 epochs."""

    def __init__(self, problem, rng, n=6, rungs=(1, 2, 4)):
        super().__init__(problem, rng)
        archs = []
        while len(archs) < n:
            arch = problem.space.sample(rng)
            if arch not in archs:
                archs.append(arch)
        self.rungs = rungs
        self.queue = [Job(a, rungs[0]) for a in archs]
        self.done: list[dict[str, float]] = [{} for _ in rungs]
        self.size = [n // 2 ** i for i in range(len(rungs))]
        self.running = 0

    def ask(self):
        if not self.queue:
            return None
        self.running += 1
        return self.queue.pop(0)

    def tell(self, job, observation):
        self.running -= 1
        rung = self.rungs.index(job.epochs)
        self.done[rung][job.arch] = self.score(observation.value)
        if len(self.done[rung]) == self.size[rung] and rung + 1 < len(self.rungs):
            ranked = sorted(self.done[rung].items(), key=lambda item: -item[1])  # stable: ties keep report order
            survivors = [a for a, s in ranked[: self.size[rung + 1]] if s > -np.inf]
            self.queue += [Job(a, self.rungs[rung + 1], resume=True) for a in survivors]


@pytest.fixture(scope="module")
def data():
    return fashion_mnist_or_fail(train_size=128, valid_size=128, test_size=64)


def record_and_replay(make, trainer, max_jobs, tmp_path):
    space = NB201Space()
    real_problem = Problem(space, trainer.fidelities, trainer.higher_is_better)
    pool = ThreadedPool(trainer, 1)
    try:
        real = Runner(make(real_problem, np.random.default_rng(7)), pool, budget=1e6, max_jobs=max_jobs).run()
    finally:
        pool.shutdown()
    table = TabularBenchmark.load(trainer.to_table("recorded").save(tmp_path / "recorded.npz"))
    oracle = TabularOracle(table, space, repeat=0)
    assert oracle.fidelities == trainer.fidelities
    replay_problem = Problem(space, oracle.fidelities, oracle.higher_is_better)
    replay = run_tabular(make(replay_problem, np.random.default_rng(7)), oracle, budget=1e6, max_jobs=max_jobs)
    columns = ["arch", "epochs", "resume", "failed", "counted"]
    assert real.trace[columns].values.tolist() == replay.trace[columns].values.tolist()
    assert np.array_equal(real.trace["value"].to_numpy(), replay.trace["value"].to_numpy(), equal_nan=True)
    assert np.allclose(real.trace["cost"].to_numpy(), replay.trace["cost"].to_numpy(), rtol=1e-6)
    assert real.chosen_arch is not None and real.chosen_arch == replay.chosen_arch
    assert real.chosen_value == replay.chosen_value
    return real, table


def test_recorded_search_replays_identically(data, tmp_path):
    trainer = TrainerOracle(data=data, checkpoint_dir=tmp_path / "ckpt", C=4, N=1, batch_size=32, max_epochs=4,
                            fidelities=(1, 2, 4), test_every_epoch=False)
    real, table = record_and_replay(lambda p, r: TinyHalving(p, r), trainer, max_jobs=10, tmp_path=tmp_path)
    assert real.trace["epochs"].tolist() == [1] * 6 + [2] * 3 + [4]
    assert real.trace["resume"].sum() == 4 and len(table) == 6
    assert real.epochs_paid == 6 + 3 + 2  # resumes paid only their extra epochs


def test_recorded_successive_halving_replays_identically(data, tmp_path):
    registry = pytest.importorskip("search.registry")
    trainer = TrainerOracle(data=data, checkpoint_dir=tmp_path / "ckpt", C=4, N=1, batch_size=32, max_epochs=4,
                            test_every_epoch=False)
    real, _ = record_and_replay(lambda p, r: registry.make_searcher("sh", p, r, eta=2, min_epochs=1),
                                trainer, max_jobs=7, tmp_path=tmp_path)
    assert len(real.trace) == 7 and real.trace["resume"].any()
