"""Runs over several processes (hosts): `jax.distributed`, each process's share of the folds, and gathering.

A TPU pod slice or a multi-node GPU job runs the same command on every host.
:func:`initialize` joins them (`jax.distributed.initialize`); with no settings
it leaves a run single-process. :func:`share` gives each process its folds:
fold f goes to process f mod P, and the fold of everything (the final model)
to process 0, which writes every output. Each process trains its folds on its
own devices with the folds' own keys, so every fold gives what it gives in a
single-process run. :func:`gather` then joins the per-fold results of all
processes on every process, in fold order (`multihost_utils.process_allgather`;
on CPU through gloo collectives).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    from_platform: bool = False,
) -> None:
    """Joins the processes of a run; does nothing without settings.

    Args:
      coordinator_address: 'host:port' of process 0.
      num_processes, process_id: this run's process count and this process's index.
      from_platform: take all three from the platform (TPU VMs, SLURM), as
        `jax.distributed.initialize()` with no arguments does.
    """
    given = (coordinator_address, num_processes, process_id)
    if not from_platform and all(value is None for value in given):
        return
    if not from_platform and any(value is None for value in given):
        raise ValueError(
            "a multi-process run needs --coordinator_address, --num_processes and --process_id together "
            f"(got {coordinator_address!r}, {num_processes!r}, {process_id!r}), or --distributed where the "
            "platform supplies them"
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes talk through gloo
    if from_platform:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address, num_processes=num_processes, process_id=process_id)


def share(num_folds: int, *, final_fold: int | None = None) -> np.ndarray:
    """The indices of the folds this process trains: f mod P == p, and `final_fold` on process 0."""
    return _share_of(jax.process_index(), jax.process_count(), num_folds, final_fold)


def gather(per_fold: dict[str, np.ndarray], num_folds: int, *, final_fold: int | None = None) -> dict[str, np.ndarray]:
    """Every process's per-fold arrays (fold axis first, this process's :func:`share` in order) joined in fold order.

    Single-process: returned as they are.
    """
    count = jax.process_count()
    if count == 1:
        return per_fold
    shares = [_share_of(p, count, num_folds, final_fold) for p in range(count)]
    width = max(len(s) for s in shares)
    out = {}
    for name, values in per_fold.items():
        values = np.asarray(values)
        everyone = np.asarray(multihost_utils.process_allgather(padded(values, width)))  # (P, width, ...)
        joined = np.zeros((num_folds, *values.shape[1:]), values.dtype)
        for process, folds in enumerate(shares):
            joined[folds] = everyone[process, : len(folds)]
        out[name] = joined
    return out


def padded(rows: np.ndarray, size: int) -> np.ndarray:
    """`rows` with zero rows appended up to `size` along the first axis (shares of one width on every process)."""
    out = np.zeros((size, *rows.shape[1:]), rows.dtype)
    out[: len(rows)] = rows
    return out


def largest(values: np.ndarray) -> np.ndarray:
    """Element-wise the largest of every process's `values` (of one shape on every process)."""
    if jax.process_count() == 1:
        return values
    return np.max(np.asarray(multihost_utils.process_allgather(values)), axis=0)


def maximum(value: float) -> float:
    """The largest of every process's `value` (e.g. the slowest process's training time)."""
    return float(largest(np.float64(value)))


def _share_of(process: int, count: int, num_folds: int, final_fold: int | None) -> np.ndarray:
    mine = [f for f in range(num_folds) if f != final_fold and f % count == process]
    if final_fold is not None and process == 0:
        mine.append(final_fold)
    return np.asarray(sorted(mine), np.int64)


def is_writer() -> bool:
    """Whether this process writes the run's outputs (process 0)."""
    return jax.process_index() == 0
