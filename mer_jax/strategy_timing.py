"""`train.strategy=auto` decided by measurement: a few steps of each strategy on this machine's devices.

Which strategy is faster depends on the device and the model: on XLA:CPU
`vmap` turns per-fold convolutions into grouped ones and runs many times slower
than `loop` (docs/benchmarks.md), and grouped-convolution gradients are slow on
some GPUs too. So before an `auto` run trains, :func:`choose_strategy` trains
each candidate for a few steps on a few folds of a small slice of the run's
own data, with the run's model, batch size and tuning, and takes the one with
the fewest milliseconds per fold-step. The timings are cached per (device
kind and count, model config, batch size, input shape) in
``$XDG_CACHE_HOME/mer_jax/strategy_timing.json`` (``~/.cache`` by default),
so a machine measures a setup once; the report records them
(``strategy_timing``). A forced `train.strategy` skips all of this.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from mer_jax.data import Dataset
from mer_jax.platform import resolve_strategy
from mer_jax.protocols import Folds

CANDIDATES = ("loop", "vmap")
TIMING_FOLDS = 2  # folds trained per candidate
TIMING_STEPS = 3  # optimisation steps per fold in the timed epoch
HELD_OUT = 2  # held-out samples per timing fold


def cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mer_jax" / "strategy_timing.json"


def cache_key(config: ml_collections.ConfigDict, input_shape: tuple[int, ...]) -> str:
    devices = jax.local_devices()
    return json.dumps(
        {
            "devices": [devices[0].device_kind, len(devices)],
            "model": config.model.to_dict(),
            "batch_size": int(config.train.batch_size),
            "input_shape": list(input_shape),
            "steps_per_call": int(config.train.steps_per_call),
            "fold_chunk": int(config.train.fold_chunk),
        },
        sort_keys=True,
    )


def timing_slice(dataset: Dataset, batch_size: int) -> tuple[Dataset, Folds]:
    """The first samples of `dataset`, as many as TIMING_FOLDS folds of TIMING_STEPS batches need, and those folds."""
    size = TIMING_STEPS * batch_size + TIMING_FOLDS * HELD_OUT
    if size > len(dataset.label):
        raise ValueError(f"the data set has {len(dataset.label)} samples; timing the strategies needs {size}")
    part = dataset.take(np.arange(size))
    masks = np.zeros((TIMING_FOLDS, size), bool)
    for fold in range(TIMING_FOLDS):
        masks[fold, size - (fold + 1) * HELD_OUT : size - fold * HELD_OUT] = True
    return part, Folds(masks, tuple(f"timing-{fold}" for fold in range(TIMING_FOLDS)))


def measure(config: ml_collections.ConfigDict, dataset: Dataset, strategy: str) -> float:
    """Milliseconds per fold-step of `strategy`: the second epoch of TIMING_FOLDS folds, compiled and warmed up."""
    from mer_jax.train import learning_rate, make_runner  # train imports this module

    trial = ml_collections.ConfigDict(config.to_dict())
    trial.train.strategy = strategy
    part, folds = timing_slice(dataset, config.train.batch_size)
    ids = np.arange(folds.num_folds)
    runner, _ = make_runner(trial, part, folds, ids, part.label, np.full(folds.num_folds, config.train.seed))
    runner.compile()
    runner.run_epoch(0, learning_rate(config.train, 0))  # first calls: allocation, thread start-up
    start = time.perf_counter()
    jax.block_until_ready(runner.run_epoch(1, learning_rate(config.train, 1)))
    return (time.perf_counter() - start) * 1000 / (folds.num_folds * TIMING_STEPS)


def choose_strategy(config: ml_collections.ConfigDict, dataset: Dataset) -> tuple[str, dict[str, float] | None]:
    """(the fastest candidate, candidate -> ms per fold-step), from the cache or measured now.

    A data set too small to time on keeps the rule (`platform.resolve_strategy`) and no timing.
    Several processes take process 0's choice, so that all train alike.
    """
    if TIMING_STEPS * config.train.batch_size + TIMING_FOLDS * HELD_OUT > len(dataset.label):
        return resolve_strategy("auto", jax.default_backend()), None
    chosen, timing = _timed_choice(config, dataset)
    if jax.process_count() > 1:
        index = multihost_utils.broadcast_one_to_all(np.int32(CANDIDATES.index(chosen)))
        chosen = CANDIDATES[int(index)]
    return chosen, timing


def _timed_choice(config: ml_collections.ConfigDict, dataset: Dataset) -> tuple[str, dict[str, float]]:
    path, key = cache_file(), cache_key(config, dataset.input_shape)
    cached = json.loads(path.read_text()) if path.exists() else {}
    timing = cached.get(key)
    if timing is None:
        timing = {strategy: measure(config, dataset, strategy) for strategy in CANDIDATES}
        cached[key] = timing
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cached, indent=1))
    return min(timing, key=timing.get), timing
