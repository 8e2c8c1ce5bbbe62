"""The fold-parallel trainer: every fold of a protocol trained at once, from one compiled program.

Each fold has its own state (parameters, BatchNorm statistics, optimizer state),
stacked on a leading fold axis. Each fold draws its mini-batches only from its
own training samples, so BatchNorm never sees a held-out subject, and each
fold's random numbers depend only on (train.seed, fold index, epoch, step): a
fold trained with the others gives what it gives trained alone.

One compiled call runs a whole epoch (every step) of a group of folds (`vmap`)
or of one fold (`loop`), or on CPU one step of it (`train.steps_per_call`), and
on CPU several folds run at once on threads (`train.concurrent_folds`):
mer_jax/parallel.py holds the program and the runner.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from mer_jax import data, losses, protocols, report
from mer_jax.checkpoint import Checkpointer, config_fingerprint
from mer_jax.cores import usable_cores
from mer_jax.data import Dataset
from mer_jax.models import create_model
from mer_jax.parallel import FoldInputs, FoldProgram, FoldRunner
from mer_jax.protocols import Folds

STRATEGIES = ("auto", "vmap", "loop")
SCHEDULES = ("constant", "exponential")


def resolve_strategy(strategy: str, backend: str | None = None) -> str:
    """`auto` -> `loop` on CPU, `vmap` on accelerators (measured: benchmarks/fold_parallel.py)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown train.strategy {strategy!r}; valid: {STRATEGIES}")
    if strategy != "auto":
        return strategy
    return "loop" if (backend or jax.default_backend()) == "cpu" else "vmap"


def resolve_steps_per_call(steps_per_call: int, backend: str | None = None) -> int:
    """`train.steps_per_call` 0 (auto) -> 1 on CPU, the whole epoch (0) on accelerators.

    On CPU the steps of a call are unrolled into its program (a convolution inside an
    XLA:CPU while loop is many times slower), so the compile time grows with the steps
    per call while the time per step does not fall (benchmarks/fold_parallel.py).
    """
    if steps_per_call < 0:
        raise ValueError(f"train.steps_per_call must be >= 0 (0: auto), got {steps_per_call}")
    if steps_per_call:
        return int(steps_per_call)
    return 1 if (backend or jax.default_backend()) == "cpu" else 0


def resolve_concurrent_folds(concurrent_folds: int, backend: str | None = None) -> int:
    """`train.concurrent_folds` 0 (auto) -> the CPU cores this process may use on CPU, 1 on accelerators.

    On CPU, folds (groups of folds for `vmap`) run on that many threads at once:
    XLA:CPU's own threads kept 2 cores only 1.5x busier than one on an RCN step.
    """
    if concurrent_folds < 0:
        raise ValueError(f"train.concurrent_folds must be >= 0 (0: auto), got {concurrent_folds}")
    if concurrent_folds:
        return int(concurrent_folds)
    if (backend or jax.default_backend()) != "cpu":
        return 1
    return usable_cores()


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


def make_runner(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, fold_ids: np.ndarray, train_labels: np.ndarray
):
    """The fold program for `config` and the runner of the configured strategy."""
    strategy = resolve_strategy(config.train.strategy)
    devices = jax.devices()
    fold_chunk = config.train.fold_chunk
    if strategy == "vmap" and fold_chunk:
        fold_chunk = -(-fold_chunk // len(devices)) * len(devices)  # a whole number of folds per device
    group = (fold_chunk or len(devices)) if strategy == "vmap" else 1
    inputs = fold_inputs(folds, fold_ids, config.train.batch_size, config.train.seed, group)
    program = FoldProgram(
        lambda rngs: create_model(
            config.model, num_classes=dataset.num_classes, input_shape=dataset.input_shape, rngs=rngs
        ),
        make_optimizer(config.train),
        losses.get_loss(config.train.loss),
        batch_size=config.train.batch_size,
        steps_per_epoch=max(1, int(inputs.num_steps.max())),
        unroll=jax.default_backend() == "cpu",
        steps_per_call=resolve_steps_per_call(config.train.steps_per_call),
        masked=strategy != "loop",  # one fold per call: the runner skips the steps beyond a fold's own
    )
    runner = FoldRunner(
        program,
        inputs,
        dataset.x,
        np.asarray(train_labels, np.int32),
        strategy=strategy,
        fold_chunk=fold_chunk,
        devices=devices,
        concurrency=resolve_concurrent_folds(config.train.concurrent_folds),
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
        if checkpointer is not None and ((epoch + 1) % config.train.checkpoint_every == 0 or epoch + 1 == epochs):
            checkpointer.save(epoch + 1, runner.get_state(), history, earlier_seconds + time.perf_counter() - start)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    bar.close()
    train_seconds = earlier_seconds + time.perf_counter() - start
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
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *, progress: bool = True) -> dict:
    """Loads the data, trains every fold of the protocol and writes the report into `workdir`.

    Started again with the same workdir and config, it resumes from the last checkpoint.
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
    result = train_folds(config, dataset, folds, checkpoint_dir=workdir / "checkpoints", progress=progress)
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
            "variant": config.model.variant,
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
