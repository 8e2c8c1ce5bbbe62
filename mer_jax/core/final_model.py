"""The final model: one model trained on every subject, saved with what is needed to apply it to new clips.

`train.final_model=True` adds to a run one fold that holds nothing out; its
parameters and BatchNorm statistics are saved in ``workdir/final_model/``
(orbax) beside ``model.json``: the model config, the class names, the input
shape, the data set it was trained on and, for built data sets, the build's
stored variant (face crop, flow method, size, strain, ...; docs/data.md), so
`mer-jax predict` preprocesses a new clip exactly as the build did. The
cross-validated report never includes this fold.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from mer_jax.core.checkpoint import this_process_only
from mer_jax.models import create_model

FOLDER = "final_model"
FOLD_NAME = "final model: every subject"


@dataclasses.dataclass(frozen=True)
class FinalModel:
    """A trained model ready to apply, and what its inputs must be."""

    model: nnx.Module  # in eval mode: call it as model(x) with running BatchNorm statistics
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    data: dict[str, Any]  # the data config it was trained with (name, alpha, labels, ...)
    variant: dict[str, Any] | None  # the build's stored variant; None for data not built from clips

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(B, classes) softmax probabilities of a batch of inputs of `input_shape`."""
        x = np.asarray(x, np.float32)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"inputs of shape {x.shape[1:]} given to a model trained on {self.input_shape}")
        return np.asarray(jax.nn.softmax(self.model(x, train=False), axis=-1))


def save(
    workdir: str | Path,
    config: ml_collections.ConfigDict,
    *,
    class_names: tuple[str, ...],
    input_shape: tuple[int, ...],
    params: nnx.State,
    stats: nnx.State,
    variant: dict[str, Any] | None,
) -> Path:
    """Writes ``workdir/final_model`` (replacing an earlier one); returns the folder."""
    folder = Path(workdir).absolute() / FOLDER
    state = {"params": nnx.to_pure_dict(params), "stats": nnx.to_pure_dict(stats)}
    with ocp.StandardCheckpointer(multiprocessing_options=this_process_only()) as checkpointer:
        checkpointer.save(folder / "state", state, force=True)
    meta = {
        "model": config.model.to_dict(),
        "data": config.data.to_dict(),
        "class_names": list(class_names),
        "input_shape": list(input_shape),
        "variant": variant,
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2, default=list) + "\n")
    return folder


def load(workdir: str | Path) -> FinalModel:
    """The final model saved in `workdir` by a run with train.final_model=True."""
    folder = Path(workdir).absolute() / FOLDER
    if not (folder / "model.json").is_file():
        raise FileNotFoundError(
            f"no final model in {workdir}: train with --config.train.final_model=True (the main job's config "
            "does: README.md, Quick start)"
        )
    meta = json.loads((folder / "model.json").read_text())
    class_names, input_shape = tuple(meta["class_names"]), tuple(meta["input_shape"])
    model = create_model(meta["model"], num_classes=len(class_names), input_shape=input_shape, rngs=nnx.Rngs(0))
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    template = {"params": nnx.to_pure_dict(params), "stats": nnx.to_pure_dict(stats)}
    with ocp.StandardCheckpointer(multiprocessing_options=this_process_only()) as checkpointer:
        restored = checkpointer.restore(folder / "state", template)
    nnx.replace_by_pure_dict(params, restored["params"])
    nnx.replace_by_pure_dict(stats, restored["stats"])
    model = nnx.merge(graphdef, params, stats)
    return FinalModel(model, class_names, input_shape, meta["data"], meta["variant"])
