"""Orbax checkpoints of the stacked fold state, so that a killed run resumes where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import numpy as np
import orbax.checkpoint as ocp


def config_fingerprint(config: ml_collections.ConfigDict, fold_ids: np.ndarray) -> str:
    """What must match for a checkpoint to be resumed: the config but the epoch count and how folds are run."""
    as_dict = config.to_dict()
    as_dict["train"] = {k: v for k, v in as_dict["train"].items() if k not in ("epochs", "checkpoint_every", "strategy", "fold_chunk")}
    return json.dumps({"config": as_dict, "folds": np.asarray(fold_ids).tolist()}, sort_keys=True, default=str)


class Checkpointer:
    """Saves (state, epoch, history, training time) every few epochs; restores the latest."""

    def __init__(self, directory: Path, fingerprint: str, keep: int = 2):
        self.fingerprint = fingerprint
        self.manager = ocp.CheckpointManager(
            Path(directory).absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False),
        )

    def restore(self, template):
        """(state, epoch, history, train seconds so far) of the latest checkpoint, or None if there is none.

        `template` is a host (numpy) state of the right structure and shapes.
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
        return restored["state"], int(meta["epoch"]), history, float(meta["train_seconds"])

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
