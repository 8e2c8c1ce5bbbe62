"""Orbax checkpoints of the stacked fold state, so that a killed run resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from mer_jax.core import distributed


# Train settings that change no result: the epoch count (a longer run continues a shorter one), how
# often it saves, and how the folds are run (tests/test_train.py: every strategy, fold chunk, steps per
# call and count of concurrent folds gives the same held-out logits).
RESUMABLE_ACROSS = ("epochs", "checkpoint_every", "strategy", "fold_chunk", "steps_per_call", "concurrent_folds",
                    "data_on_device")


def config_fingerprint(config: ml_collections.ConfigDict, folds: np.ndarray) -> str:
    """What must match for a checkpoint to be resumed: the config but the train keys of RESUMABLE_ACROSS,
    and `folds`, what numbers the folds' random keys (their ids and seeds)."""
    as_dict = config.to_dict()
    as_dict["train"] = {k: v for k, v in as_dict["train"].items() if k not in RESUMABLE_ACROSS}
    as_dict["data"] = {k: v for k, v in as_dict["data"].items() if k != "memmap"}  # where x is read from only
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
    """Orbax options for a checkpoint that one process writes alone (the final model, process 0's in a
    multi-process run; mer_jax/core/final_model.py): no barrier with the other processes."""
    process = jax.process_index()
    return ocp.options.MultiprocessingOptions(
        primary_host=process, active_processes={process}, barrier_sync_key_prefix=f"process_{process}"
    )


def _by_process() -> jax.sharding.NamedSharding:
    """Axis 0 split over the processes: row p on a device of process p."""
    first = {}
    for device in jax.devices():
        first.setdefault(device.process_index, device)
    mesh = jax.sharding.Mesh(np.array([first[p] for p in range(jax.process_count())]), ("process",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("process"))


class Checkpointer:
    """Saves (state, epoch, history, training time) every few epochs; restores the latest.

    Every process of a run saves into the same checkpoint, collectively: each
    leaf is one global array (processes, folds, ...) whose row p holds process
    p's folds, padded to the longest share, and written by process p (orbax
    writes a host numpy array from process 0 only, and no process-local
    array, in a multi-process run). One process alone is the case P = 1.
    """

    def __init__(self, directory: Path, fingerprint: str, keep: int = 2):
        self.digest = np.frombuffer(hashlib.sha256(fingerprint.encode()).digest(), np.uint8)
        self.sharding = _by_process()
        Path(directory).mkdir(parents=True, exist_ok=True)  # orbax creates none for a one-process checkpoint
        self.manager = ocp.CheckpointManager(
            Path(directory).absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=False, enable_async_checkpointing=False),
            item_handlers={"payload": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()},
        )

    def _global(self, tree):
        """Every leaf (n, ...) of this process -> (P, N, ...), N the longest n of any process."""
        leaves, structure = jax.tree.flatten(tree)
        sizes = distributed.largest(np.array([len(leaf) for leaf in leaves], np.int64))
        return jax.tree.unflatten(structure, [
            jax.make_array_from_process_local_data(
                self.sharding, distributed.padded(np.asarray(leaf), int(size))[None],
                (jax.process_count(), int(size), *np.shape(leaf)[1:]),
            )
            for leaf, size in zip(leaves, sizes)
        ])

    def restore(self, template):
        """(state, epoch, history, train seconds so far) of the latest checkpoint, or None if there is none.

        `template` is the fresh host (numpy) state of the run, every leaf with a
        leading fold axis; the checkpoint's may have other numbers of empty folds.
        """
        step = self.manager.latest_step()
        if step is None:
            return None
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        stored = self.manager.item_metadata(step)["payload"]
        wanted = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=self.sharding), stored)
        restored = self.manager.restore(step, args=ocp.args.Composite(payload=ocp.args.StandardRestore(wanted)))
        mine = jax.tree.map(lambda a: np.asarray(a.addressable_shards[0].data)[0], restored["payload"])
        if not np.array_equal(mine["fingerprint"], self.digest):
            raise ValueError(
                f"{self.manager.directory} holds checkpoints of a different configuration; "
                "use another --workdir or delete that folder to start over"
            )
        folds = int(mine["folds"][0])
        history = {name: list(mine["history"][name][:folds].T) if name in mine["history"] else []
                   for name in meta["history"]}
        saved = jax.tree.leaves(mine["state"])
        fresh, structure = jax.tree.flatten(template)
        state = jax.tree.unflatten(structure, [_fit_folds(s, f) for s, f in zip(saved, fresh, strict=True)])
        return state, int(meta["epoch"]), history, float(mine["train_seconds"][0])

    def save(self, epoch: int, state, history: dict[str, list[np.ndarray]], train_seconds: float) -> None:
        """`state` is a host (numpy) pytree; `train_seconds` the training time of all epochs so far."""
        folds = next((len(rows[0]) for rows in history.values() if rows), 0)  # rows: one (folds,) per epoch
        payload = {
            "state": state,
            "history": {name: np.stack(rows, axis=1) for name, rows in history.items() if rows},  # orbax: no empty
            "folds": np.array([folds]),
            "train_seconds": np.array([train_seconds]),
            "fingerprint": self.digest,
        }
        meta = {"epoch": epoch, "history": list(history)}  # every history's name, the empty ones too
        self.manager.save(epoch, args=ocp.args.Composite(
            payload=ocp.args.StandardSave(self._global(payload)), meta=ocp.args.JsonSave(meta)
        ))

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
