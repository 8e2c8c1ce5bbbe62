"""The fold-parallel trainer: every fold of a protocol trained at once, from one compiled program.

Each fold has its own state (parameters, BatchNorm statistics, optimizer state),
stacked on a leading fold axis. Each fold draws its mini-batches only from its
own training samples, so BatchNorm never sees a held-out subject, and each
fold's random numbers depend only on (train.seed, fold index, epoch, step): a
fold trained with the others gives what it gives trained alone.

One compiled call runs a whole epoch (every step) of a group of folds (`vmap`)
or of one fold (`loop`), or on CPU one step of it (`train.steps_per_call`), and
on CPU several folds run at once on threads (`train.concurrent_folds`).
mer_jax/parallel.py holds the single-fold program, mer_jax/runners.py the loop
and vmap runners, mer_jax/platform.py every choice that depends on the backend.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from mer_jax import data, final_model, losses, protocols, report
from mer_jax.checkpoint import Checkpointer, config_fingerprint
from mer_jax.data import Dataset
from mer_jax.models import create_model
from mer_jax.parallel import FoldInputs, FoldProgram
from mer_jax.platform import tuning_for
from mer_jax.protocols import Folds
from mer_jax.runners import RUNNERS

SCHEDULES = ("constant", "exponential")


def learning_rate(train_config: ml_collections.ConfigDict, epoch: int) -> float:
    """Learning rate of an epoch: constant, or multiplied by `lr_decay` after every epoch (Xia et al., TMM 2019, sec. IV-A: 0.8)."""
    if train_config.schedule == "constant":
        return float(train_config.learning_rate)
    if train_config.schedule == "exponential":
        return float(train_config.learning_rate * train_config.lr_decay**epoch)
    raise ValueError(f"unknown train.schedule {train_config.schedule!r}; valid: {SCHEDULES}")


def make_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """SGD with momentum and L2 weight decay added to the gradient (PyTorch's and MatConvNet's SGD).

    The learning rate is applied outside, per epoch, so a schedule never depends
    on how many steps a fold's epoch has.
    """
    return optax.chain(
        optax.add_decayed_weights(train_config.weight_decay),
        optax.trace(decay=train_config.momentum),
    )


def fold_inputs(folds: Folds, fold_ids: np.ndarray, batch_size: int, seed: int, fold_multiple: int = 1) -> FoldInputs:
    """Stacks the folds' masks and keys, padding the fold count to a multiple of `fold_multiple` with empty folds."""
    train_masks = folds.train_masks
    num_train = train_masks.sum(axis=1)
    smallest = int(num_train.argmin())
    if num_train[smallest] < batch_size:
        raise ValueError(
            f"train.batch_size={batch_size} exceeds the training set of fold {folds.names[smallest]!r} "
            f"({num_train[smallest]} samples); lower train.batch_size"
        )
    num_folds, num_samples = train_masks.shape
    padded = -(-num_folds // fold_multiple) * fold_multiple
    max_test = max(1, int(folds.test_masks.sum(axis=1).max()))
    test_index = np.zeros((padded, max_test), np.int32)
    test_valid = np.zeros((padded, max_test), bool)
    for f, mask in enumerate(folds.test_masks):
        index = np.flatnonzero(mask)
        test_index[f, : len(index)] = index
        test_valid[f, : len(index)] = True
    root = jax.random.PRNGKey(seed)
    padding_ids = np.arange(padded - num_folds) + int(np.max(fold_ids)) + 1  # keys of the empty folds
    ids = np.concatenate([np.asarray(fold_ids), padding_ids])
    keys = np.stack([np.asarray(jax.random.fold_in(root, int(i))) for i in ids])
    train_mask = np.zeros((padded, num_samples), bool)
    train_mask[:num_folds] = train_masks
    num_steps = np.zeros(padded, np.int32)
    num_steps[:num_folds] = num_train // batch_size
    return FoldInputs(keys, train_mask, num_steps, test_index, test_valid)


@dataclasses.dataclass
class TrainResult:
    """What a run produced, for the real (unpadded) folds."""

    test_logits: np.ndarray  # (F, T, C) last-epoch logits of the held-out samples
    test_index: np.ndarray  # (F, T)
    test_valid: np.ndarray  # (F, T)
    history: dict[str, np.ndarray]  # name -> (epochs, F)
    strategy: str
    train_seconds: float
    compile_seconds: float
    state: Any  # host (numpy) state of every fold at the end: params, stats, opt with a leading fold axis

    def first_folds(self, count: int) -> TrainResult:
        """The result of the first `count` folds only."""
        return dataclasses.replace(
            self,
            test_logits=self.test_logits[:count],
            test_index=self.test_index[:count],
            test_valid=self.test_valid[:count],
            history={name: values[:, :count] for name, values in self.history.items()},
            state=jax.tree.map(lambda leaf: leaf[:count], self.state),
        )


def make_runner(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, fold_ids: np.ndarray, train_labels: np.ndarray
):
    """The fold program for `config` and the runner of the configured strategy, tuned for the devices' platform."""
    devices = jax.devices()
    train = config.train
    tuning = tuning_for(
        devices[0].platform,
        strategy=train.strategy,
        steps_per_call=train.steps_per_call,
        concurrent_folds=train.concurrent_folds,
    )
    runner_class = RUNNERS[tuning.strategy]
    inputs = fold_inputs(
        folds, fold_ids, train.batch_size, train.seed, runner_class.fold_multiple(train.fold_chunk, len(devices))
    )
    program = FoldProgram(
        lambda rngs: create_model(
            config.model, num_classes=dataset.num_classes, input_shape=dataset.input_shape, rngs=rngs
        ),
        make_optimizer(train),
        losses.get_loss(train.loss),
        batch_size=train.batch_size,
        steps_per_epoch=max(1, int(inputs.num_steps.max())),
        unroll=tuning.unroll_steps,
        steps_per_call=tuning.steps_per_call,
        masked=not runner_class.one_fold_per_call,  # one fold per call: the runner skips the steps beyond its own
    )
    runner = runner_class(
        program,
        inputs,
        dataset.x,
        np.asarray(train_labels, np.int32),
        tuning=tuning,
        devices=devices,
        fold_chunk=train.fold_chunk,
    )
    return runner, inputs


def train_folds(
    config: ml_collections.ConfigDict,
    dataset: Dataset,
    folds: Folds,
    *,
    fold_ids: np.ndarray | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
) -> TrainResult:
    """Trains every fold for `config.train.epochs` epochs; resumes from `checkpoint_dir` if it holds a run.

    `fold_ids` numbers the folds for their random keys (default 0..F-1): folds
    (3, 7) trained alone with `fold_ids=(3, 7)` are the folds 3 and 7 of a run of all.
    `on_epoch_end(epoch)` is called after every epoch and its checkpoint.
    """
    fold_ids = np.arange(folds.num_folds) if fold_ids is None else np.asarray(fold_ids)
    num_folds = folds.num_folds
    train_labels = dataset.shuffled_labels(config.data.seed) if config.data.shuffle_labels else dataset.label
    runner, inputs = make_runner(config, dataset, folds, fold_ids, train_labels)
    history: dict[str, list[np.ndarray]] = {"train_loss": [], "train_accuracy": [], "test_accuracy": []}
    start_epoch = 0
    earlier_seconds = 0.0  # training time of the epochs a resumed run had already done
    checkpointer = None
    if checkpoint_dir is not None:
        checkpointer = Checkpointer(checkpoint_dir, config_fingerprint(config, fold_ids))
        restored = checkpointer.restore(runner.get_state())
        if restored is not None:
            host_state, start_epoch, history, earlier_seconds = restored
            runner.set_state(host_state)

    compile_seconds = runner.compile()
    epochs = config.train.epochs
    test_labels = dataset.label[inputs.test_index[:num_folds]]
    test_valid = inputs.test_valid[:num_folds]
    test_logits = None
    bar = tqdm(total=epochs, initial=start_epoch, desc=f"{num_folds} folds, {runner.strategy}", unit="epoch",
               disable=not progress)
    start = time.perf_counter()
    train_seconds = earlier_seconds  # until the last epoch's training ends (what a checkpoint records)
    for epoch in range(start_epoch, epochs):
        metrics, logits = runner.run_epoch(epoch, learning_rate(config.train, epoch))
        test_logits = logits[:num_folds]
        correct = (test_logits.argmax(-1) == test_labels) & test_valid
        history["test_accuracy"].append(correct.sum(1) / np.maximum(test_valid.sum(1), 1))
        for name in ("train_loss", "train_accuracy"):
            history[name].append(metrics[name][:num_folds])
        bar.set_postfix(
            loss=f"{history['train_loss'][-1].mean():.3f}",
            acc=f"{history['train_accuracy'][-1].mean():.3f}",
            refresh=False,
        )
        bar.update(1)
        train_seconds = earlier_seconds + time.perf_counter() - start
        if checkpointer is not None and ((epoch + 1) % config.train.checkpoint_every == 0 or epoch + 1 == epochs):
            checkpointer.save(epoch + 1, runner.get_state(), history, train_seconds)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    bar.close()
    if checkpointer is not None:
        checkpointer.close()
    if test_logits is None:  # resumed a run that had already finished
        test_logits = runner.predict()[:num_folds]
    return TrainResult(
        test_logits=test_logits,
        test_index=inputs.test_index[:num_folds],
        test_valid=test_valid,
        history={k: np.stack(v) if v else np.zeros((0, num_folds)) for k, v in history.items()},
        strategy=runner.strategy,
        train_seconds=train_seconds,
        compile_seconds=compile_seconds,
        state=jax.tree.map(lambda leaf: leaf[:num_folds], runner.get_state()),
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *, progress: bool = True) -> dict:
    """Loads the data, trains every fold of the protocol and writes the report into `workdir`.

    Started again with the same workdir and config, it resumes from the last checkpoint.
    With `train.final_model`, one more fold trains on every subject and is saved in
    `workdir/final_model` for `mer-jax predict` (mer_jax/final_model.py); the report
    covers the cross-validation folds only.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = data.load(config.data)
    check_dataset_matches_config(dataset, config)
    folds = protocols.make_folds(
        config.protocol.name,
        subjects=dataset.subject,
        labels=dataset.label,
        seed=config.protocol.seed,
        k=config.protocol.k,
        test_fraction=config.protocol.test_fraction,
    )
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
    trained = folds.with_fold_of_everything(final_model.FOLD_NAME) if config.train.final_model else folds
    result = train_folds(config, dataset, trained, checkpoint_dir=workdir / "checkpoints", progress=progress)
    if config.train.final_model:
        final = jax.tree.map(lambda leaf: leaf[folds.num_folds], result.state)
        is_built = "/" in config.data.name
        final_model.save(
            workdir, config, class_names=dataset.class_names, input_shape=dataset.input_shape,
            params=final["params"], stats=final["stats"],
            variant=data.build_metadata(config.data.name, config.data.data_dir).get("variant") if is_built else None,
        )
        result = result.first_folds(folds.num_folds)
    index = result.test_index[result.test_valid]
    fold_of_sample = np.broadcast_to(np.arange(folds.num_folds)[:, None], result.test_index.shape)[result.test_valid]
    predictions = result.test_logits[result.test_valid].argmax(-1)
    built = report.build_report(
        labels=dataset.label[index],
        predictions=predictions,
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
            "protocol": config.protocol.name,
            "model": config.model.name,
            "variant": config.model.get("variant", ""),
            "shuffle_labels": bool(config.data.shuffle_labels),
            "devices": [str(d) for d in jax.devices()],
        },
    )
    report.write_report(workdir, built, history=result.history)
    return built


def check_dataset_matches_config(dataset: Dataset, config: ml_collections.ConfigDict) -> None:
    """The model is built for config.data.input_shape and num_classes: say so if the data differ."""
    expected = tuple(config.data.input_shape)
    if tuple(dataset.input_shape) != expected or dataset.num_classes != config.data.num_classes:
        raise ValueError(
            f"data set {config.data.name!r} has inputs {tuple(dataset.input_shape)} and {dataset.num_classes} classes, "
            f"but the config says data.input_shape={expected} and data.num_classes={config.data.num_classes}"
        )
