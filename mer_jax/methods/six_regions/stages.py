"""Two-stage training of Aouayeb et al. (MLSP 2019, sec. 3.2-3.3), every fold at once.

Stage 1 (`config.stages.cnn`) trains each fold's six region CNNs on single
frames of its training clips, each region with its own "not me" label
(mer_jax/methods/six_regions/region_labels.py). Stage 2 (`config.stages.lstm`) freezes them: each
fold's CNNs turn every frame of every clip into six 20-d features once, and the
fold's LSTMs and classifier train on those feature sequences with the clip's
label. Both stages run through the fold-parallel trainer (mer_jax/core/loop.py:
`train_folds`), so either strategy, sharding, resuming from orbax checkpoints
(one folder per stage) and multi-process runs work as for one stage.

A fold only ever trains on its own training subjects: stage 1 on their frames
(its held-out subject's frames are in no training mask), stage 2 on sequences
of features made by its own stage-1 CNNs. The fold's held-out clips are fed
through the same frozen CNNs for testing only.

Stage 2's inputs differ per fold, so its data set holds one copy of the clips
per fold, side by side, and fold f trains and tests on copy f only
(`protocols.Folds.only_train`); each sequence is the six features of every
frame, then a flag, 1 for a real frame and 0 for padding (the model masks it).

What every staged method shares (each stage's config, folds over frames,
records) is mer_jax/core/stages.py's.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
import numpy as np
from flax import nnx

from mer_jax.core.dataset import Dataset
from mer_jax.core.loop import FoldRun, TrainResult, train_folds
from mer_jax.core.protocols import Folds
from mer_jax.core.stages import frame_folds, stage_config, stage_record
from mer_jax.models import create_model
from mer_jax.speed.strategy_timing import resolved

STAGES = ("cnn", "lstm")
FRAME_CHUNK = 512  # frames per call when stage 1's CNNs make the features


def stage_input_shape(config: ml_collections.ConfigDict, stage: str, frames: int = 500) -> tuple[int, ...]:
    """One example's shape in `stage`: a frame's six regions (cnn), a clip's feature sequence (lstm); a clip
    of `frames` frames where the config leaves the length open (0: the longest clip read; the paper's 500)."""
    length, *frame = config.data.input_shape
    if stage == "cnn":
        return tuple(frame)
    model = config.stages[stage].model
    return (length or frames, len(model.region_sizes) * model.features + 1)


def frame_rows(clips: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(clip, frame) of every real frame: the rows of stage 1's data set."""
    frames = clips.extra["num_frames"]
    clip = np.repeat(np.arange(clips.num_samples), frames)
    frame = np.concatenate([np.arange(n) for n in frames]) if len(clip) else np.zeros(0, int)
    return clip, frame


def frame_dataset(clips: Dataset) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Stage 1's examples: every real frame's six regions, with its clip's region labels; and the clip of each row."""
    clip, frame = frame_rows(clips)
    frames = Dataset(
        x=clips.x[clip, frame],
        label=clips.label[clip],
        subject=clips.subject[clip],
        dataset=clips.dataset[clip],
        sample_id=np.char.add(np.char.add(clips.sample_id[clip], "#"), frame.astype(str)),
        class_names=clips.class_names,
    )
    return frames, clips.extra["region_label"][clip], clip


def extract_features(config: ml_collections.ConfigDict, clips: Dataset, params, stats) -> np.ndarray:
    """(F, N, T, 6 * 20 + 1) every fold's frozen stage-1 features of every frame of every clip, then the flag
    of a real frame (1) or padding (0). `params`, `stats`: stage 1's states with a leading fold axis."""
    num, length = clips.x.shape[:2]
    graphdef = nnx.split(
        nnx.eval_shape(lambda: create_model(
            config.model, num_classes=clips.num_classes, input_shape=clips.x.shape[2:], rngs=nnx.Rngs(0)
        )),
        nnx.Param, nnx.BatchStat,
    )[0]

    @jax.jit
    def features(params, stats, x):
        return nnx.merge(graphdef, params, stats).features(x)

    frames = clips.x.reshape(num * length, *clips.x.shape[2:])
    valid = (np.arange(length)[None, :] < clips.extra["num_frames"][:, None]).astype(np.float32)
    folds = jax.tree.leaves(params)[0].shape[0]
    out = []
    for fold in range(folds):
        fold_params, fold_stats = jax.tree.map(lambda leaf: leaf[fold], (params, stats))
        parts = [
            np.asarray(features(fold_params, fold_stats, frames[start : start + FRAME_CHUNK]))
            for start in range(0, len(frames), FRAME_CHUNK)
        ]
        per_frame = np.concatenate(parts).reshape(num, length, -1)
        out.append(np.concatenate([per_frame * valid[..., None], valid[..., None]], axis=-1))
    return np.stack(out).astype(np.float32)


def sequence_dataset(clips: Dataset, features: np.ndarray, folds: Folds) -> tuple[Dataset, Folds]:
    """Stage 2's examples: fold f's feature sequences as copy f of the clips; fold f trains and tests on copy f."""
    return dataclasses.replace(clips, extra={}).copies(features, folds.names), folds.on_copies()


def stage_classes(config: ml_collections.ConfigDict, stage: str) -> int:
    """The classes the model of `stage` predicts: the clips' (the CNNs' "not me" is their model's own)."""
    return config.data.num_classes


def train_stages(
    config: ml_collections.ConfigDict,
    clips: Dataset,
    folds: Folds,
    run: FoldRun = FoldRun(),
) -> TrainResult:
    """Stage 1 then stage 2 of Aouayeb et al. for every fold of `folds` (over `clips`), each run as
    `run.stage(<stage>)` says (a finished stage 1 is restored, not retrained); the result is stage 2's, on
    the clips."""
    if config.data.shuffle_labels:  # the clips' labels permuted first, so that the region labels follow them
        raise ValueError("data.shuffle_labels is not supported for staged training; use a motion-free control")
    if "region_label" not in clips.extra or "num_frames" not in clips.extra:
        raise ValueError(
            f"{config.data.name!r} has no per-region labels and frame counts: staged training of the six-region "
            "CNN+LSTM reads a `regions` build (mer-jax build DATASET --builder_config regions)"
        )
    frames, region_labels, clip = frame_dataset(clips)
    per_frame = frame_folds(folds, clip)
    cnn, cnn_timing = resolved(
        stage_config(config, "cnn"), frames, per_frame, train_labels=region_labels,
        label_classes=clips.num_classes + 1,
    )
    first = train_folds(
        cnn, frames, per_frame, run.stage("cnn"), train_labels=region_labels,
        label_classes=clips.num_classes + 1,  # + "not me"
    )
    del frames
    features = extract_features(cnn, clips, first.state["params"], first.state["stats"])
    sequences, sequence_folds = sequence_dataset(clips, features, folds)
    lstm, lstm_timing = resolved(stage_config(config, "lstm"), sequences, sequence_folds)
    second = train_folds(lstm, sequences, sequence_folds, run.stage("lstm"))
    return TrainResult(
        test_logits=second.test_logits,
        test_index=second.test_index % clips.num_samples,  # copy f's row -> the clip
        test_valid=second.test_valid,
        history=second.history,
        epochs_trained=second.epochs_trained,
        train_prior=second.train_prior,
        strategy=f"cnn: {first.strategy}, lstm: {second.strategy}",
        train_seconds=first.train_seconds + second.train_seconds,
        compile_seconds=first.compile_seconds + second.compile_seconds,
        state={"cnn": first.state, "lstm": second.state},
        stages={"cnn": stage_record(first, cnn_timing), "lstm": stage_record(second, lstm_timing)},
    )
