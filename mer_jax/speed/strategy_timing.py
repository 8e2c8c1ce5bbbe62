"""`train.strategy=auto` decided by measurement: a few steps of each strategy on this machine's devices.

Which strategy is faster depends on the device and the model: on XLA:CPU
`vmap` turns per-fold convolutions into grouped ones and runs many times slower
than `loop` (docs/benchmarks.md), and grouped-convolution gradients are slow on
some GPUs too. So before an `auto` run trains, :func:`choose_strategy` trains
each candidate for a few steps on two of the run's own folds and data, with
the run's model, batch size and tuning, and takes the one with the fewest
milliseconds per fold-step. On the run's own shapes, the loop strategy's
programs are compiled once for the timing and the run both (through the
persistent compilation cache), so on CPU the timing costs about the compile of
the vmap program (docs/benchmarks.md). The timings are cached per (device
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

from mer_jax.core.dataset import Dataset
from mer_jax.core.loop import learning_rate, make_runner
from mer_jax.core.protocols import Folds

CANDIDATES = ("loop", "vmap")
TIMING_STEPS = 3  # optimisation steps per fold in the timed epoch (CPU: one step per call)


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
            "data_on_device": bool(config.train.get("data_on_device", True)),
        },
        sort_keys=True,
    )


def timing_folds(folds: Folds) -> np.ndarray:
    """Two of the run's folds: the one holding out the most samples and the one training on the most.

    Timed on the run's own data, their programs have the shapes of the run's (the widest held-out set,
    the longest epoch), so the loop strategy's compiled programs are the run's own and the persistent
    compilation cache (mer_jax/speed/compile_cache.py) hands them to the run instead of compiling them again.
    """
    widest = int(folds.test_masks.sum(axis=1).argmax())
    longest = int(folds.train_masks.sum(axis=1).argmax())
    if longest == widest:
        longest = (widest + 1) % folds.num_folds
    return np.array([widest, longest])


def measure(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, strategy: str,
    train_labels: np.ndarray | None = None, label_classes: int | None = None,
) -> float:
    """Milliseconds per fold-step of `strategy` on :func:`timing_folds`: TIMING_STEPS steps (or one whole
    epoch where a call runs it, GPU/TPU) after a first, untimed epoch that warms the program up."""

    trial = ml_collections.ConfigDict(config.to_dict())
    trial.train.strategy = strategy
    ids = timing_folds(folds)
    labels = dataset.label if train_labels is None else train_labels
    runner, _ = make_runner(
        trial, dataset, folds.select(ids), ids, labels, np.full(len(ids), config.train.seed), label_classes
    )
    steps = runner.program.steps_per_epoch
    if not runner.program.whole_epoch_per_call:
        steps = min(steps, TIMING_STEPS)
        runner.limit_steps(steps)
    runner.compile()
    runner.run_epoch(0, learning_rate(config.train, 0))  # first calls: allocation, thread start-up
    start = time.perf_counter()
    jax.block_until_ready(runner.run_epoch(1, learning_rate(config.train, 1)))
    return (time.perf_counter() - start) * 1000 / (len(ids) * steps)


def choose_strategy(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, train_labels: np.ndarray | None = None,
    label_classes: int | None = None,
) -> tuple[str, dict[str, float] | None]:
    """(the fastest candidate, candidate -> ms per fold-step), from the cache or measured now on two of
    `folds` (:func:`timing_folds`).

    `train_labels` of `label_classes` classes: what the run trains on instead of the data set's labels
    (:func:`mer_jax.core.loop.train_folds`). Several processes take process 0's choice, so that all train alike.
    """
    chosen, timing = _timed_choice(config, dataset, folds, train_labels, label_classes)
    if jax.process_count() > 1:
        index = multihost_utils.broadcast_one_to_all(np.int32(CANDIDATES.index(chosen)))
        chosen = CANDIDATES[int(index)]
    return chosen, timing


def _timed_choice(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, train_labels: np.ndarray | None,
    label_classes: int | None,
) -> tuple[str, dict[str, float]]:
    path, key = cache_file(), cache_key(config, dataset.input_shape)
    cached = json.loads(path.read_text()) if path.exists() else {}
    timing = cached.get(key)
    if timing is None:
        timing = {
            strategy: measure(config, dataset, folds, strategy, train_labels, label_classes)
            for strategy in CANDIDATES
        }
        cached[key] = timing
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cached, indent=1))
    return min(timing, key=timing.get), timing


def resolved(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, **labels
) -> tuple[ml_collections.ConfigDict, dict | None]:
    """`config` with `train.strategy=auto` decided by timing on `dataset` (a stage of a method: its own data)."""
    if config.train.strategy != "auto":
        return config, None
    config.train.strategy, timing = choose_strategy(config, dataset, folds, **labels)
    return config, timing
