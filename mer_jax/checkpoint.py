"""Orbax checkpoints of the stacked fold state, so that a killed run resumes where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp


# Train settings that change no result: the epoch count (a longer run continues a shorter one), how
# often it saves, and how the folds are run (tests/test_train.py: every strategy, fold chunk, steps per
# call and count of concurrent folds gives the same held-out logits).
RESUMABLE_ACROSS = ("epochs", "checkpoint_every", "strategy", "fold_chunk", "steps_per_call", "concurrent_folds")


def config_fingerprint(config: ml_collections.ConfigDict, folds: np.ndarray) -> str:
    """What must match for a checkpoint to be resumed: the config but the train keys of RESUMABLE_ACROSS,
    and `folds`, what numbers the folds' random keys (their ids and seeds)."""
    as_dict = config.to_dict()
    as_dict["train"] = {k: v for k, v in as_dict["train"].items() if k not in RESUMABLE_ACROSS}
    return json.dumps({"config": as_dict, "folds": np.asarray(folds).tolist()}, sort_keys=True, default=str)


def _fit_folds(saved: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """`saved` with as many folds as `fresh`.

    Runs that group folds differently (strategy, fold_chunk, device count) pad
    the real folds with different numbers of empty folds, which never train:
    the ones a checkpoint lacks keep their fresh state, the extra ones it has
    are left out.
    """
    n = min(len(saved), len(fresh))
    return np.concatenate([saved[:n], fresh[n:]])


def this_process_only() -> ocp.options.MultiprocessingOptions:
    """Orbax options for a checkpoint that one process writes alone (its own folds, mer_jax/distributed.py):
    no barrier with the other processes, which write their own."""
    process = jax.process_index()
    return ocp.options.MultiprocessingOptions(
        primary_host=process, active_processes={process}, barrier_sync_key_prefix=f"process_{process}"
    )


class Checkpointer:
    """Saves (state, epoch, history, training time) every few epochs; restores the latest."""

    def __init__(self, directory: Path, fingerprint: str, keep: int = 2):
        self.fingerprint = fingerprint
        Path(directory).mkdir(parents=True, exist_ok=True)  # orbax creates none for a one-process checkpoint
        self.manager = ocp.CheckpointManager(
            Path(directory).absolute(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=False, enable_async_checkpointing=False,
                multiprocessing_options=this_process_only(),
            ),
        )

    def restore(self, template):
        """(state, epoch, history, train seconds so far) of the latest checkpoint, or None if there is none.

        `template` is the fresh host (numpy) state of the run, every leaf with a
        leading fold axis; the checkpoint's may have other numbers of empty folds.
        """
        step = self.manager.latest_step()
        if step is None:
            return None
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore()),
        )
        meta = restored["meta"]
        if meta["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"{self.manager.directory} holds checkpoints of a different configuration; "
                "use another --workdir or delete that folder to start over"
            )
        history = {k: [np.asarray(row) for row in v] for k, v in meta["history"].items()}
        state = jax.tree.map(_fit_folds, restored["state"], template)
        return state, int(meta["epoch"]), history, float(meta["train_seconds"])

    def save(self, epoch: int, state, history: dict[str, list[np.ndarray]], train_seconds: float) -> None:
        """`state` is a host (numpy) pytree; `train_seconds` the training time of all epochs so far."""
        meta = {
            "epoch": epoch,
            "train_seconds": train_seconds,
            "fingerprint": self.fingerprint,
            "history": {k: [np.asarray(row).tolist() for row in v] for k, v in history.items()},
        }
        self.manager.save(
            epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        )

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
