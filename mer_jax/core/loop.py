"""The fold-parallel trainer: every fold of a protocol trained at once, from one compiled program.

Each fold has its own state (parameters, BatchNorm statistics, optimizer state),
stacked on a leading fold axis. Each fold draws its mini-batches only from its
own training samples, so BatchNorm never sees a held-out subject, and each
fold's random numbers depend only on (train.seed, fold index, epoch, step): a
fold trained with the others gives what it gives trained alone.

One compiled call runs a whole epoch (every step) of a group of folds (`vmap`)
or of one fold (`loop`), or on CPU one step of it (`train.steps_per_call`), and
on CPU several folds run at once on threads (`train.concurrent_folds`).
mer_jax/core/parallel.py holds the single-fold program, mer_jax/core/runners.py the loop
and vmap runners, mer_jax/speed/platform.py every choice that depends on the backend.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from absl import logging
from tqdm import tqdm

from mer_jax.core import losses
from mer_jax.core.checkpoint import Checkpointer, config_fingerprint
from mer_jax.core.dataset import Dataset
from mer_jax.core.epoch_log import EpochLog
from mer_jax.core.parallel import FoldInputs, FoldProgram
from mer_jax.core.protocols import Folds
from mer_jax.core.runners import RUNNERS
from mer_jax.models import create_model
from mer_jax.speed.device_memory import MemoryEstimate
from mer_jax.speed.platform import tuning_for

SCHEDULES = ("constant", "exponential", "step")


def learning_rate(train_config: ml_collections.ConfigDict, epoch: int) -> float:
    """Learning rate of an epoch: constant; multiplied by `lr_decay` after every epoch (exponential: Xia et al.,
    TMM 2019, sec. IV-A: 0.8); or after every `lr_step_epochs` epochs (step: Wang et al., Neurocomputing 2018,
    sec. 4.2: / 10 every 2560 iterations)."""
    if train_config.schedule == "constant":
        return float(train_config.learning_rate)
    if train_config.schedule == "exponential":
        return float(train_config.learning_rate * train_config.lr_decay**epoch)
    if train_config.schedule == "step":
        if train_config.lr_step_epochs < 1:
            raise ValueError(f"train.schedule='step' needs train.lr_step_epochs >= 1; got {train_config.lr_step_epochs}")
        return float(train_config.learning_rate * train_config.lr_decay ** (epoch // train_config.lr_step_epochs))
    raise ValueError(f"unknown train.schedule {train_config.schedule!r}; valid: {SCHEDULES}")


OPTIMIZERS = ("sgd", "adam")


def make_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """L2 weight decay added to the gradient, then SGD with momentum (PyTorch's and MatConvNet's SGD) or
    Adam (Keras' defaults: beta 0.9, 0.999, epsilon 1e-7), by `train.optimizer`.

    The learning rate is applied outside, per epoch, so a schedule never depends
    on how many steps a fold's epoch has.
    """
    name = train_config.get("optimizer", "sgd")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown train.optimizer {name!r}; valid: {OPTIMIZERS}")
    direction = optax.trace(decay=train_config.momentum) if name == "sgd" else optax.scale_by_adam(eps=1e-7)
    return optax.chain(optax.add_decayed_weights(train_config.weight_decay), direction)


def make_loss(train_config: ml_collections.ConfigDict) -> losses.LossFn:
    """`train.loss`, with `train.focal_gamma` for the focal loss."""
    loss = losses.get_loss(train_config.loss)
    if train_config.loss == "focal":
        return functools.partial(loss, gamma=float(train_config.focal_gamma))
    return loss


def fold_inputs(
    folds: Folds, fold_ids: np.ndarray, batch_size: int, seed: int | np.ndarray, fold_multiple: int = 1,
    class_weight: np.ndarray | None = None,
) -> FoldInputs:
    """Stacks the folds' masks and keys, padding the fold count to a multiple of `fold_multiple` with empty folds.

    Fold f's key is fold_in(PRNGKey(seed_f), fold_ids[f]), with `seed` one for all folds or one per fold.
    `class_weight` (F, ..., C): each fold's weight per class, for the loss (`train.class_weight`).
    """
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
    seeds = np.broadcast_to(np.asarray(seed), (num_folds,))
    padding_ids = np.arange(padded - num_folds) + int(np.max(fold_ids)) + 1  # keys of the empty folds
    ids = np.concatenate([np.asarray(fold_ids), padding_ids])
    seeds = np.concatenate([seeds, np.full(padded - num_folds, seeds[0])])
    keys = np.stack([np.asarray(jax.random.fold_in(jax.random.PRNGKey(int(s)), int(i))) for s, i in zip(seeds, ids)])
    train_mask = np.zeros((padded, num_samples), bool)
    train_mask[:num_folds] = train_masks
    num_steps = np.zeros(padded, np.int32)
    num_steps[:num_folds] = num_train // batch_size
    if class_weight is not None:  # the empty folds weigh every class alike
        class_weight = np.concatenate([class_weight, np.ones((padded - num_folds, *class_weight.shape[1:]))])
        class_weight = class_weight.astype(np.float32)
    return FoldInputs(keys, train_mask, num_steps, test_index, test_valid, class_weight)


CLASS_WEIGHTS = ("none", "inverse_frequency")


def class_weights(
    train_config: ml_collections.ConfigDict, folds: Folds, train_labels: np.ndarray, num_classes: int
) -> np.ndarray | None:
    """(F, ..., C) each fold's loss weight per class from its own training labels (`train.class_weight`),
    or None (`none`): `inverse_frequency` is Aouayeb et al.'s (MLSP 2019, eq. 2) alpha, by
    :func:`mer_jax.core.losses.inverse_frequency` on the labels the fold trains on (held-out ones never count)."""
    name = train_config.get("class_weight", "none")
    if name not in CLASS_WEIGHTS:
        raise ValueError(f"unknown train.class_weight {name!r}; valid: {CLASS_WEIGHTS}")
    if name == "none":
        return None
    if train_config.loss != "focal":
        raise ValueError(f"train.class_weight={name!r} weights the focal loss only; train.loss is {train_config.loss!r}")
    return np.stack([
        np.asarray(losses.inverse_frequency(train_labels[mask], num_classes)) for mask in folds.train_masks
    ])


def examples_text(folds: Folds) -> str:
    """The folds' training examples, each drawn once an epoch in a fresh order (the last n mod batch_size
    left out), for the progress line: '12750' or '12250-12700'."""
    counts = folds.train_masks.sum(axis=1)
    low, high = int(counts.min()), int(counts.max())
    return str(low) if low == high else f"{low}-{high}"


def stopping_epochs(train_loss: list | np.ndarray, stop_loss: float, epochs: int, num_folds: int) -> np.ndarray:
    """(F,) the epochs each fold trains: through the first epoch whose mean training loss is below
    `stop_loss` (Xia et al., TIP 2020, sec. V-A: 0.5), else all `epochs`.

    `train_loss` is the (epochs so far, F) history, NaN where a fold took no step.
    """
    losses = np.asarray(train_loss, np.float64).reshape(-1, num_folds)
    below = np.concatenate([losses < stop_loss, np.ones((1, num_folds), bool)])  # a last row: argmax never empty
    return np.where(below[:-1].any(axis=0), below.argmax(axis=0) + 1, epochs)


@dataclasses.dataclass
class TrainResult:
    """What a run produced, for the real (unpadded) folds."""

    test_logits: np.ndarray  # (F, T, C) last-epoch logits of the held-out samples
    test_index: np.ndarray  # (F, T)
    test_valid: np.ndarray  # (F, T)
    history: dict[str, np.ndarray]  # name -> (epochs, F), training metrics NaN after a fold stopped
    epochs_trained: np.ndarray  # (F,) epochs each fold trained (train.stop_loss)
    strategy: str
    train_seconds: float
    compile_seconds: float
    state: Any  # host (numpy) state of every fold at the end: params, stats, opt with a leading fold axis
    memory: MemoryEstimate | None = None  # one device's memory while training (None: a finished run, restored)
    stages: dict | None = None  # a method trained in stages (mer_jax/methods/): each stage's strategy, timings, epochs
    train_prior: np.ndarray | None = None  # (F,) each fold's majority share of the labels it trains on

    @property
    def memory_per_fold(self) -> int | None:
        """Bytes of device memory a fold took (`memory.per_fold`), None for a finished run restored."""
        return None if self.memory is None else self.memory.per_fold

    def fold_range(self, start: int, stop: int) -> TrainResult:
        """The result of folds start..stop-1 only."""
        return dataclasses.replace(
            self,
            test_logits=self.test_logits[start:stop],
            test_index=self.test_index[start:stop],
            test_valid=self.test_valid[start:stop],
            history={name: values[:, start:stop] for name, values in self.history.items()},
            epochs_trained=self.epochs_trained[start:stop],
            train_prior=None if self.train_prior is None else self.train_prior[start:stop],
            state=jax.tree.map(lambda leaf: leaf[start:stop], self.state),
        )


def make_runner(
    config: ml_collections.ConfigDict,
    dataset: Dataset,
    folds: Folds,
    fold_ids: np.ndarray,
    train_labels: np.ndarray,
    fold_seeds: np.ndarray,
    label_classes: int | None = None,
):
    """The fold program for `config` and the runner of the configured strategy, tuned for the devices' platform.

    `train_labels` (N, ...) are the labels trained on, of `label_classes` classes (default the data set's).
    """
    devices = jax.local_devices()  # another process trains its own folds on its own devices
    train = config.train
    tuning = tuning_for(
        devices[0].platform,
        strategy=train.strategy,
        steps_per_call=train.steps_per_call,
        concurrent_folds=train.concurrent_folds,
    )
    runner_class = RUNNERS[tuning.strategy]
    inputs = fold_inputs(
        folds, fold_ids, train.batch_size, fold_seeds, runner_class.fold_multiple(train.fold_chunk, len(devices)),
        class_weights(train, folds, train_labels, label_classes or dataset.num_classes),
    )
    program = FoldProgram(
        lambda rngs: create_model(
            config.model, num_classes=dataset.num_classes, input_shape=dataset.input_shape, rngs=rngs
        ),
        make_optimizer(train),
        make_loss(train),
        batch_size=train.batch_size,
        steps_per_epoch=max(1, int(inputs.num_steps.max())),
        unroll=tuning.unroll_steps,
        steps_per_call=tuning.steps_per_call or (0 if train.data_on_device else 1),  # fed: a step a call at most
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
        data_on_device=train.data_on_device,
    )
    return runner, inputs


@dataclasses.dataclass(frozen=True)
class FoldRun:
    """How a fold program runs, whatever it trains (:func:`train_folds`, a method's stages).

    `fold_ids` numbers the folds for their random keys (default 0..F-1): folds
    (3, 7) trained alone with `fold_ids=(3, 7)` are the folds 3 and 7 of a run of all.
    `fold_seeds` gives each fold its seed (default `train.seed` for all): a fold
    with seed s is that fold of a run with `train.seed = s`.
    `checkpoint_dir`: a run there is resumed, and every `train.checkpoint_every` epochs saved.
    `log_dir` receives each epoch's training metrics as they come (metrics.jsonl and
    TensorBoard event files, mer_jax/core/epoch_log.py).
    `progress`: a progress bar on stderr.
    `on_epoch_end(epoch)` is called after every epoch and its checkpoint.
    """

    fold_ids: np.ndarray | None = None
    fold_seeds: np.ndarray | None = None
    checkpoint_dir: Path | None = None
    log_dir: Path | None = None
    progress: bool = True
    on_epoch_end: Callable[[int], None] | None = None

    def stage(self, name: str) -> FoldRun:
        """The run of one stage of a method: its checkpoints in `checkpoint_dir/<name>`, its logs in
        `log_dir/<name>`, so that a run started again resumes the stage it was in."""
        return dataclasses.replace(
            self,
            checkpoint_dir=None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / name,
            log_dir=None if self.log_dir is None else Path(self.log_dir) / name,
        )


def train_folds(
    config: ml_collections.ConfigDict,
    dataset: Dataset,
    folds: Folds,
    run: FoldRun = FoldRun(),
    *,
    train_labels: np.ndarray | None = None,
    label_classes: int | None = None,
    initial_state: Callable[[Any], Any] | None = None,
    stop_rule: Callable[[dict[str, list[np.ndarray]]], np.ndarray] | None = None,
) -> TrainResult:
    """Trains every fold for `config.train.epochs` epochs, run as `run` says; resumes from `run.checkpoint_dir`
    if it holds a run.

    `train_labels` (N, ...) of `label_classes` classes replace the data set's labels for training (e.g. one
    label per region of an example); held-out accuracy is then not kept.
    `initial_state(state)` turns the freshly initialised host state of every fold into the one training starts
    from (e.g. weights transferred from an earlier stage); a resumed run starts from its checkpoint instead.
    `stop_rule(history)` gives (F,) the epochs each fold trains given the history so far (a pure function of
    it, so a resumed run stops where it would have); the fewer of it and `train.stop_loss`'s count holds.
    """
    num_folds = folds.num_folds
    fold_ids = np.arange(num_folds) if run.fold_ids is None else np.asarray(run.fold_ids)
    fold_seeds = np.full(num_folds, config.train.seed) if run.fold_seeds is None else np.asarray(run.fold_seeds)
    checkpoint_dir, log_dir, progress, on_epoch_end = run.checkpoint_dir, run.log_dir, run.progress, run.on_epoch_end
    if fold_seeds.shape != (num_folds,):
        raise ValueError(f"fold_seeds has shape {fold_seeds.shape}; expected one seed per fold, ({num_folds},)")
    scored = train_labels is None  # held-out accuracy per epoch, on the data set's own labels
    if train_labels is None:
        train_labels = dataset.shuffled_labels(config.data.seed) if config.data.shuffle_labels else dataset.label
    runner, inputs = make_runner(config, dataset, folds, fold_ids, train_labels, fold_seeds, label_classes)
    history: dict[str, list[np.ndarray]] = {"train_loss": [], "train_accuracy": [], "test_accuracy": []}
    start_epoch = 0
    earlier_seconds = 0.0  # training time of the epochs a resumed run had already done
    checkpointer = None
    if checkpoint_dir is not None:
        checkpointer = Checkpointer(checkpoint_dir, config_fingerprint(config, np.stack([fold_ids, fold_seeds])))
        restored = checkpointer.restore(runner.get_state())
        if restored is not None:
            host_state, start_epoch, history, earlier_seconds = restored
            runner.set_state(host_state)
    if initial_state is not None and start_epoch == 0:
        runner.set_state(initial_state(runner.get_state()))
    epochs = config.train.epochs

    def stopping(history) -> np.ndarray:
        trained = stopping_epochs(history["train_loss"], config.train.stop_loss, epochs, num_folds)
        return trained if stop_rule is None else np.minimum(trained, stop_rule(history))

    epochs_trained = stopping(history)
    runner.stop(np.flatnonzero(epochs_trained <= start_epoch))  # folds a resumed run had stopped

    compile_seconds, memory = 0.0, None  # a finished run only predicts
    if start_epoch < epochs:
        compile_seconds = runner.compile()
        memory = runner.memory_estimate()
        logging.info("%s", memory.text())
        if progress:
            tqdm.write(memory.text(), file=sys.stderr)
    log = EpochLog(log_dir, folds.names, start_epoch) if log_dir is not None else None
    if log is not None:
        log.compiled(compile_seconds)
    test_labels = dataset.label[inputs.test_index[:num_folds]]
    test_valid = inputs.test_valid[:num_folds]
    test_logits = None
    bar = tqdm(total=epochs, initial=start_epoch, unit="epoch", disable=not progress,
               desc=f"{num_folds} folds of {examples_text(folds)} training examples an epoch, {runner.strategy}")
    start = time.perf_counter()
    train_seconds = earlier_seconds  # until the last epoch's training ends (what a checkpoint records)
    for epoch in range(start_epoch, epochs):
        epoch_start = time.perf_counter()
        lr = learning_rate(config.train, epoch)
        metrics, logits = runner.run_epoch(epoch, lr)
        test_logits = logits[:num_folds]
        if scored:
            correct = (test_logits.argmax(-1) == test_labels) & test_valid
            history["test_accuracy"].append(correct.sum(1) / np.maximum(test_valid.sum(1), 1))
        stopped = epochs_trained <= epoch  # took no step this epoch: no training metrics
        for name in ("train_loss", "train_accuracy"):
            history[name].append(np.where(stopped, np.nan, metrics[name][:num_folds]).astype(np.float32))
        epochs_trained = stopping(history)
        runner.stop(np.flatnonzero(epochs_trained == epoch + 1))
        if log is not None:
            log.write(
                epoch,
                learning_rate=lr,
                train_loss=history["train_loss"][-1],
                train_accuracy=history["train_accuracy"][-1],
                steps=int(inputs.num_steps[:num_folds][~stopped].sum()),
                seconds=time.perf_counter() - epoch_start,
                folds_stopped=int((epochs_trained <= epoch + 1).sum()),
            )
        bar.set_postfix(
            loss=f"{np.nanmean(history['train_loss'][-1]) if not stopped.all() else np.nan:.3f}",
            acc=f"{np.nanmean(history['train_accuracy'][-1]) if not stopped.all() else np.nan:.3f}",
            stopped=int((epochs_trained <= epoch + 1).sum()),
            refresh=False,
        )
        bar.update(1)
        train_seconds = earlier_seconds + time.perf_counter() - start
        if checkpointer is not None and ((epoch + 1) % config.train.checkpoint_every == 0 or epoch + 1 == epochs):
            checkpointer.save(epoch + 1, runner.get_state(), history, train_seconds)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    bar.close()
    if log is not None:
        log.close()
    if checkpointer is not None:
        checkpointer.close()
    if test_logits is None:  # resumed a run that had already finished
        test_logits = runner.predict()[:num_folds]
    return TrainResult(
        test_logits=test_logits,
        test_index=inputs.test_index[:num_folds],
        test_valid=test_valid,
        history={k: np.stack(v) if len(v) else np.zeros((0, num_folds)) for k, v in history.items()},
        epochs_trained=epochs_trained,
        train_prior=majority_share(train_labels, folds.train_masks, label_classes or dataset.num_classes),
        strategy=runner.strategy,
        train_seconds=train_seconds,
        compile_seconds=compile_seconds,
        state=jax.tree.map(lambda leaf: leaf[:num_folds], runner.get_state()),
        memory=memory,
    )


def majority_share(labels: np.ndarray, train_masks: np.ndarray, num_classes: int) -> np.ndarray:
    """(F,) the share of each fold's training labels in its most frequent class: the training accuracy of a
    model that has learnt only the class prior. `labels` (N, ...) (e.g. one label per region,
    every entry counted), `train_masks` (F, N)."""
    labels = np.asarray(labels).reshape(len(labels), -1)
    shares = []
    for mask in np.asarray(train_masks, bool):
        counts = np.bincount(labels[mask].ravel(), minlength=num_classes)
        shares.append(counts.max() / max(counts.sum(), 1))
    return np.asarray(shares, np.float32)


def fit_summary(result: TrainResult) -> dict:
    """Fold means of the last epoch's training accuracy and loss (each fold's own last epoch, where one
    stopped early) and of the training class prior: whether a run fitted its own training data."""
    last_epoch = np.maximum(result.epochs_trained, 1) - 1
    last = {
        name: values[last_epoch, np.arange(values.shape[1])]
        for name, values in result.history.items() if len(values) and name.startswith("train")
    }
    summary = {f"final_{name}": float(np.nanmean(values)) for name, values in last.items()}
    if result.train_prior is not None:
        summary["train_prior"] = float(np.mean(result.train_prior))
    return summary


def check_dataset_matches_config(dataset: Dataset, config: ml_collections.ConfigDict) -> None:
    """The model is built for config.data.input_shape and num_classes: say so if the data differ."""
    expected = tuple(config.data.input_shape)
    shape = tuple(dataset.input_shape)
    matches = len(shape) == len(expected) and all(e in (0, d) for e, d in zip(expected, shape))  # 0: any size
    if not matches or dataset.num_classes != config.data.num_classes:
        raise ValueError(
            f"data set {config.data.name!r} has inputs {tuple(dataset.input_shape)} and {dataset.num_classes} classes, "
            f"but the config says data.input_shape={expected} and data.num_classes={config.data.num_classes}"
        )
