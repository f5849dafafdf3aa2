"""What one syne-tune MOBSTER suggestion costs (GP refit + acquisition) as a function of the encoding.

    python results/peers-speed/gp_encoding_cost.py [--trials 60] [--repeats 3]

Same data for every encoding: ``--trials`` trials, each reported at 1, 3, 9 epochs (stopping type: until it is stopped) with a loss drawn
from one seeded generator (the first ``--trials`` suggestions random: syne-tune's
``num_init_random``, so that only the timed ones fit the model); then ``--repeats`` suggestions are timed (each refits the GP). Encodings:
one categorical over K identifiers (K = 200, 344, 1000: how the adapters encode a table's cells) and
NB201's six categorical edges over five operations (one-hot: 30 dimensions).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time
from datetime import datetime

import numpy as np

with contextlib.redirect_stdout(io.StringIO()):
    from syne_tune.backend.trial_status import Trial
    from syne_tune.config_space import choice
    from syne_tune.optimizer.baselines import MOBSTER

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


def space(encoding: str) -> dict:
    if encoding == "edges":
        config = {f"edge{e}": choice(OPS) for e in range(6)}
    else:
        config = {"arch": choice([f"c{i:04d}" for i in range(int(encoding))])}
    config["epochs"] = 27
    return config


def time_suggestions(encoding: str, trials: int, repeats: int, seed: int = 0,
                     opt_skip_period: int = 1) -> tuple[int, list[float]]:
    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    scheduler = MOBSTER(space(encoding), metric="loss", mode="min", resource_attr="epoch", max_resource_attr="epochs",
                        grace_period=1, reduction_factor=3, type="stopping", random_seed=seed,
                        search_options={"num_init_random": trials, "opt_skip_period": opt_skip_period})
    rng = np.random.default_rng(seed)
    observations = 0
    for trial_id in range(trials):
        suggestion = scheduler.suggest(trial_id)
        trial = Trial(trial_id=trial_id, config=suggestion.config, creation_time=datetime(2000, 1, 1))
        scheduler.on_trial_add(trial)
        for epoch in (1, 3, 9):
            result = {"epoch": epoch, "loss": float(rng.random()) / epoch, "epochs": 27}
            observations += 1
            if scheduler.on_trial_result(trial, result) != "continue":
                break
        scheduler.on_trial_complete(trial, result)
    seconds = []
    for extra in range(repeats):
        # Each suggestion is told a result, so the next one sees one more observation (as in a run).
        started = time.perf_counter()
        suggestion = scheduler.suggest(trials + extra)
        seconds.append(time.perf_counter() - started)
        trial = Trial(trial_id=trials + extra, config=suggestion.config, creation_time=datetime(2000, 1, 1))
        scheduler.on_trial_add(trial)
        result = {"epoch": 1, "loss": float(rng.random()), "epochs": 27}
        scheduler.on_trial_result(trial, result)
        scheduler.on_trial_complete(trial, result)
    return observations, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--encodings", default="edges,200,344,1000")
    parser.add_argument("--opt-skip-period", type=int, default=1, help="syne-tune's opt_skip_period (default 1)")
    args = parser.parse_args()
    for encoding in args.encodings.split(","):
        observations, seconds = time_suggestions(encoding, args.trials, args.repeats,
                                                 opt_skip_period=args.opt_skip_period)
        print(f"encoding {encoding:>5}, opt_skip_period {args.opt_skip_period}: {observations} observations, "
              f"{np.mean(seconds):.2f} s per suggestion (each: {', '.join(f'{x:.2f}' for x in seconds)})")


if __name__ == "__main__":
    main()
