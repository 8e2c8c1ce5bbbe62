"""Every platform-specific choice of the trainer and the models, decided from the backend in one place.

`tuning_for(backend, ...)` returns a `Tuning`: on CPU the formulations and
settings measured faster on XLA:CPU (docs/benchmarks.md), on any other backend
(GPU, TPU) the plain ones. The trainer reads it when it builds the fold
program and the runner (mer_jax/core/loop.py `make_runner`); the models read it
while they are traced, through `current()`, which returns the tuning the
runner traces its programs under (`use`), or else that of JAX's default
backend. No model asks JAX for the backend itself.

Why a context and not a parameter: the tuning changes how a layer computes,
never what (tests/test_models.py checks each formulation against the plain
one), and a model is built from the user's `config.model`; passing the tuning
through every model's constructor would put backend settings into model
configs and checkpoints' fingerprints. It is set in one place, the runner,
around its own jitted functions.

Not a platform choice: the dropout masks of `mer_jax.models.fast_ops.Dropout`
(one random bit per decision at rate 0.5) are used on every backend. They are
exactly Bernoulli(keep), and threefry computes the same bits on every backend,
so a seed draws the same masks on CPU and GPU; switching to
`jax.random.bernoulli` off CPU would give another random stream there, so the
same configuration would train differently on CPU and GPU. They draw far
fewer random words than `jax.random.bernoulli` at rate 0.5, for a few shifts
and comparisons (timed on CPU only so far: docs/benchmarks.md, "GPU").
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Iterator

import jax

from mer_jax.speed.cores import usable_cores

STRATEGIES = ("auto", "vmap", "loop")


@dataclasses.dataclass(frozen=True)
class Tuning:
    """How to train on one backend: CPU gets what docs/benchmarks.md measured faster there, others the plain way.

    Each field with the section of docs/benchmarks.md that measured it:

    - `strategy`: `loop` (one compiled single-fold program per fold) on CPU,
      where `vmap` turns each fold's convolutions into grouped convolutions
      and ran several times slower ("Strategies on CPU (paper RCN)", "mer-jax against
      the PyTorch loop (CPU)"); `vmap` (one program over a group of folds,
      sharded over the devices) elsewhere.
    - `steps_per_call`: optimisation steps per compiled call, 0 for the whole
      epoch. 1 on CPU: its steps are unrolled, so a whole-epoch program took
      longer to compile, and the steps ran no slower one call at a time
      ("Where the time went"). 0 elsewhere: one `lax.scan` call per epoch.
    - `concurrent_folds`: folds (loop) or fold groups (vmap) run at once on
      threads. The usable cores on CPU, where XLA's own threads left the
      cores partly idle and one thread per core saved training time ("Where
      the time went"); 1 elsewhere (one device runs one program at a
      time).
    - `unroll_steps`: a call's steps as straight-line code on CPU, where a
      convolution inside an XLA while loop ran many times slower ("What the
      profile showed (CPU)"); a `lax.scan` elsewhere, whose compile time does not grow
      with the steps.
    - `unoptimized_init`: the fold initialisation compiled at XLA's backend
      optimisation level 0 on CPU, where its many threefry loops compiled
      several times faster than at the default level, to the same values
      ("Where the time went"); it runs once per fold. Off elsewhere: measured on XLA:CPU only.
    - `retain_freed_memory`: glibc keeps freed memory (mer_jax/speed/host_memory.py)
      on CPU, where XLA:CPU's per-call temporaries were otherwise mapped and
      unmapped on every call, costing system time on every one-step call
      ("Where the time went"). Off elsewhere: the device's allocator holds
      the temporaries.
    - `sliced_weight_grad`: convolution weight gradients summed over batch
      slices (`fast_ops.conv_sliced_weight_grad`) on CPU, faster for the 5x5
      stem and so for a whole RCN-A step ("What the profile showed (CPU)"). Off elsewhere: measured on XLA:CPU only, and it splits one
      kernel into several smaller ones.
    - `windowed_stem`: a stride-1 conv followed by max pooling computed window
      by window, with a fused BatchNorm -> ReLU -> max pool and its
      hand-written gradient (`layers.ConvBNReLU.pooled`), on CPU, where the
      stem's forward pass took half the CPU time ("Where the time went"). Off
      elsewhere: measured on XLA:CPU only; the plain conv -> BatchNorm -> ReLU
      -> max pool gives the same values (tests/test_models.py).
    """

    backend: str
    strategy: str
    steps_per_call: int
    concurrent_folds: int
    unroll_steps: bool
    unoptimized_init: bool
    retain_freed_memory: bool
    sliced_weight_grad: bool
    windowed_stem: bool


def resolve_strategy(strategy: str, backend: str) -> str:
    """`train.strategy`: `auto` -> `loop` on CPU, `vmap` elsewhere; `loop` and `vmap` as given."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown train.strategy {strategy!r}; valid: {STRATEGIES}")
    if strategy != "auto":
        return strategy
    return "loop" if backend == "cpu" else "vmap"


def resolve_steps_per_call(steps_per_call: int, backend: str) -> int:
    """`train.steps_per_call`: 0 (auto) -> 1 on CPU, the whole epoch (0) elsewhere; others as given."""
    if steps_per_call < 0:
        raise ValueError(f"train.steps_per_call must be >= 0 (0: auto), got {steps_per_call}")
    if steps_per_call:
        return int(steps_per_call)
    return 1 if backend == "cpu" else 0


def resolve_concurrent_folds(concurrent_folds: int, backend: str) -> int:
    """`train.concurrent_folds`: 0 (auto) -> the CPU cores this process may use on CPU, 1 elsewhere."""
    if concurrent_folds < 0:
        raise ValueError(f"train.concurrent_folds must be >= 0 (0: auto), got {concurrent_folds}")
    if concurrent_folds:
        return int(concurrent_folds)
    return usable_cores() if backend == "cpu" else 1


def tuning_for(backend: str, *, strategy: str = "auto", steps_per_call: int = 0, concurrent_folds: int = 0) -> Tuning:
    """The tuning of `backend` ('cpu', 'gpu', 'tpu'), with the config's `train.strategy`,
    `train.steps_per_call` and `train.concurrent_folds` applied (`auto` / 0: the backend's choice)."""
    cpu = backend == "cpu"
    return Tuning(
        backend=backend,
        strategy=resolve_strategy(strategy, backend),
        steps_per_call=resolve_steps_per_call(steps_per_call, backend),
        concurrent_folds=resolve_concurrent_folds(concurrent_folds, backend),
        unroll_steps=cpu,
        unoptimized_init=cpu,
        retain_freed_memory=cpu,
        sliced_weight_grad=cpu,
        windowed_stem=cpu,
    )


_ACTIVE: contextvars.ContextVar[Tuning | None] = contextvars.ContextVar("mer_jax_tuning", default=None)


@contextlib.contextmanager
def use(tuning: Tuning) -> Iterator[Tuning]:
    """Makes `tuning` what `current()` returns inside the block (in this thread): the runner traces under it.

    JAX caches a jitted function's trace by its arguments only, so a function
    traced under one tuning is not traced again under another: trace each
    function under one tuning (the runner jits functions of its own).
    """
    token = _ACTIVE.set(tuning)
    try:
        yield tuning
    finally:
        _ACTIVE.reset(token)


@functools.cache
def _default_tuning(backend: str) -> Tuning:
    return tuning_for(backend)


def current() -> Tuning:
    """The tuning of the code being traced: the one `use` set, else that of JAX's default backend."""
    return _ACTIVE.get() or _default_tuning(jax.default_backend())
