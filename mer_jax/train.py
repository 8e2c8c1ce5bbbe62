"""train_and_evaluate: load the data, cut the protocol's folds, train every fold (and seed) at once, report.

The folds train in mer_jax/core/loop.py (`train_folds`), or stage by stage for a method with stages
(mer_jax/methods/); the report is mer_jax/core/report.py's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import ml_collections
import numpy as np

from mer_jax import method
from mer_jax.core import distributed, final_model, protocols, report
from mer_jax.core.loop import FoldRun, TrainResult, check_dataset_matches_config, fit_summary
from mer_jax.core.dataset import Dataset
from mer_jax.core.protocols import Folds
from mer_jax.core.seeds import summarize_seeds
from mer_jax.core.stages import is_staged
from mer_jax.data import builds
from mer_jax.data import variants
from mer_jax.speed.strategy_timing import choose_strategy


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *, progress: bool = True) -> dict:
    """Loads the data, trains every fold of the protocol and writes the report into `workdir`.

    Started again with the same workdir and config, it resumes from the last checkpoint.
    With `train.final_model`, one more fold trains on every subject and is saved in
    `workdir/final_model` for `mer-jax predict` (mer_jax/core/final_model.py); the report
    covers the cross-validation folds only.
    """
    staged = is_staged(config)
    if staged and config.train.final_model:
        raise ValueError("train.final_model is not available for staged training (mer-jax predict reads one model)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = method.load(config)  # one row per clip, what the report scores, + data.augment's training rows
    folds = protocols.folds_of_config(
        config.protocol, subjects=dataset.subject, labels=dataset.label, clip_of_row=variants.clip_of_row(dataset)
    )
    # What the folds train on: the clips, or with data.mask=per_fold one masked copy per fold (row -> clip_of_row)
    inputs, folds, clip_of_row = method.training_inputs(config, dataset, folds)
    check_dataset_matches_config(inputs, config)
    strategy_timing = None
    if config.train.strategy == "auto" and not staged:  # decided by timing each strategy here (cached)
        config = config.copy_and_resolve_references()
        config.train.strategy, strategy_timing = choose_strategy(config, inputs, folds)
    writer = distributed.is_writer()
    if writer:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
    seeds = config.train.seed + np.arange(config.train.num_seeds)
    trained, fold_ids, fold_seeds = folds_of_seeds(folds, seeds, final=config.train.final_model)
    final_fold = len(seeds) * folds.num_folds if config.train.final_model else None
    mine = distributed.share(trained.num_folds, final_fold=final_fold)  # every fold in a single-process run
    checkpoints = workdir / "checkpoints"  # one for all processes, each writing its folds (mer_jax/core/checkpoint.py)
    run = FoldRun(fold_ids=fold_ids[mine], fold_seeds=fold_seeds[mine], checkpoint_dir=checkpoints,
                  log_dir=workdir if writer else None, progress=progress and writer)
    local = method.train(config, inputs, trained.select(mine), run)
    if config.train.final_model and writer:  # process 0 trained the final fold
        final = jax.tree.map(lambda leaf: leaf[list(mine).index(final_fold)], local.state)
        save_final_model(workdir, config, dataset, inputs, final)
    result = gather_result(local, trained, mine, final_fold)
    built = evaluation_report(config, dataset, folds, clip_of_row, result, seeds, strategy_timing)
    if writer:
        report.write_report(workdir, built, history=result.fold_range(0, folds.num_folds).history)
    return built


def save_final_model(
    workdir: Path, config: ml_collections.ConfigDict, dataset: Dataset, inputs: Dataset, state
) -> None:
    """The model of every subject (`state`: its params and stats) for `mer-jax predict`, with the build's
    preprocessing (mer_jax/core/final_model.py)."""
    is_built = "/" in config.data.name
    final_model.save(
        workdir, config, class_names=dataset.class_names, input_shape=inputs.input_shape,
        params=state["params"], stats=state["stats"],
        variant=builds.build_metadata(config.data.name, config.data.data_dir).get("variant") if is_built else None,
    )


def evaluation_report(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, clip_of_row: np.ndarray,
    result: TrainResult, seeds: np.ndarray, strategy_timing: dict | None,
) -> dict:
    """report.json's contents: train.seed's held-out predictions scored against the clips' labels, per fold,
    subject and source data set, every seed's scores beside them, and how the run trained."""
    num_folds = folds.num_folds
    per_seed = [result.fold_range(s * num_folds, (s + 1) * num_folds) for s in range(len(seeds))]
    first = per_seed[0]  # train.seed's: the report of a single-seed run
    index = clip_of_row[first.test_index[first.test_valid]]
    fold_of_sample = np.broadcast_to(np.arange(num_folds)[:, None], first.test_index.shape)[first.test_valid]
    over_seeds = summarize_seeds(
        dataset.label[index],
        [seed.test_logits[seed.test_valid].argmax(-1) for seed in per_seed],
        dataset.subject[index],
        dataset.num_classes,
        seeds,
    )
    built = report.build_report(
        labels=dataset.label[index],
        predictions=first.test_logits[first.test_valid].argmax(-1),
        num_classes=dataset.num_classes,
        class_names=dataset.class_names,
        subjects=dataset.subject[index],
        datasets=dataset.dataset[index],
        sample_ids=dataset.sample_id[index],
        folds=fold_of_sample,
        fold_names=folds.names,
        strategy=result.strategy,
        train_seconds=result.train_seconds,
        extra={
            "compile_seconds": result.compile_seconds,
            "device_memory_per_fold_bytes": result.memory_per_fold,
            "protocol": config.protocol.name,
            "method": config.method,
            "model": config.model.name,
            "variant": config.model.get("variant", ""),
            "shuffle_labels": bool(config.data.shuffle_labels),
            "stop_loss": float(config.train.stop_loss),
            "strategy_timing": strategy_timing,  # ms per fold-step of each strategy; None: strategy forced
            **({"stages": result.stages} if is_staged(config) else {"fit": fit_summary(first)}),
            "devices": [str(d) for d in jax.devices()],
            **over_seeds,
        },
    )
    for entry in built["per_fold"]:  # train.seed's folds, as the tables
        entry["epochs_trained"] = int(first.epochs_trained[entry["fold"]])
        entry["train_examples_per_epoch"] = int(folds.train_masks[entry["fold"]].sum())
    return built


def gather_result(local: TrainResult, trained: Folds, mine: np.ndarray, final_fold: int | None) -> TrainResult:
    """The result of every fold of `trained` from each process's `local` result of its folds `mine`
    (mer_jax/core/distributed.py); the local result itself in a single-process run. The state stays local."""
    if jax.process_count() == 1:
        return local
    width = int(trained.test_masks.sum(axis=1).max())  # held-out slots: the same on every process

    def widened(values: np.ndarray) -> np.ndarray:
        out = np.zeros((values.shape[0], width, *values.shape[2:]), values.dtype)
        out[:, : values.shape[1]] = values
        return out

    per_fold = {
        "test_logits": widened(local.test_logits),
        "test_index": widened(local.test_index),
        "test_valid": widened(local.test_valid),
        "epochs_trained": local.epochs_trained,
        "train_prior": local.train_prior,
        **{f"history/{name}": values.T for name, values in local.history.items()},
    }
    joined = distributed.gather(per_fold, trained.num_folds, final_fold=final_fold)
    return dataclasses.replace(
        local,
        test_logits=joined["test_logits"],
        test_index=joined["test_index"],
        test_valid=joined["test_valid"],
        epochs_trained=joined["epochs_trained"],
        train_prior=joined["train_prior"],
        history={name: joined[f"history/{name}"].T for name in local.history},
        train_seconds=distributed.maximum(local.train_seconds),
        compile_seconds=distributed.maximum(local.compile_seconds),
        state=None,
    )


def folds_of_seeds(folds: Folds, seeds: np.ndarray, *, final: bool) -> tuple[Folds, np.ndarray, np.ndarray]:
    """Every fold once per seed (seed-major), then with `final` the fold of everything for the first seed.

    Returns (folds, fold ids, fold seeds) for :func:`train_folds`: fold f of seed s keeps fold f's id,
    so it trains as fold f of a single-seed run with `train.seed = s`.
    """
    if len(seeds) < 1:
        raise ValueError(f"train.num_seeds must be >= 1, got {len(seeds)}")
    names = [f"{name}@seed{seed}" if len(seeds) > 1 else name for seed in seeds for name in folds.names]
    repeated = folds.select(np.tile(np.arange(folds.num_folds), len(seeds)), tuple(names))
    fold_ids = np.tile(np.arange(folds.num_folds), len(seeds))
    fold_seeds = np.repeat(seeds, folds.num_folds)
    if final:
        repeated = repeated.with_fold_of_everything(final_model.FOLD_NAME)
        fold_ids = np.append(fold_ids, folds.num_folds)
        fold_seeds = np.append(fold_seeds, seeds[0])
    return repeated, fold_ids, fold_seeds


