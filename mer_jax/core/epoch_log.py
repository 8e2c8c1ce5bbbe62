"""Per-epoch training metrics of a run, written while it trains: TensorBoard event files and metrics.jsonl.

`tensorboard --logdir runs/` shows a run as it trains; `metrics.jsonl` holds one
JSON object per epoch for scripts. The event files are written by tensorboardX,
which writes TensorBoard's format without TensorFlow (clu's metric writers
need TensorFlow, which mer-jax installs only for its tests).

Only training quantities are written: the fold-mean and per-fold training loss
and accuracy, the learning rate, optimisation steps per second, the epoch's
seconds, the folds stopped by `train.stop_loss` and, once, the compile time.
Held-out accuracy is left out on purpose: a curve of it invites picking an
epoch on the held-out subjects (fold_curves.png shows it after the run, for
inspection only).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


class EpochLog:
    """Appends one record per epoch to `workdir/metrics.jsonl` and `workdir/tensorboard/`.

    A resumed run (`start_epoch` > 0) first drops the records of epochs it will
    train again, so every epoch appears once in metrics.jsonl.
    """

    def __init__(self, workdir: str | Path, fold_names: Sequence[str], start_epoch: int = 0):
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.path = workdir / METRICS_FILE
        self.fold_names = list(fold_names)
        kept = []
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if json.loads(line)["epoch"] < start_epoch]
        self.path.write_text("".join(f"{line}\n" for line in kept))
        # Epoch e is step e + 1: TensorBoard hides the steps a resumed run writes again.
        self.writer = SummaryWriter(logdir=str(workdir / TENSORBOARD_DIR), purge_step=start_epoch + 1 if start_epoch else None)

    def compiled(self, seconds: float) -> None:
        self.writer.add_scalar("speed/compile_seconds", seconds, 0)

    def write(
        self,
        epoch: int,
        *,
        learning_rate: float,
        train_loss: np.ndarray,
        train_accuracy: np.ndarray,
        steps: int,
        seconds: float,
        folds_stopped: int,
    ) -> dict:
        """Logs epoch `epoch` (0-based; logged as step epoch + 1); NaN marks a fold that took no step."""
        record = {
            "epoch": epoch,
            "learning_rate": learning_rate,
            "train_loss": _mean(train_loss),
            "train_accuracy": _mean(train_accuracy),
            "steps_per_second": steps / seconds if seconds > 0 else None,
            "epoch_seconds": seconds,
            "folds_stopped": folds_stopped,
            "per_fold": {
                name: {"train_loss": _finite(loss), "train_accuracy": _finite(accuracy)}
                for name, loss, accuracy in zip(self.fold_names, train_loss, train_accuracy, strict=True)
            },
        }
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        step = epoch + 1
        for tag, value in (
            ("train/loss", record["train_loss"]),
            ("train/accuracy", record["train_accuracy"]),
            ("train/learning_rate", learning_rate),
            ("train/folds_stopped", folds_stopped),
            ("speed/steps_per_second", record["steps_per_second"]),
            ("speed/epoch_seconds", seconds),
        ):
            if value is not None:
                self.writer.add_scalar(tag, value, step)
        for name, values in record["per_fold"].items():
            for metric, value in values.items():
                if value is not None:
                    self.writer.add_scalar(f"{metric}_per_fold/{name}", value, step)
        self.writer.flush()
        return record

    def close(self) -> None:
        self.writer.close()


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
