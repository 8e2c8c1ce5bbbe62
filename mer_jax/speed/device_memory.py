"""How much device memory training takes, from XLA's own buffer assignment, printed before the first epoch.

A device holds three things while it trains: the data (x and the labels, one
copy shared by every fold placed on it), the state of each of its folds
(parameters, BatchNorm statistics, optimizer state: all resident for the whole
run, whatever the grouping), and the temporaries of the calls running on it
(activations and gradients of a batch, for every fold of a call at once).
`train.fold_chunk` bounds the last: a vmap call of fewer folds needs fewer
temporaries. The temporaries come from the compiled program
(`jax.stages.Compiled.memory_analysis`), so they are the compiler's figure for
this model, batch and platform, not a formula's.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

_MIB = 2**20


def tree_bytes(tree) -> int:
    """Bytes of every array leaf of `tree`."""
    return int(sum(np.dtype(leaf.dtype).itemsize * int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree)))


def temp_bytes(compiled) -> int:
    """The temporaries of one call of a compiled program (0 where the backend gives no analysis)."""
    analysis = compiled.memory_analysis()
    return 0 if analysis is None else int(analysis.temp_size_in_bytes)


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """One device's memory while it trains, in bytes."""

    data: int  # x and labels on the device, shared by its folds; or, kept off it, the calls' examples
    data_on_device: bool  # False: each call's examples are sent with it (train.data_on_device)
    state_per_fold: int  # one fold's params, statistics and optimizer state
    folds_per_device: int  # folds whose state the device holds (all of them, on one device)
    temp_per_call: int  # temporaries of one compiled call
    folds_per_call: int  # folds a call trains at once on the device (vmap: its share of a group; loop: 1)
    calls_at_once: int  # calls running at once on the device (loop: concurrent folds)

    @property
    def per_fold(self) -> int:
        """A fold's own share: its state and its part of a call's temporaries."""
        return self.state_per_fold + self.temp_per_call // max(self.folds_per_call, 1)

    @property
    def per_device(self) -> int:
        return self.data + self.folds_per_device * self.state_per_fold + self.calls_at_once * self.temp_per_call

    def text(self) -> str:
        where = "all of it" if self.data_on_device else "the calls' batches, sent from the host"
        return (
            f"device memory (estimated by XLA): {self.per_fold / _MIB:,.1f} MiB a fold "
            f"({self.state_per_fold / _MIB:,.1f} MiB weights and optimizer state, "
            f"{(self.per_fold - self.state_per_fold) / _MIB:,.1f} MiB activations and gradients); "
            f"{self.per_device / _MIB:,.1f} MiB a device = data {self.data / _MIB:,.1f} MiB ({where}) + "
            f"{self.folds_per_device} folds' state + {self.calls_at_once} call(s) of {self.folds_per_call} "
            f"fold(s) at once (train.fold_chunk makes vmap calls smaller)"
        )
