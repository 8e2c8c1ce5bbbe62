"""Compiled programs that train many folds at once, and the two ways to run them.

`FoldProgram` holds the pure single-fold functions: initialise a fold, train it
for one epoch, predict its held-out samples. A fold's random numbers depend only
on its own key, the epoch and the step, never on the other folds.

Two runners apply them to every fold (measured in benchmarks/fold_parallel.py):

- `VmapRunner` (GPU/TPU): one program for all folds, `vmap` over a leading fold
  axis that is sharded over the devices of a mesh axis named ``fold``.
- `LoopRunner` (CPU): one compiled single-fold program called for each fold in
  turn (folds are spread round-robin over the devices, which then run
  concurrently). On XLA:CPU, vmap turns per-fold convolutions into grouped
  convolutions, many times slower than separate ones.

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

    def fold(self, index: int) -> dict[str, np.ndarray]:
        return {k: v[index] for k, v in dataclasses.asdict(self).items()}


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


class VmapRunner:
    """All folds in one program: vmap over the fold axis, sharded over a `fold` mesh axis."""

    strategy = "vmap"

    def __init__(self, program: FoldProgram, inputs: FoldInputs, x: np.ndarray, labels: np.ndarray, devices=None):
        self.program = program
        self.mesh = Mesh(np.array(devices or jax.devices()), ("fold",))
        if inputs.num_folds % self.mesh.devices.size:
            raise ValueError(f"{inputs.num_folds} folds do not divide over {self.mesh.devices.size} devices; pad them")
        folded = NamedSharding(self.mesh, P("fold"))
        replicated = NamedSharding(self.mesh, P())
        self.fold = {k: jax.device_put(v, folded) for k, v in dataclasses.asdict(inputs).items()}
        self.x = jax.device_put(x, replicated)
        self.labels = jax.device_put(labels, replicated)
        self._init = jax.jit(self._sharded(program.init, 1, 0))
        self._epoch = jax.jit(self._sharded(program.epoch, 2, 4), donate_argnums=0)
        self._predict = jax.jit(self._sharded(program.predict, 2, 1))
        self.state = self._init(self.fold["key"])

    def _sharded(self, fn: Callable, num_fold_args: int, num_shared_args: int) -> Callable:
        def per_device(*args):
            shared = args[num_fold_args:]
            return jax.vmap(lambda *fold_args: fn(*fold_args, *shared))(*args[:num_fold_args])

        specs = (P("fold"),) * num_fold_args + (P(),) * num_shared_args
        return jax.shard_map(per_device, mesh=self.mesh, in_specs=specs, out_specs=P("fold"))

    def compile(self) -> float:
        """Compiles the epoch program for all folds; returns the seconds it took."""
        start = time.perf_counter()
        self._epoch = self._epoch.lower(
            self.state, self.fold, self.x, self.labels, jnp.int32(0), jnp.float32(0.0)
        ).compile()
        return time.perf_counter() - start

    def run_epoch(self, epoch: int, lr: float):
        self.state, metrics, logits = self._epoch(
            self.state, self.fold, self.x, self.labels, jnp.int32(epoch), jnp.float32(lr)
        )
        return jax.tree.map(np.asarray, metrics), np.asarray(logits)

    def predict(self) -> np.ndarray:
        return np.asarray(self._predict(self.state, self.fold, self.x))

    def get_state(self):
        return jax.device_get(self.state)

    def set_state(self, host_state) -> None:
        self.state = jax.device_put(host_state, NamedSharding(self.mesh, P("fold")))


class LoopRunner:
    """One compiled single-fold program, called for each fold; folds go round-robin over the devices."""

    strategy = "loop"

    def __init__(self, program: FoldProgram, inputs: FoldInputs, x: np.ndarray, labels: np.ndarray, devices=None):
        self.program = program
        self.devices = list(devices or jax.devices())
        self.placement = [self.devices[f % len(self.devices)] for f in range(inputs.num_folds)]
        shared = {d: (jax.device_put(x, d), jax.device_put(labels, d)) for d in self.devices}
        self.shared = [shared[d] for d in self.placement]
        self.folds = [jax.device_put(inputs.fold(f), d) for f, d in enumerate(self.placement)]
        init = jax.jit(program.init)
        self._epoch = jax.jit(program.epoch, donate_argnums=0)
        self._predict = jax.jit(program.predict)
        self.states = [init(fold["key"]) for fold in self.folds]

    def compile(self) -> float:
        """Compiles the epoch program once per device in use; returns the seconds it took."""
        start = time.perf_counter()
        self._compiled = {}
        for f, device in enumerate(self.placement):
            if device not in self._compiled:
                x, labels = self.shared[f]
                lowered = self._epoch.lower(self.states[f], self.folds[f], x, labels, jnp.int32(0), jnp.float32(0.0))
                self._compiled[device] = lowered.compile()
        return time.perf_counter() - start

    def run_epoch(self, epoch: int, lr: float):
        outputs = []
        for f, (fold, (x, labels)) in enumerate(zip(self.folds, self.shared)):
            program = self._compiled[self.placement[f]]
            self.states[f], metrics, logits = program(self.states[f], fold, x, labels, jnp.int32(epoch), jnp.float32(lr))
            outputs.append((metrics, logits))
        metrics = {k: np.stack([np.asarray(m[k]) for m, _ in outputs]) for k in outputs[0][0]}
        return metrics, np.stack([np.asarray(logits) for _, logits in outputs])

    def predict(self) -> np.ndarray:
        outputs = [self._predict(s, fold, x) for s, fold, (x, _) in zip(self.states, self.folds, self.shared)]
        return np.stack([np.asarray(o) for o in outputs])

    def get_state(self):
        return jax.tree.map(lambda *leaves: np.stack(leaves), *jax.device_get(self.states))

    def set_state(self, host_state) -> None:
        self.states = [
            jax.device_put(jax.tree.map(lambda leaf: leaf[f], host_state), d) for f, d in enumerate(self.placement)
        ]


RUNNERS = {"vmap": VmapRunner, "loop": LoopRunner}
