"""The fold-parallel trainer: every fold of a protocol trained by one compiled program.

All folds share one stacked state with a leading fold axis (parameters, BatchNorm
statistics, optimizer state). Each fold draws its mini-batches only from its own
training samples, so BatchNorm never sees a held-out subject, and each fold's
random numbers depend only on (train.seed, fold index, epoch, step): a fold
trained with the others gives what it gives trained alone.

One compiled call runs a whole epoch of every fold (`lax.scan` over steps). The
fold axis is sharded over a device mesh axis named ``fold``; inside a device the
local folds run either vectorized (`vmap`, one wide program: GPU/TPU) or as a
compiled loop (`lax.map`: XLA:CPU, where vmap turns convolutions into grouped
convolutions that run far slower). See docs/benchmarks.md.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from mer_jax import data, losses, protocols, report
from mer_jax.data import Dataset
from mer_jax.models import create_model
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


def learning_rate(train_config: ml_collections.ConfigDict, epoch: int) -> float:
    """Learning rate of an epoch: constant, or multiplied by `lr_decay` after every epoch (seed 000 sec. IV-A: 0.8)."""
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


@dataclasses.dataclass(frozen=True)
class FoldInputs:
    """Per-fold arrays, each with a leading fold axis (padded folds have no samples)."""

    key: np.ndarray  # (F, 2) uint32, the fold's root key
    train_mask: np.ndarray  # (F, N) bool
    num_steps: np.ndarray  # (F,) int32, steps per epoch
    test_index: np.ndarray  # (F, T) int32, held-out samples, padded
    test_valid: np.ndarray  # (F, T) bool


def fold_inputs(folds: Folds, fold_ids: np.ndarray, batch_size: int, seed: int, num_devices: int) -> FoldInputs:
    """Stacks the folds' masks and keys, padding the fold count to a multiple of `num_devices`."""
    train_masks = folds.train_masks
    num_train = train_masks.sum(axis=1)
    smallest = int(num_train.argmin())
    if num_train[smallest] < batch_size:
        raise ValueError(
            f"train.batch_size={batch_size} exceeds the training set of fold {folds.names[smallest]!r} "
            f"({num_train[smallest]} samples); lower train.batch_size"
        )
    num_folds, num_samples = train_masks.shape
    padded = -(-num_folds // num_devices) * num_devices
    max_test = max(1, int(folds.test_masks.sum(axis=1).max()))
    test_index = np.zeros((padded, max_test), np.int32)
    test_valid = np.zeros((padded, max_test), bool)
    for f, mask in enumerate(folds.test_masks):
        index = np.flatnonzero(mask)
        test_index[f, : len(index)] = index
        test_valid[f, : len(index)] = True
    root = jax.random.PRNGKey(seed)
    ids = np.concatenate([np.asarray(fold_ids), np.full(padded - num_folds, -1)])
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


class FoldTrainer:
    """Builds the compiled per-epoch program for a model, data set and set of folds."""

    def __init__(self, config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds, fold_ids=None):
        self.config = config
        self.dataset = dataset
        self.folds = folds
        self.fold_ids = np.arange(folds.num_folds) if fold_ids is None else np.asarray(fold_ids)
        self.strategy = resolve_strategy(config.train.strategy)
        self.mesh = Mesh(np.array(jax.devices()), ("fold",))
        self.inputs = fold_inputs(
            folds, self.fold_ids, config.train.batch_size, config.train.seed, self.mesh.devices.size
        )
        self.max_steps = max(1, int(self.inputs.num_steps.max()))
        self.loss_fn = losses.get_loss(config.train.loss)
        self.optimizer = make_optimizer(config.train)
        abstract = nnx.eval_shape(lambda: self._model(nnx.Rngs(0)))
        self.graphdef = nnx.split(abstract, nnx.Param, nnx.BatchStat)[0]

    def _model(self, rngs: nnx.Rngs) -> nnx.Module:
        return create_model(
            self.config.model,
            num_classes=self.dataset.num_classes,
            input_shape=self.dataset.input_shape,
            rngs=rngs,
        )

    # ----- single-fold pure functions (vmapped or looped over folds) -----

    def _init_fold(self, key: jax.Array) -> dict[str, Any]:
        model = self._model(nnx.Rngs(params=jax.random.fold_in(key, 0)))
        _, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
        return {"params": params, "stats": stats, "opt": self.optimizer.init(params)}

    def _forward(self, params, stats, x, *, train: bool, key=None):
        model = nnx.merge(self.graphdef, params, stats, copy=True)
        logits = model(x, train=train, rngs=nnx.Rngs(dropout=key) if train else None)
        return logits, nnx.state(model, nnx.BatchStat)

    def _fold_epoch(self, state, fold, x, labels, epoch, lr):
        key = jax.random.fold_in(fold["key"], epoch + 1)
        # A random order of the fold's own training samples, first; the rest after.
        priority = jnp.where(fold["train_mask"], jax.random.uniform(jax.random.fold_in(key, 0), labels.shape), 2.0)
        batch_size = self.config.train.batch_size
        order = jnp.argsort(priority)[: self.max_steps * batch_size].reshape(self.max_steps, batch_size)

        def step(state, inputs):
            index, batch = inputs

            def objective(params):
                logits, stats = self._forward(
                    params, state["stats"], x[batch], train=True, key=jax.random.fold_in(key, index + 1)
                )
                return self.loss_fn(logits, labels[batch]), (logits, stats)

            (loss, (logits, stats)), grads = jax.value_and_grad(objective, has_aux=True)(state["params"])
            updates, opt = self.optimizer.update(grads, state["opt"], state["params"])
            params = jax.tree.map(lambda p, u: p - lr * u, state["params"], updates)
            active = index < fold["num_steps"]
            new = {"params": params, "stats": stats, "opt": opt}
            state = jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state)
            correct = jnp.mean(jnp.argmax(logits, -1) == labels[batch])
            return state, (jnp.where(active, loss, 0.0), jnp.where(active, correct, 0.0))

        state, (loss, correct) = jax.lax.scan(step, state, (jnp.arange(self.max_steps), order), unroll=True)
        steps = jnp.maximum(fold["num_steps"], 1)
        metrics = {"train_loss": loss.sum() / steps, "train_accuracy": correct.sum() / steps}
        return state, metrics, self._fold_predict(state, fold, x)

    def _fold_predict(self, state, fold, x):
        """Logits of the fold's held-out samples (eval mode: running BatchNorm statistics)."""
        return self._forward(state["params"], state["stats"], x[fold["test_index"]], train=False)[0]

    # ----- the compiled programs over all folds -----

    def _over_folds(self, fn: Callable, *fold_args):
        """Applies a per-fold function to the local folds: vmap or a compiled loop."""
        if self.strategy == "vmap":
            return jax.vmap(fn)(*fold_args)
        return jax.lax.map(lambda args: fn(*args), fold_args)

    def _sharded(self, fn: Callable, num_fold_args: int, num_shared_args: int):
        specs = (P("fold"),) * num_fold_args + (P(),) * num_shared_args

        def per_device(*args):
            fold_args, shared = args[:num_fold_args], args[num_fold_args:]
            return self._over_folds(lambda *a: fn(*a, *shared), *fold_args)

        return jax.shard_map(per_device, mesh=self.mesh, in_specs=specs, out_specs=P("fold"))

    def fold_arrays(self) -> dict[str, jax.Array]:
        sharding = NamedSharding(self.mesh, P("fold"))
        return {k: jax.device_put(v, sharding) for k, v in dataclasses.asdict(self.inputs).items()}

    def init_state(self, fold: dict[str, jax.Array]):
        init = jax.jit(self._sharded(self._init_fold, 1, 0))
        return init(fold["key"])

    def predict(self, state, fold, x):
        return jax.jit(self._sharded(self._fold_predict, 2, 1))(state, fold, x)

    def epoch_program(self, state, fold, x, labels):
        """Lowers and compiles one epoch of every fold; returns (compiled, seconds)."""
        program = jax.jit(self._sharded(self._fold_epoch, 2, 4), donate_argnums=0)
        start = time.perf_counter()
        compiled = program.lower(state, fold, x, labels, jnp.int32(0), jnp.float32(0.0)).compile()
        return compiled, time.perf_counter() - start


class Checkpointer:
    """Orbax checkpoints of the stacked fold state, the epoch and the history, for resuming."""

    def __init__(self, directory: Path, fingerprint: str, keep: int = 2):
        self.fingerprint = fingerprint
        self.manager = ocp.CheckpointManager(
            directory.absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False),
        )

    def restore(self, template):
        """(state, epoch, history) of the latest checkpoint, or None if there is none."""
        step = self.manager.latest_step()
        if step is None:
            return None
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(jax.device_get(template)), meta=ocp.args.JsonRestore()
            ),
        )
        meta = restored["meta"]
        if meta["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"{self.manager.directory} holds checkpoints of a different configuration; "
                "use another --workdir or delete that folder to start over"
            )
        history = {k: [np.asarray(row) for row in v] for k, v in meta["history"].items()}
        return restored["state"], int(meta["epoch"]), history

    def save(self, epoch: int, state, history: dict[str, list[np.ndarray]]):
        meta = {
            "epoch": epoch,
            "fingerprint": self.fingerprint,
            "history": {k: [np.asarray(row).tolist() for row in v] for k, v in history.items()},
        }
        self.manager.save(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardSave(jax.device_get(state)), meta=ocp.args.JsonSave(meta)),
        )

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()


def config_fingerprint(config: ml_collections.ConfigDict, fold_ids: np.ndarray) -> str:
    """What must match for a checkpoint to be resumed: everything but the epoch count."""
    as_dict = config.to_dict()
    as_dict["train"] = {k: v for k, v in as_dict["train"].items() if k not in ("epochs", "checkpoint_every")}
    return json.dumps({"config": as_dict, "folds": np.asarray(fold_ids).tolist()}, sort_keys=True, default=str)


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

    `fold_ids` numbers the folds for their random keys (default 0..F-1): training
    folds (3, 7) alone with `fold_ids=(3, 7)` reproduces them as trained among all.
    `on_epoch_end(epoch)` runs after every epoch (and its checkpoint).
    """
    trainer = FoldTrainer(config, dataset, folds, fold_ids)
    num_folds = folds.num_folds
    fold = trainer.fold_arrays()
    replicated = NamedSharding(trainer.mesh, P())
    x = jax.device_put(jnp.asarray(dataset.x), replicated)
    train_labels = dataset.shuffled_labels(config.data.seed) if config.data.shuffle_labels else dataset.label
    labels = jax.device_put(jnp.asarray(train_labels, jnp.int32), replicated)

    state = trainer.init_state(fold)
    history: dict[str, list[np.ndarray]] = {"train_loss": [], "train_accuracy": [], "test_accuracy": []}
    start_epoch = 0
    checkpointer = None
    if checkpoint_dir is not None:
        checkpointer = Checkpointer(checkpoint_dir, config_fingerprint(config, trainer.fold_ids))
        restored = checkpointer.restore(state)
        if restored is not None:
            host_state, start_epoch, history = restored
            state = jax.device_put(host_state, NamedSharding(trainer.mesh, P("fold")))

    program, compile_seconds = trainer.epoch_program(state, fold, x, labels)
    epochs = config.train.epochs
    test_labels = dataset.label[trainer.inputs.test_index]
    test_logits = None
    bar = tqdm(
        total=epochs,
        initial=start_epoch,
        desc=f"{num_folds} folds ({trainer.strategy})",
        unit="epoch",
        disable=not progress,
    )
    start = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        lr = learning_rate(config.train, epoch)
        state, metrics, logits = program(state, fold, x, labels, jnp.int32(epoch), jnp.float32(lr))
        test_logits = np.asarray(logits)[:num_folds]
        correct = (test_logits.argmax(-1) == test_labels[:num_folds]) & trainer.inputs.test_valid[:num_folds]
        history["test_accuracy"].append(correct.sum(1) / np.maximum(trainer.inputs.test_valid[:num_folds].sum(1), 1))
        for name in ("train_loss", "train_accuracy"):
            history[name].append(np.asarray(metrics[name])[:num_folds])
        bar.set_postfix(loss=f"{history['train_loss'][-1].mean():.3f}", acc=f"{history['train_accuracy'][-1].mean():.3f}")
        bar.update(1)
        if checkpointer is not None and (
            (epoch + 1) % config.train.checkpoint_every == 0 or epoch + 1 == epochs
        ):
            checkpointer.save(epoch + 1, state, history)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    bar.close()
    train_seconds = time.perf_counter() - start
    if checkpointer is not None:
        checkpointer.close()
    if test_logits is None:  # resumed a run that had already finished
        test_logits = np.asarray(trainer.predict(state, fold, x))[:num_folds]
    return TrainResult(
        test_logits=test_logits,
        test_index=trainer.inputs.test_index[:num_folds],
        test_valid=trainer.inputs.test_valid[:num_folds],
        history={k: np.stack(v) if v else np.zeros((0, num_folds)) for k, v in history.items()},
        strategy=trainer.strategy,
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
