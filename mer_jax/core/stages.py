"""What every method trained in stages shares: each stage's one-model config, its folds over frames, and
what the report keeps of it.

A staged config has `config.stages`, one section per stage with its own `model`, `train` (over the run's)
and further keys of the method's (mer_jax/methods/).
"""

from __future__ import annotations

import ml_collections
import numpy as np

from mer_jax.core.loop import TrainResult, fit_summary
from mer_jax.core.protocols import Folds


def is_staged(config: ml_collections.ConfigDict) -> bool:
    """Whether `config` trains in stages (`config.stages`) rather than one model (`config.model`)."""
    return "stages" in config


def stage_config(config: ml_collections.ConfigDict, stage: str) -> ml_collections.ConfigDict:
    """The one-model config of `stage`: its `model`, and `train` with the stage's own keys over the run's."""
    if stage not in config.stages:
        raise ValueError(f"config.stages has no stage {stage!r}; it has {', '.join(config.stages)}")
    part = config.stages[stage]
    unknown = sorted(set(part.train) - set(config.train))
    if unknown:
        raise ValueError(f"config.stages.{stage}.train sets unknown key(s) {unknown}; valid: {sorted(config.train)}")
    single = ml_collections.ConfigDict(config.to_dict())
    del single["stages"]
    single.model = ml_collections.ConfigDict(part.model.to_dict())
    single.train.update(part.train.to_dict())
    return single


def frame_folds(folds: Folds, clip: np.ndarray) -> Folds:
    """Stage 1's folds: each trains on the frames of the clips it trains on and tests on none."""
    return Folds(np.zeros((folds.num_folds, len(clip)), bool), folds.names, folds.train_masks[:, clip])


def stage_record(result: TrainResult, timing: dict | None) -> dict:
    """What the report keeps of one stage (train_and_evaluate's report.json `stages`)."""
    return {
        "strategy": result.strategy,
        "strategy_timing": timing,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "epochs_trained": result.epochs_trained.tolist(),
        "device_memory_per_fold_bytes": result.memory_per_fold,
        **fit_summary(result),  # fold means of the last epoch's training metrics, and the training class prior
    }
