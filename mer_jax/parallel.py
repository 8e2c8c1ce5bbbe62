"""Compiled programs that train many folds at once, and the two ways to run them.

`FoldProgram` holds the pure single-fold functions: initialise a fold, train it
for one epoch, predict its held-out samples. A fold's random numbers depend only
on its own key, the epoch and the step, never on the other folds.

`FoldRunner` applies them to every fold with one of two strategies (measured in
benchmarks/fold_parallel.py):

- `vmap` (GPU/TPU): one program for a group of folds (all by default), `vmap`
  over a leading fold axis that is sharded over the devices of a mesh axis
  named ``fold``.
- `loop` (CPU): one compiled single-fold program called for each fold in turn
  (folds are spread round-robin over the devices, which then run concurrently).
  On XLA:CPU, vmap turns per-fold convolutions into grouped convolutions, many
  times slower than separate ones.

On XLA:CPU a convolution inside a while loop (`lax.scan`, `lax.map`) ran ~16x
slower than the same convolution unrolled (measured here: 3x3, 20x20x16, batch
32), so on CPU the steps of an epoch are unrolled into the program; elsewhere
they are a `lax.scan`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

Loss = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class FoldInputs:
    """Per-fold arrays, each with a leading fold axis."""

    key: np.ndarray  # (F, 2) uint32, the fold's root key
    train_mask: np.ndarray  # (F, N) bool
    num_steps: np.ndarray  # (F,) int32, optimisation steps per epoch
    test_index: np.ndarray  # (F, T) int32, the held-out samples, padded
    test_valid: np.ndarray  # (F, T) bool

    @property
    def num_folds(self) -> int:
        return len(self.num_steps)


class FoldProgram:
    """The pure functions of one fold: init, one training epoch, prediction."""

    def __init__(
        self,
        make_model: Callable[[nnx.Rngs], nnx.Module],
        optimizer: optax.GradientTransformation,
        loss_fn: Loss,
        *,
        batch_size: int,
        steps_per_epoch: int,
        unroll: bool,
    ):
        self.make_model = make_model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.unroll = unroll
        self.graphdef = nnx.split(nnx.eval_shape(lambda: make_model(nnx.Rngs(0))), nnx.Param, nnx.BatchStat)[0]

    def init(self, key: jax.Array) -> dict[str, Any]:
        model = self.make_model(nnx.Rngs(params=jax.random.fold_in(key, 0)))
        _, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
        return {"params": params, "stats": stats, "opt": self.optimizer.init(params)}

    def forward(self, params, stats, x, *, train: bool, key=None):
        model = nnx.merge(self.graphdef, params, stats, copy=True)
        logits = model(x, train=train, rngs=nnx.Rngs(dropout=key) if train else None)
        return logits, nnx.state(model, nnx.BatchStat)

    def predict(self, state, fold, x):
        """Logits of the fold's held-out samples (eval mode: running BatchNorm statistics)."""
        return self.forward(state["params"], state["stats"], x[fold["test_index"]], train=False)[0]

    def epoch(self, state, fold, x, labels, epoch, lr):
        """One epoch of SGD on the fold's own training samples; returns (state, metrics, test logits).

        Every fold runs `steps_per_epoch` steps (the most any fold needs); a fold
        with fewer training samples keeps its state unchanged on the extra steps.
        """
        key = jax.random.fold_in(fold["key"], epoch + 1)
        # A random order of the fold's training samples first, the other samples after.
        priority = jnp.where(fold["train_mask"], jax.random.uniform(jax.random.fold_in(key, 0), labels.shape), 2.0)
        order = jnp.argsort(priority)[: self.steps_per_epoch * self.batch_size]
        batches = order.reshape(self.steps_per_epoch, self.batch_size)

        def step(state, inputs):
            index, batch = inputs

            def objective(params):
                logits, stats = self.forward(
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

        steps = (jnp.arange(self.steps_per_epoch), batches)
        state, (loss, correct) = jax.lax.scan(step, state, steps, unroll=self.unroll)
        num_steps = jnp.maximum(fold["num_steps"], 1)
        metrics = {"train_loss": loss.sum() / num_steps, "train_accuracy": correct.sum() / num_steps}
        return state, metrics, self.predict(state, fold, x)


class FoldRunner:
    """Applies a FoldProgram to every fold, one group of folds per compiled call.

    `vmap`: groups of `fold_chunk` folds (all folds if 0), vectorized over a
    leading fold axis sharded over the devices of a `fold` mesh axis; the fold
    count must be a multiple of the group size, itself a multiple of the device
    count (pad with empty folds). A smaller group bounds device memory.
    `loop`: groups of one fold, each on device f % num_devices, running one
    compiled single-fold program.
    """

    def __init__(
        self,
        program: FoldProgram,
        inputs: FoldInputs,
        x: np.ndarray,
        labels: np.ndarray,
        *,
        strategy: str,
        fold_chunk: int = 0,
        devices=None,
    ):
        self.strategy = strategy
        devices = list(devices or jax.devices())
        num_folds = inputs.num_folds
        if strategy == "vmap":
            self.mesh = Mesh(np.array(devices), ("fold",))
            chunk = fold_chunk or num_folds
            if chunk % len(devices) or num_folds % chunk:
                raise ValueError(
                    f"vmap runs groups of {chunk} folds over {len(devices)} devices: the group size must be a "
                    f"multiple of the device count and divide the (padded) fold count {num_folds}"
                )
            groups = [slice(start, start + chunk) for start in range(0, num_folds, chunk)]
            folded = NamedSharding(self.mesh, P("fold"))
            placements = [folded] * len(groups)
            shared = NamedSharding(self.mesh, P())
            self.shared = [(jax.device_put(x, shared), jax.device_put(labels, shared))] * len(groups)
        elif strategy == "loop":
            groups = list(range(num_folds))
            placements = [devices[f % len(devices)] for f in groups]
            on_device = {d: (jax.device_put(x, d), jax.device_put(labels, d)) for d in devices}
            self.shared = [on_device[d] for d in placements]
        else:
            raise ValueError(f"unknown strategy {strategy!r}; valid: vmap, loop")
        self.groups = groups
        arrays = dataclasses.asdict(inputs)
        self.folds = [
            jax.device_put({k: v[group] for k, v in arrays.items()}, placement)
            for group, placement in zip(groups, placements)
        ]
        init = jax.jit(self._over_folds(program.init, 1, 0))
        self._epoch = jax.jit(self._over_folds(program.epoch, 2, 4), donate_argnums=0)
        self._predict = jax.jit(self._over_folds(program.predict, 2, 1))
        self.states = [init(fold["key"]) for fold in self.folds]
        self._compiled = {}

    def _over_folds(self, fn: Callable, num_fold_args: int, num_shared_args: int) -> Callable:
        """`fn` of one fold -> a function of a group of folds (loop: the one fold itself)."""
        if self.strategy == "loop":
            return fn

        def per_device(*args):
            shared = args[num_fold_args:]
            return jax.vmap(lambda *fold_args: fn(*fold_args, *shared))(*args[:num_fold_args])

        specs = (P("fold"),) * num_fold_args + (P(),) * num_shared_args
        return jax.shard_map(per_device, mesh=self.mesh, in_specs=specs, out_specs=P("fold"))

    def _epoch_args(self, index: int, epoch: int, lr: float):
        x, labels = self.shared[index]
        return self.states[index], self.folds[index], x, labels, jnp.int32(epoch), jnp.float32(lr)

    def _placement_key(self, index: int):
        return "mesh" if self.strategy == "vmap" else self.folds[index]["key"].devices().pop()

    def compile(self) -> float:
        """Compiles the epoch program (once per device for `loop`); returns the seconds it took."""
        start = time.perf_counter()
        for index in range(len(self.groups)):
            key = self._placement_key(index)
            if key not in self._compiled:
                self._compiled[key] = self._epoch.lower(*self._epoch_args(index, 0, 0.0)).compile()
        return time.perf_counter() - start

    def run_epoch(self, epoch: int, lr: float):
        """One epoch of every fold: (metrics name -> (F,), held-out logits (F, T, C)) as numpy."""
        outputs = []
        for index in range(len(self.groups)):
            program = self._compiled[self._placement_key(index)]
            self.states[index], metrics, logits = program(*self._epoch_args(index, epoch, lr))
            outputs.append((metrics, logits))
        return self._stack(metrics for metrics, _ in outputs), self._stack(logits for _, logits in outputs)

    def predict(self) -> np.ndarray:
        return self._stack(
            self._predict(state, fold, x) for state, fold, (x, _) in zip(self.states, self.folds, self.shared)
        )

    def _stack(self, per_group):
        """Host arrays with one leading fold axis from the groups' outputs."""
        join = np.stack if self.strategy == "loop" else np.concatenate
        return jax.tree.map(lambda *leaves: join([np.asarray(leaf) for leaf in leaves]), *per_group)

    def get_state(self):
        return self._stack(jax.device_get(self.states))

    def set_state(self, host_state) -> None:
        for index, group in enumerate(self.groups):
            placement = self.folds[index]["key"].sharding
            self.states[index] = jax.device_put(jax.tree.map(lambda leaf: leaf[group], host_state), placement)
