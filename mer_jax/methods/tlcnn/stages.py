"""TLCNN's three stages (Wang et al., Neurocomputing 2018, sec. 3.3-3.5, 4.1-4.2), every fold at once.

- ``expressions`` (a, sec. 4.1): the frame CNN (``tlcnn_cnn``) on expression
  images in eq. 11's nine classes, trained once and shared by every fold. Its
  subjects are split 4/5 for training and 1/5 for validation, and it stops
  when the validation accuracy has changed by less than ``stop_delta`` over
  ``stop_patience`` epochs in a row ("when the change of test accuracy does
  not exceed a small threshold in contiguous iterations"). The validation
  images are of other people than the micro-expression data's, so no
  held-out subject of any fold is looked at.
- ``frames`` (b, sec. 4.2): each fold's frame CNN, started from stage a's
  (every layer but FC8, which has four classes here), on the single frames
  of the fold's training clips, each with its clip's label.
- ``clips`` (c, sec. 3.5, 4.2): each fold's CNN + LSTM (``tlcnn``), its
  layers up to FC6 started from the fold's stage-b CNN, trained jointly on
  clips (the model cuts 16 consecutive frames from a random start) and
  tested on the fold's held-out clips.

TLCNN(E) skips stage a (``config.stages.expressions.enabled = False``: stage b
starts from fresh weights) and TLCNN(EM) skips a and b (stage c starts from
fresh weights) (sec. 4.3). The paper keeps "the best accuracy" of stages b and
c, chosen on the test part; here every stage ends at its last epoch
(docs/models.md, "TLCNN").

Every stage goes through the fold-parallel trainer (mer_jax/core/loop.py:
`train_folds`), so strategies, sharding, checkpoints (one folder per stage;
a finished stage is restored, not retrained) and multi-process runs work as
for one model.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
import numpy as np

from mer_jax.core.dataset import Dataset
from mer_jax.core.loop import FoldRun, TrainResult, train_folds
from mer_jax.core.protocols import Folds
from mer_jax.core.stages import frame_folds, stage_config, stage_record
from mer_jax.data.clip_frames import shrunk
from mer_jax.data.images import EQ11_CLASSES
from mer_jax.speed.strategy_timing import resolved

STAGES = ("expressions", "frames", "clips")


def transferred(state, source_params, layers: tuple[str, ...]):
    """`state` (a host state of F folds: params, stats, opt) with the parameters of every top-level layer
    named in `layers` taken from `source_params` (a leading axis of 1, shared by all folds, or F).

    The optimizer state stays as initialised: each stage starts its own SGD
    with zero momentum. A layer that `source_params` lacks, or holds in
    another shape, is an error: a transfer copies exactly what it names.
    """
    source = {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(source_params)[0]}
    copied = set()

    def take(path, leaf):
        name = jax.tree_util.keystr(path)
        if path[0].key not in layers:
            return leaf
        if name not in source or source[name].shape[1:] != leaf.shape[1:]:
            found = source[name].shape[1:] if name in source else "nothing"
            raise ValueError(f"cannot transfer {name}: the earlier stage has {found}, this one {leaf.shape[1:]}")
        copied.add(path[0].key)
        return np.broadcast_to(source[name], leaf.shape).astype(leaf.dtype)

    params = jax.tree_util.tree_map_with_path(take, state["params"])
    missing = set(layers) - copied
    if missing:
        raise ValueError(f"cannot transfer {sorted(missing)}: this stage's model has no such layer")
    return {**state, "params": params}


def plateau_epochs(accuracy: list | np.ndarray, delta: float, patience: int, epochs: int) -> np.ndarray:
    """(F,) the epochs each fold trains by sec. 4.1's rule: through the first epoch that ends `patience`
    epochs in a row whose validation accuracy changed by less than `delta` from the epoch before; else all."""
    accuracy = np.asarray(accuracy, np.float64)
    if accuracy.ndim < 2 or len(accuracy) <= patience:
        return np.full(accuracy.shape[1] if accuracy.ndim == 2 else 1, epochs)
    still = np.abs(np.diff(accuracy, axis=0)) < delta  # (E - 1, F): epoch e + 1 changed little
    runs = np.stack([still[i : len(still) - patience + 1 + i] for i in range(patience)]).all(axis=0)
    found = runs.any(axis=0)
    return np.where(found, runs.argmax(axis=0) + patience + 1, epochs)


def validation_split(images: Dataset, fraction: float, seed: int) -> Folds:
    """One fold over `images`: a random `fraction` of the subjects held out for validation (sec. 4.1: 1/5)."""
    subjects = np.unique(images.subject)
    count = max(1, round(fraction * len(subjects)))
    if count >= len(subjects):
        raise ValueError(f"{len(subjects)} subjects of expression images leave none to train on after a "
                         f"{fraction:.0%} validation split")
    held = np.random.default_rng(seed).choice(subjects, count, replace=False)
    test = np.isin(images.subject, held)
    return Folds(test[None], ("validation",), ~test[None])


def frame_dataset(clips: Dataset) -> Dataset:
    """Stage b's examples: every frame of every clip, with its clip's label; row r is frame r % T of clip r // T.
    The frames are a view of the clips' array, not a copy."""
    num, length = clips.x.shape[:2]
    clip = np.repeat(np.arange(num), length)
    frame = np.tile(np.arange(length), num)
    return Dataset(
        x=clips.x.reshape(num * length, *clips.x.shape[2:]),
        label=clips.label[clip],
        subject=clips.subject[clip],
        dataset=clips.dataset[clip],
        sample_id=np.char.add(np.char.add(clips.sample_id[clip], "#"), frame.astype(str)),
        class_names=clips.class_names,
    )


def stage_input_shape(config: ml_collections.ConfigDict, stage: str) -> tuple[int, ...]:
    """One example's shape in `stage`: an expression image (a), a clip's frame (b), a clip (c)."""
    if stage == "expressions":
        return tuple(config.stages.expressions.input_shape)
    return tuple(config.data.input_shape[1:] if stage == "frames" else config.data.input_shape)


def stage_classes(config: ml_collections.ConfigDict, stage: str) -> int:
    """The classes the model of `stage` predicts: eq. 11's nine expressions in stage a, the clips' after."""
    return len(EQ11_CLASSES) if stage == "expressions" else config.data.num_classes


def load_expression_images(config: ml_collections.ConfigDict) -> Dataset:
    """Stage a's images: the builds `config.stages.expressions.data` under `config.data.data_dir`, shrunk
    by `config.data.shrink` like the clips' frames."""
    from mer_jax.data.images import load_expression_images as load  # reads TFDS builds

    images = load(config.data.data_dir, tuple(config.stages.expressions.data))
    return dataclasses.replace(images, x=shrunk(images.x, config.data.get("shrink", 1)))


def train_stages(
    config: ml_collections.ConfigDict,
    clips: Dataset,
    folds: Folds,
    run: FoldRun = FoldRun(),
    *,
    images: Dataset | None = None,
) -> TrainResult:
    """Stages a, b and c (those enabled) for every fold of `folds` over `clips` (N, T, H, W, C), each run as
    `run.stage(<stage>)` says; the result is stage c's, on the clips. `images`: stage a's expression images
    (default: loaded from the configured builds)."""
    for stage in STAGES:
        if stage not in config.stages:
            raise ValueError(f"config.stages has no stage {stage!r}; TLCNN trains {', '.join(STAGES)}")
    if config.data.shuffle_labels:
        raise ValueError("data.shuffle_labels is not supported for staged training; use a motion-free control")

    def train(stage, dataset, stage_folds, *, start=None, one_model=False, **options):
        initial = None
        if start is not None:
            layers = tuple(config.stages[stage].transfer)
            initial = lambda state: transferred(state, start, layers)  # noqa: E731
        single, timing = resolved(stage_config(config, stage), dataset, stage_folds)
        stage_run = run.stage(stage)
        if one_model:  # stage a: one model for every fold, at train.seed
            stage_run = dataclasses.replace(stage_run, fold_ids=np.zeros(1, int), fold_seeds=np.full(1, config.train.seed))
        result = train_folds(single, dataset, stage_folds, stage_run, initial_state=initial, **options)
        records[stage] = stage_record(result, timing)
        return result

    records: dict[str, dict] = {}
    start = None
    if config.stages.expressions.enabled:
        part = config.stages.expressions
        images = load_expression_images(config) if images is None else images
        split = validation_split(images, part.validation_fraction, config.train.seed)
        first = train(
            "expressions", images, split, one_model=True,
            stop_rule=lambda history: plateau_epochs(
                history["test_accuracy"], part.stop_delta, part.stop_patience, part.train.epochs
            ),
        )
        records["expressions"]["validation_accuracy"] = float(first.history["test_accuracy"][-1, 0])
        start = first.state["params"]
    if config.stages.frames.enabled:
        frames = frame_dataset(clips)
        clip = np.repeat(np.arange(clips.num_samples), clips.x.shape[1])
        second = train("frames", frames, frame_folds(folds, clip), start=start)
        start = second.state["params"]
        del frames
    third = train("clips", clips, folds, start=start)
    return dataclasses.replace(
        third,
        strategy=", ".join(f"{stage}: {record['strategy']}" for stage, record in records.items()),
        train_seconds=sum(record["train_seconds"] for record in records.values()),
        compile_seconds=sum(record["compile_seconds"] for record in records.values()),
        stages=records,
    )
