"""Run a FoldProgram over every fold: a shared base and the two strategies, `loop` and `vmap`.

- `LoopRunner` (CPU): one compiled single-fold program called for each fold
  in turn; folds are spread round-robin over the devices.
- `VmapRunner` (GPU/TPU): one program for a group of folds (all by default),
  `vmap` over a leading fold axis sharded over the devices of a mesh axis
  named ``fold``.

Which one `auto` picks, how many steps a call runs and how many groups run at
once on threads come from the runner's `Tuning` (mer_jax/speed/platform.py, with the
measurements in docs/benchmarks.md). The runner traces every program under
that tuning, so the models take its formulations whatever JAX's default
backend is.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mer_jax.speed import platform
from mer_jax.speed.device_memory import MemoryEstimate, temp_bytes, tree_bytes
from mer_jax.speed.host_memory import release_large_blocks, retain_freed_memory
from mer_jax.core.parallel import FoldInputs, FoldProgram


# Data kept off the device: calls of a group dispatched and not yet finished, each holding its batches. The
# host gathers the next call's batches while the device runs the one before; without a bound it ran a whole
# epoch ahead, holding every batch of it (docs/benchmarks.md, "TLCNN").
CALLS_IN_FLIGHT = 2


class FoldRunner(abc.ABC):
    """Applies a FoldProgram to every fold, one group of folds per compiled call.

    A subclass says how the folds are grouped and placed on the devices
    (`_place`), how a function of one fold becomes a function of a group
    (`_lift`), and how the groups' outputs join on the fold axis (`_join`).
    Groups placed alike share one compiled program.
    """

    strategy: str
    one_fold_per_call: bool  # True: the program may leave out masking the steps beyond a fold's own
    _join: Callable[[list[np.ndarray]], np.ndarray]  # the groups' host outputs -> one leading fold axis

    @classmethod
    @abc.abstractmethod
    def fold_multiple(cls, fold_chunk: int, num_devices: int) -> int:
        """The fold count must be a multiple of this (pad with empty folds)."""

    @abc.abstractmethod
    def _place(self, num_folds: int, devices: list) -> tuple[list, list, list]:
        """(groups: indices into the fold axis, the placement of each group's fold arrays, of its x and labels)."""

    @abc.abstractmethod
    def _lift(self, fn: Callable, num_fold_args: int, num_shared_args: int) -> Callable:
        """`fn` of one fold's arguments then shared ones -> the same of a group's arguments."""

    def __init__(
        self,
        program: FoldProgram,
        inputs: FoldInputs,
        x: np.ndarray,
        labels: np.ndarray,
        *,
        tuning: platform.Tuning,
        devices=None,
        fold_chunk: int = 0,
        data_on_device: bool = True,
    ):
        if tuning.concurrent_folds < 1:
            raise ValueError(f"concurrent folds must be >= 1, got {tuning.concurrent_folds}")
        if not (program.masked or self.one_fold_per_call):
            raise ValueError(f"an unmasked FoldProgram runs one fold per call: {self.strategy} runs groups of folds")
        if not data_on_device:  # each call's batches are new host arrays: freed blocks go back at once
            release_large_blocks()
        elif tuning.retain_freed_memory:
            retain_freed_memory()
        self.program = program
        self.tuning = tuning
        self.fold_chunk = fold_chunk
        self.num_folds = inputs.num_folds
        self.num_devices = len(devices or jax.devices())
        self.groups, placements, data_placements = self._place(inputs.num_folds, list(devices or jax.devices()))
        self.data_on_device = data_on_device
        if data_on_device:  # one copy of x and the labels per placement, shared by its groups
            on_device = {}
            for placement in data_placements:
                on_device.setdefault(placement, jax.device_put((x, labels), placement))
            self.shared = [on_device[placement] for placement in data_placements]
        else:  # each call's examples gathered here and sent with it (`_epoch_args`)
            self.host_data = (x, labels)
            self._test_index = [np.asarray(inputs.test_index[group]) for group in self.groups]
        self.concurrency = min(tuning.concurrent_folds, len(self.groups))
        self._num_steps = [np.asarray(inputs.num_steps[group]) for group in self.groups]  # on the host
        arrays = inputs.arrays()
        self.folds = [
            jax.device_put({k: v[group] for k, v in arrays.items()}, placement)
            for group, placement in zip(self.groups, placements)
        ]
        level_0 = {"xla_backend_optimization_level": 0} if tuning.unoptimized_init else None
        init = self._jit(program.init, 1, 0, compiler_options=level_0)
        if not data_on_device:
            self._epoch = self._jit(program.fed_steps, 4, 3, donate_argnums=0)
            self._order = self._jit(program.batch_order, 1, 1)
            self._predict = self._jit(program.predict_examples, 2, 0)
        else:
            if program.whole_epoch_per_call:
                self._epoch = self._jit(program.epoch, 2, 4, donate_argnums=0)
            else:
                self._epoch = self._jit(program.steps, 2, 5, donate_argnums=0)
            self._predict = self._jit(program.predict, 2, 1)
        self.states = [init(fold["key"]) for fold in self.folds]
        self._compiled = {}

    def _jit(self, fn: Callable, num_fold_args: int, num_shared_args: int, **options) -> Callable:
        """The jitted group function of `fn`, traced under this runner's tuning."""
        lifted = self._lift(fn, num_fold_args, num_shared_args)

        def under_tuning(*args):
            with platform.use(self.tuning):
                return lifted(*args)

        return jax.jit(under_tuning, **options)

    @property
    def _whole_epoch_calls(self) -> bool:
        return self.program.whole_epoch_per_call and self.data_on_device

    def _epoch_args(self, index: int, epoch, lr, first=None, order=None):
        """The arguments of a call of group `index`; `epoch`, `lr`, `first`: numbers or scalar arrays.
        Data kept off the device: `order` is the group's `batch_order` of the epoch, on the host."""
        if self.data_on_device:
            x, labels = self.shared[index]
        else:  # this call's examples (steps_per_call, batch_size, ...) per fold, gathered here
            rows = order[..., int(first) : int(first) + self.program.steps_per_call, :]
            x, labels = jax.device_put((self.host_data[0][rows], self.host_data[1][rows]), self._fold_placement(index))
        scalars = (jnp.asarray(epoch, jnp.int32), jnp.asarray(lr, jnp.float32))
        args = (self.states[index], self.folds[index], x, labels, *scalars)
        return args if first is None else (*args, jnp.asarray(first, jnp.int32))

    def _fold_placement(self, index: int):
        return self.folds[index]["key"].sharding

    def _host_order(self, index: int, epoch) -> np.ndarray:
        """Group `index`'s batches of `epoch` ((folds,) steps, batch_size) on the host."""
        return np.asarray(self._order(self.folds[index], jnp.asarray(epoch, jnp.int32)))

    def _test_chunks(self, index: int):
        """Group `index`'s held-out examples in slices of `batch_size`, each ((folds,) batch_size, ...) on its
        devices, for data kept off the device; the last slice padded with example 0."""
        test = self._test_index[index]
        size = self.program.batch_size
        padded = -(-test.shape[-1] // size) * size
        test = np.concatenate([test, np.zeros((*test.shape[:-1], padded - test.shape[-1]), test.dtype)], axis=-1)
        for start in range(0, padded, size):
            yield jax.device_put(self.host_data[0][test[..., start : start + size]], self._fold_placement(index))

    def _predict_group(self, index: int, predict=None):
        """The held-out logits of group `index`, by `predict` (default: the jitted prediction)."""
        predict = predict or self._predict
        if self.data_on_device:
            return predict(self.states[index], self.folds[index], self.shared[index][0])
        test = self._test_index[index]
        axis = test.ndim - 1  # the examples' axis, after the group's fold axis (vmap)
        logits = jnp.concatenate([predict(self.states[index], x) for x in self._test_chunks(index)], axis=axis)
        return jax.lax.slice_in_dim(logits, 0, test.shape[-1], axis=axis)

    def _compile_key(self, index: int):
        """Groups whose fold arrays are placed alike run one compiled program."""
        return self._fold_placement(index)

    def compile(self) -> float:
        """Compiles the training programs (once per placement); returns the seconds it took."""
        start = time.perf_counter()
        for index in range(len(self.groups)):
            key = self._compile_key(index)
            if key in self._compiled:
                continue
            if self._whole_epoch_calls:
                self._compiled[key] = self._epoch.lower(*self._epoch_args(index, 0, 0.0)).compile()
                continue
            if self.data_on_device:
                order, predict_args = None, (self.states[index], self.folds[index], self.shared[index][0])
            else:
                order, predict_args = self._host_order(index, 0), (self.states[index], next(self._test_chunks(index)))
            steps = self._epoch.lower(*self._epoch_args(index, 0, 0.0, 0, order)).compile()
            self._compiled[key] = (steps, self._predict.lower(*predict_args).compile())
        return time.perf_counter() - start

    def memory_estimate(self) -> MemoryEstimate:
        """One device's memory while this runner trains (mer_jax/speed/device_memory.py); call after `compile`."""
        compiled = self._compiled[self._compile_key(0)]
        programs = compiled if isinstance(compiled, tuple) else (compiled,)
        group_size = len(np.atleast_1d(np.arange(self.num_folds)[self.groups[0]]))
        folds_per_call = max(1, group_size // self.num_devices)
        if self.data_on_device:
            data = tree_bytes(self.shared[0])  # every device holds all of x and the labels
        else:  # a call's examples of its folds on the device (and the next call's, being sent)
            x, labels = self.host_data
            data = 2 * folds_per_call * self.program.steps_per_call * self.program.batch_size
            data *= (x[:1].nbytes + labels[:1].nbytes) * self._calls_at_once()
        return MemoryEstimate(
            data=data,
            data_on_device=self.data_on_device,
            state_per_fold=tree_bytes(self.states[0]) // group_size,
            folds_per_device=-(-self.num_folds // self.num_devices),
            temp_per_call=max(temp_bytes(program) for program in programs),
            folds_per_call=folds_per_call,
            calls_at_once=self._calls_at_once(),
        )

    @abc.abstractmethod
    def _calls_at_once(self) -> int:
        """Compiled calls running at once on one device."""

    def run_epoch(self, epoch: int, lr: float):
        """One epoch of every fold: (metrics name -> (F,), held-out logits (F, T, C)) as numpy.

        With `concurrency` > 1 the groups are shared among that many threads,
        each running its groups one after another (on 2 CPU cores, two threads
        kept both cores busier than XLA's own intra-op threads did:
        docs/benchmarks.md, "Where the time went"). A group's results do not depend on which thread
        ran it or on what ran beside it.
        """
        program = self.program
        scalars = (jnp.int32(epoch), jnp.float32(lr))  # made once, not on every call
        firsts = [jnp.int32(call * program.steps_per_call) for call in range(program.calls_per_epoch)]
        outputs = self._each_group(lambda index: self._run_group_epoch(index, *scalars, firsts))
        if not self._whole_epoch_calls:
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
        compiled = self._compiled[self._compile_key(index)]
        if self._whole_epoch_calls:
            self.states[index], metrics, logits = compiled(*self._epoch_args(index, epoch, lr))
            return metrics, logits
        steps, predict = compiled
        order = None if self.data_on_device else self._host_order(index, epoch)
        sums, group_steps = [], self._num_steps[index].max()
        for call, first in enumerate(firsts):
            if call * program.steps_per_call >= group_steps:  # every fold of the group is done
                break
            if order is not None and call >= CALLS_IN_FLIGHT:  # bound the batches waiting on the host
                jax.block_until_ready(sums[call - CALLS_IN_FLIGHT])
            self.states[index], partial = steps(*self._epoch_args(index, epoch, lr, first, order))
            sums.append(partial)
        return sums, self._predict_group(index, predict)

    def _split_epoch_metrics(self, index: int, sums) -> dict[str, np.ndarray]:
        """The epoch metrics of group `index` from the (loss sum, correct sum) of each of its calls."""
        loss, correct = (np.sum([np.asarray(partial[i]) for partial in sums], axis=0) for i in (0, 1))
        num_steps = np.maximum(self._num_steps[index], 1)
        return {
            "train_loss": (loss / num_steps).astype(np.float32),
            "train_accuracy": (correct / num_steps).astype(np.float32),
        }

    def stop(self, folds: np.ndarray) -> None:
        """The folds `folds` (indices into the fold axis) take no more steps: their states stay as they are."""
        positions = np.arange(self.num_folds)
        for index, group in enumerate(self.groups):  # a fold index (loop) or a slice of the fold axis (vmap)
            self._set_num_steps(index, np.where(np.isin(positions[group], folds), 0, self._num_steps[index]))

    def limit_steps(self, steps: int) -> None:
        """Every fold takes at most `steps` steps per epoch (mer_jax/speed/strategy_timing.py times a few)."""
        for index in range(len(self.groups)):
            self._set_num_steps(index, np.minimum(self._num_steps[index], steps))

    def _set_num_steps(self, index: int, num_steps: np.ndarray) -> None:
        """Group `index`'s steps per epoch, on the host and on its devices."""
        num_steps = num_steps.astype(np.int32)
        self._num_steps[index] = num_steps
        self.folds[index]["num_steps"] = jax.device_put(num_steps, self.folds[index]["num_steps"].sharding)

    def predict(self) -> np.ndarray:
        return self._stack(self._predict_group(index) for index in range(len(self.groups)))

    def _stack(self, per_group):
        """Host arrays with one leading fold axis from the groups' outputs."""
        return jax.tree.map(lambda *leaves: self._join([np.asarray(leaf) for leaf in leaves]), *per_group)

    def get_state(self):
        return self._stack(jax.device_get(self.states))

    def set_state(self, host_state) -> None:
        for index, group in enumerate(self.groups):
            placement = self._fold_placement(index)
            self.states[index] = jax.device_put(jax.tree.map(lambda leaf: leaf[group], host_state), placement)


class LoopRunner(FoldRunner):
    """Groups of one fold, fold f on device f % num_devices, each call running the single-fold program itself.

    On XLA:CPU, vmap turns per-fold convolutions into grouped convolutions,
    many times slower than separate ones (docs/benchmarks.md). `fold_chunk`
    has no effect.
    """

    strategy = "loop"
    one_fold_per_call = True
    _join = staticmethod(np.stack)

    @classmethod
    def fold_multiple(cls, fold_chunk: int, num_devices: int) -> int:
        return 1

    def _place(self, num_folds, devices):
        groups = list(range(num_folds))
        placements = [devices[f % len(devices)] for f in groups]
        return groups, placements, placements

    def _lift(self, fn, num_fold_args, num_shared_args):
        return fn

    def _calls_at_once(self) -> int:
        return -(-self.concurrency // self.num_devices)  # the concurrent folds spread over the devices


class VmapRunner(FoldRunner):
    """Groups of `fold_chunk` folds (all folds if 0), vectorized over a fold axis sharded over the devices.

    The fold count must be a multiple of the group size, itself a multiple of
    the device count (`fold_multiple`: pad with empty folds). A smaller group
    bounds device memory.
    """

    strategy = "vmap"
    one_fold_per_call = False
    _join = staticmethod(np.concatenate)

    @classmethod
    def fold_multiple(cls, fold_chunk: int, num_devices: int) -> int:
        """The group size, `fold_chunk` rounded up to whole folds per device; the device count if 0."""
        return -(-fold_chunk // num_devices) * num_devices if fold_chunk else num_devices

    def _place(self, num_folds, devices):
        self.mesh = Mesh(np.array(devices), ("fold",))
        chunk = self.fold_multiple(self.fold_chunk, len(devices)) if self.fold_chunk else num_folds
        if chunk % len(devices) or num_folds % chunk:
            raise ValueError(
                f"vmap runs groups of {chunk} folds over {len(devices)} devices: the group size must be a "
                f"multiple of the device count and divide the (padded) fold count {num_folds}"
            )
        groups = [slice(start, start + chunk) for start in range(0, num_folds, chunk)]
        return groups, [NamedSharding(self.mesh, P("fold"))] * len(groups), [NamedSharding(self.mesh, P())] * len(groups)

    def _lift(self, fn, num_fold_args, num_shared_args):
        def per_device(*args):
            shared = args[num_fold_args:]
            return jax.vmap(lambda *fold_args: fn(*fold_args, *shared))(*args[:num_fold_args])

        specs = (P("fold"),) * num_fold_args + (P(),) * num_shared_args
        return jax.shard_map(per_device, mesh=self.mesh, in_specs=specs, out_specs=P("fold"))

    def _calls_at_once(self) -> int:
        return self.concurrency  # every group spans every device


RUNNERS: dict[str, type[FoldRunner]] = {runner.strategy: runner for runner in (LoopRunner, VmapRunner)}
