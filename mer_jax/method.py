"""The parts of the method `config.method` names (mer_jax/methods/), or the defaults where it has none."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import ml_collections
import numpy as np

from mer_jax.core.dataset import Dataset
from mer_jax.core.loop import FoldRun, TrainResult, train_folds
from mer_jax.core.protocols import Folds
from mer_jax.core.stages import is_staged
from mer_jax.data import builds
from mer_jax.methods import packages


def package(config: ml_collections.ConfigDict) -> ModuleType | None:
    """The package `config.method` names; None for '' (a model from outside mer-jax, trained as it is)."""
    name = config.get("method", "")
    if not name:
        return None
    found = packages()
    if name not in found:
        raise ValueError(f"unknown config.method {name!r}; valid: {', '.join(found)}")
    return found[name]


def load(config: ml_collections.ConfigDict) -> Dataset:
    """`config.data` read as the method reads it."""
    return getattr(package(config), "load", builds.load)(config.data)


def training_inputs(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds
) -> tuple[Dataset, Folds, np.ndarray]:
    """What the folds train on, their folds and the clip row of each row (the method's, or the data set)."""
    own = getattr(package(config), "training_inputs", None)
    return own(config, dataset, folds) if own is not None else (dataset, folds, np.arange(dataset.num_samples))


def staged_method(config: ml_collections.ConfigDict) -> ModuleType:
    """The `stages` module of the method `config.method`, for a config with `config.stages`."""
    found = package(config)
    name = f"{found.__name__}.stages" if found is not None else ""
    if not name or importlib.util.find_spec(name) is None:
        staged = [m for m, p in packages().items() if importlib.util.find_spec(f"{p.__name__}.stages")]
        raise ValueError(f"config.stages: config.method {config.get('method', '')!r} trains no stages; "
                         f"methods with stages: {', '.join(staged)}")
    return importlib.import_module(name)


def train(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, run: FoldRun = FoldRun(), **options
) -> TrainResult:
    """Every fold of `folds` over `dataset`, run as `run` says: one model (:func:`mer_jax.core.loop.train_folds`)
    or, with `config.stages`, the method's stages (whose result is the last stage's, on the clips).
    `options`: the method's own (e.g. TLCNN's `images`)."""
    if is_staged(config):
        return staged_method(config).train_stages(config, dataset, folds, run, **options)
    return train_folds(config, dataset, folds, run, **options)
