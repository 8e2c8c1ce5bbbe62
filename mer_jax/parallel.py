"""Compiled programs that train many folds at once, and the two ways to run them.

`FoldProgram` holds the pure single-fold functions: initialise a fold, train it
for one epoch (or for `steps_per_call` steps of it), predict its held-out
samples. A fold's random numbers depend only on its own key, the epoch and the
step, never on the other folds or on how an epoch is split into calls.

`FoldRunner` applies them to every fold with one of two strategies (measured in
benchmarks/fold_parallel.py):

- `vmap` (GPU/TPU): one program for a group of folds (all by default), `vmap`
  over a leading fold axis that is sharded over the devices of a mesh axis
  named ``fold``.
- `loop` (CPU): one compiled single-fold program called for each fold in turn
  (folds are spread round-robin over the devices, and over `concurrency`
  threads). On XLA:CPU, vmap turns per-fold convolutions into grouped
  convolutions, many times slower than separate ones.

On XLA:CPU a convolution inside a while loop (`lax.scan`, `lax.map`) ran ~16x
slower than the same convolution unrolled (measured here: 3x3, 20x20x16, batch
32), so on CPU the steps of a call are unrolled into the program; elsewhere
they are a `lax.scan`. Compile time grows with the steps unrolled into a
program, so on CPU a program holds one step and is called once per step.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

Loss = Callable[[jax.Array, jax.Array], jax.Array]

# glibc mallopt parameters (malloc.h) and sizes.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_HEAP_RETAIN_BYTES = 1 << 30
_HEAP_MAX_BYTES = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit: the size of a thread arena's heap


@functools.cache
def retain_freed_memory() -> bool:
    """Lets glibc keep freed memory for reuse instead of handing it back to the system.

    XLA:CPU allocates the temporary buffers of every call of a compiled program
    afresh (about 60 MB for one RCN-A training step at batch 64). By default
    glibc serves blocks that large with mmap and unmaps them when freed, and
    deletes a thread arena's extra heaps as soon as they are empty, so every
    call page-faulted its temporary memory again: up to 19 ms of system time
    per one-step call on 2 cores. Here the mmap and trim thresholds are 1 GiB
    and the top pad 64 MiB (which keeps empty thread-arena heaps), so the
    memory is reused. Process-wide; a no-op (False) where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    settings = (
        (_M_MMAP_THRESHOLD, _HEAP_RETAIN_BYTES),
        (_M_TRIM_THRESHOLD, _HEAP_RETAIN_BYTES),
        (_M_TOP_PAD, _HEAP_MAX_BYTES),
    )
    done = [mallopt(option, value) for option, value in settings]  # every setting, even after a failure
    return all(done)


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
        steps_per_call: int = 0,
        masked: bool = True,
    ):
        self.make_model = make_model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.unroll = unroll
        # Steps per compiled call; 0 or >= steps_per_epoch: the whole epoch and the prediction in one call.
        self.steps_per_call = min(steps_per_call or steps_per_epoch, steps_per_epoch)
        self.calls_per_epoch = -(-steps_per_epoch // self.steps_per_call)
        # False: the caller never runs a step beyond a fold's own steps (one fold, one step per call),
        # so the program needs no per-step `where(active, new, old)` over the state.
        self.masked = masked or self.steps_per_call > 1
        self.graphdef = nnx.split(nnx.eval_shape(lambda: make_model(nnx.Rngs(0))), nnx.Param, nnx.BatchStat)[0]

    @property
    def whole_epoch_per_call(self) -> bool:
        return self.calls_per_epoch == 1

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

    def steps(self, state, fold, x, labels, epoch, lr, first):
        """Steps `first` .. `first + steps_per_call - 1` of an epoch: (state, (loss sum, correct sum)).

        Every fold runs `calls_per_epoch * steps_per_call` steps (at least the
        most any fold needs); a fold keeps its state unchanged on the steps
        beyond its own. The batches of an epoch depend only on the fold's key
        and the epoch, so splitting an epoch into calls changes no result.
        """
        key = jax.random.fold_in(fold["key"], epoch + 1)
        # A random order of the fold's training samples first, the other samples after.
        priority = jnp.where(fold["train_mask"], jax.random.uniform(jax.random.fold_in(key, 0), labels.shape), 2.0)
        order = jnp.argsort(priority)[: self.steps_per_epoch * self.batch_size]
        batches = order.reshape(self.steps_per_epoch, self.batch_size)
        padded = self.calls_per_epoch * self.steps_per_call
        if padded > self.steps_per_epoch:  # the steps beyond the epoch are inactive for every fold
            batches = jnp.concatenate([batches, batches[: padded - self.steps_per_epoch]])
        index = first + jnp.arange(self.steps_per_call)
        batches = jax.lax.dynamic_slice_in_dim(batches, first, self.steps_per_call)

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
            new = {"params": params, "stats": stats, "opt": opt}
            correct = jnp.mean(jnp.argmax(logits, -1) == labels[batch])
            if not self.masked:
                return new, (loss, correct)
            active = index < fold["num_steps"]
            state = jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state)
            return state, (jnp.where(active, loss, 0.0), jnp.where(active, correct, 0.0))

        if self.unroll:  # straight-line code: even a one-step lax.scan is an XLA while loop
            losses, corrects = [], []
            for i in range(self.steps_per_call):
                state, (loss, correct) = step(state, (index[i], batches[i]))
                losses.append(loss)
                corrects.append(correct)
            return state, (sum(losses), sum(corrects))
        state, (loss, correct) = jax.lax.scan(step, state, (index, batches))
        return state, (loss.sum(), correct.sum())

    def epoch(self, state, fold, x, labels, epoch, lr):
        """One epoch of SGD on the fold's own training samples in one call: (state, metrics, test logits)."""
        state, (loss, correct) = self.steps(state, fold, x, labels, epoch, lr, jnp.int32(0))
        num_steps = jnp.maximum(fold["num_steps"], 1)
        metrics = {"train_loss": loss / num_steps, "train_accuracy": correct / num_steps}
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
        concurrency: int = 1,
    ):
        self.strategy = strategy
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        devices = list(devices or jax.devices())
        if all(device.platform == "cpu" for device in devices):
            retain_freed_memory()
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
        self.concurrency = min(concurrency, len(groups))
        self._num_steps = [np.asarray(inputs.num_steps[group]) for group in groups]  # on the host
        if not program.masked and strategy != "loop":
            raise ValueError("an unmasked FoldProgram runs one fold per call: use it with the loop strategy")
        arrays = dataclasses.asdict(inputs)
        self.folds = [
            jax.device_put({k: v[group] for k, v in arrays.items()}, placement)
            for group, placement in zip(groups, placements)
        ]
        self.program = program
        # Initialisation runs once per fold, but its many threefry loops took XLA:CPU 1.4-2.3 s to
        # compile at the default optimisation level and 0.3-0.5 s at level 0 (the same values to 1e-7).
        init = jax.jit(self._over_folds(program.init, 1, 0), compiler_options={"xla_backend_optimization_level": 0})
        if program.whole_epoch_per_call:
            self._epoch = jax.jit(self._over_folds(program.epoch, 2, 4), donate_argnums=0)
        else:
            self._epoch = jax.jit(self._over_folds(program.steps, 2, 5), donate_argnums=0)
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

    def _epoch_args(self, index: int, epoch, lr, first=None):
        """The arguments of a call of group `index`; `epoch`, `lr`, `first`: numbers or scalar arrays."""
        x, labels = self.shared[index]
        args = (self.states[index], self.folds[index], x, labels, jnp.asarray(epoch, jnp.int32), jnp.asarray(lr, jnp.float32))
        return args if first is None else (*args, jnp.asarray(first, jnp.int32))

    def _placement_key(self, index: int):
        return "mesh" if self.strategy == "vmap" else self.folds[index]["key"].devices().pop()

    def compile(self) -> float:
        """Compiles the training programs (once per device for `loop`); returns the seconds it took."""
        start = time.perf_counter()
        for index in range(len(self.groups)):
            key = self._placement_key(index)
            if key in self._compiled:
                continue
            if self.program.whole_epoch_per_call:
                self._compiled[key] = self._epoch.lower(*self._epoch_args(index, 0, 0.0)).compile()
            else:
                x, _ = self.shared[index]
                steps = self._epoch.lower(*self._epoch_args(index, 0, 0.0, 0)).compile()
                predict = self._predict.lower(self.states[index], self.folds[index], x).compile()
                self._compiled[key] = (steps, predict)
        return time.perf_counter() - start

    def run_epoch(self, epoch: int, lr: float):
        """One epoch of every fold: (metrics name -> (F,), held-out logits (F, T, C)) as numpy.

        With `concurrency` > 1 the groups are shared among that many threads,
        each running its groups one after another (on 2 CPU cores, two threads
        kept both cores busier than XLA's own intra-op threads did: 26-27 against
        33-35 ms per RCN-A step). A group's results do not depend on which thread
        ran it or on what ran beside it.
        """
        program = self.program
        scalars = (jnp.int32(epoch), jnp.float32(lr))  # made once, not on every call
        firsts = [jnp.int32(call * program.steps_per_call) for call in range(program.calls_per_epoch)]
        outputs = self._each_group(lambda index: self._run_group_epoch(index, *scalars, firsts))
        if not program.whole_epoch_per_call:
            outputs = [(self._split_epoch_metrics(i, sums), logits) for i, (sums, logits) in enumerate(outputs)]
        return self._stack(metrics for metrics, _ in outputs), self._stack(logits for _, logits in outputs)

    def _each_group(self, fn: Callable[[int], Any]) -> list:
        """[fn(0), fn(1), ...] over the groups; on `concurrency` threads, each waiting for its results."""
        if self.concurrency == 1:  # asynchronous dispatch: nothing waits here
            return [fn(index) for index in range(len(self.groups))]
        results = [None] * len(self.groups)

        def worker(first: int) -> None:
            for index in range(first, len(self.groups), self.concurrency):
                results[index] = jax.block_until_ready(fn(index))

        with ThreadPoolExecutor(self.concurrency) as pool:
            for future in [pool.submit(worker, k) for k in range(self.concurrency)]:
                future.result()
        return results

    def _run_group_epoch(self, index: int, epoch: jax.Array, lr: jax.Array, firsts: list[jax.Array]):
        """One epoch of group `index`: (metrics, held-out logits), or ((loss sum, correct sum) per call, logits)."""
        program = self.program
        compiled = self._compiled[self._placement_key(index)]
        if program.whole_epoch_per_call:
            self.states[index], metrics, logits = compiled(*self._epoch_args(index, epoch, lr))
            return metrics, logits
        steps, predict = compiled
        sums, group_steps = [], self._num_steps[index].max()
        for call, first in enumerate(firsts):
            if call * program.steps_per_call >= group_steps:  # every fold of the group is done
                break
            self.states[index], partial = steps(*self._epoch_args(index, epoch, lr, first))
            sums.append(partial)
        return sums, predict(self.states[index], self.folds[index], self.shared[index][0])

    def _split_epoch_metrics(self, index: int, sums) -> dict[str, np.ndarray]:
        """The epoch metrics of group `index` from the (loss sum, correct sum) of each of its calls."""
        loss, correct = (np.sum([np.asarray(partial[i]) for partial in sums], axis=0) for i in (0, 1))
        num_steps = np.maximum(self._num_steps[index], 1)
        return {
            "train_loss": (loss / num_steps).astype(np.float32),
            "train_accuracy": (correct / num_steps).astype(np.float32),
        }

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
