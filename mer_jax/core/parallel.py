"""The pure functions of one fold, which mer_jax/core/runners.py applies to every fold.

`FoldProgram` initialises a fold, trains it for one epoch (or for
`steps_per_call` steps of it) and predicts its held-out samples. A fold's
random numbers depend only on its own key, the epoch and the step, never on
the other folds or on how an epoch is split into calls. Its steps are unrolled
into straight-line code or run as a `lax.scan` (`unroll`, decided by
mer_jax/speed/platform.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

Loss = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class FoldInputs:
    """Per-fold arrays, each with a leading fold axis."""

    key: np.ndarray  # (F, 2) uint32, the fold's root key
    train_mask: np.ndarray  # (F, N) bool
    num_steps: np.ndarray  # (F,) int32, optimisation steps per epoch
    test_index: np.ndarray  # (F, T) int32, the held-out samples, padded
    test_valid: np.ndarray  # (F, T) bool
    class_weight: np.ndarray | None = None  # (F, ..., C) the loss's weight per class; None: unweighted

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-fold arrays by name, those given only."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

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

    def batch_order(self, fold, epoch):
        """(calls_per_epoch * steps_per_call, batch_size) int32: the samples of each step of `epoch`.

        A random order of the fold's training samples first, the other samples
        after, cut into batches; a pure function of the fold's key and the
        epoch. The steps beyond the epoch (padding to whole calls) repeat its
        first batches and are inactive for every fold.
        """
        key = jax.random.fold_in(fold["key"], epoch + 1)
        mask = fold["train_mask"]
        priority = jnp.where(mask, jax.random.uniform(jax.random.fold_in(key, 0), mask.shape), 2.0)
        order = jnp.argsort(priority)[: self.steps_per_epoch * self.batch_size]
        batches = order.reshape(self.steps_per_epoch, self.batch_size).astype(jnp.int32)
        padded = self.calls_per_epoch * self.steps_per_call
        if padded > self.steps_per_epoch:
            batches = jnp.concatenate([batches, batches[: padded - self.steps_per_epoch]])
        return batches

    def steps(self, state, fold, x, labels, epoch, lr, first):
        """Steps `first` .. `first + steps_per_call - 1` of an epoch: (state, (loss sum, correct sum)).

        Every fold runs `calls_per_epoch * steps_per_call` steps (at least the
        most any fold needs); a fold keeps its state unchanged on the steps
        beyond its own. The batches of an epoch depend only on the fold's key
        and the epoch, so splitting an epoch into calls changes no result.
        """
        batches = jax.lax.dynamic_slice_in_dim(self.batch_order(fold, epoch), first, self.steps_per_call)
        return self._train(state, fold, batches, lambda batch: (x[batch], labels[batch]), epoch, lr, first)

    def fed_steps(self, state, fold, x, labels, epoch, lr, first):
        """As :meth:`steps`, with each step's examples given: x (steps_per_call, batch_size, ...) and labels
        (steps_per_call, batch_size), gathered by the caller along :meth:`batch_order` (data kept off the device)."""
        return self._train(state, fold, (x, labels), lambda examples: examples, epoch, lr, first)

    def _train(self, state, fold, per_step, examples, epoch, lr, first):
        """`steps_per_call` steps from step `first`; `per_step` has a leading step axis and `examples(item)` gives
        one step's (x, labels) from its item."""
        key = jax.random.fold_in(fold["key"], epoch + 1)
        index = first + jnp.arange(self.steps_per_call)

        def step(state, inputs):
            index, item = inputs
            x, labels = examples(item)

            def objective(params):
                logits, stats = self.forward(
                    params, state["stats"], x, train=True, key=jax.random.fold_in(key, index + 1)
                )
                weight = {"alpha": fold["class_weight"]} if "class_weight" in fold else {}
                return self.loss_fn(logits, labels, **weight), (logits, stats)

            (loss, (logits, stats)), grads = jax.value_and_grad(objective, has_aux=True)(state["params"])
            updates, opt = self.optimizer.update(grads, state["opt"], state["params"])
            params = jax.tree.map(lambda p, u: p - lr * u, state["params"], updates)
            new = {"params": params, "stats": stats, "opt": opt}
            correct = jnp.mean(jnp.argmax(logits, -1) == labels)
            if not self.masked:
                return new, (loss, correct)
            active = index < fold["num_steps"]
            state = jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state)
            return state, (jnp.where(active, loss, 0.0), jnp.where(active, correct, 0.0))

        if self.unroll:  # straight-line code: even a one-step lax.scan is an XLA while loop
            losses, corrects = [], []
            for i in range(self.steps_per_call):
                state, (loss, correct) = step(state, (index[i], jax.tree.map(lambda a: a[i], per_step)))
                losses.append(loss)
                corrects.append(correct)
            return state, (sum(losses), sum(corrects))
        state, (loss, correct) = jax.lax.scan(step, state, (index, per_step))
        return state, (loss.sum(), correct.sum())

    def predict_examples(self, state, x):
        """Logits of the examples `x` (eval mode), as :meth:`predict` for examples gathered by the caller."""
        return self.forward(state["params"], state["stats"], x, train=False)[0]

    def epoch(self, state, fold, x, labels, epoch, lr):
        """One epoch of SGD on the fold's own training samples in one call: (state, metrics, test logits)."""
        state, (loss, correct) = self.steps(state, fold, x, labels, epoch, lr, jnp.int32(0))
        num_steps = jnp.maximum(fold["num_steps"], 1)
        metrics = {"train_loss": loss / num_steps, "train_accuracy": correct / num_steps}
        return state, metrics, self.predict(state, fold, x)
