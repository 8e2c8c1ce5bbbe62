"""Toy onset->apex flow maps drawn directly (`data.name = 'toy_flow'`), for tests and the quick start.

Not the synthetic composite (mer_jax/data/synth/: real photographs animated and
written in the real data sets' layouts, for the builders): this module draws the
Xia et al., TIP 2020, sec. IV-A model input itself, a flow field (u, v) per clip, then
u, v and optical strain stacked by :func:`mer_jax.data.preprocess.flow_map`.

The composite mimics MEGC2019 (docs/design.md, Data): three source datasets with
their own domain shift, subjects with their own face geometry, expressiveness
and class frequencies, and one localised action-unit-like motion per class.
All lengths are in pixels of a 60x60 map and scale with ``size``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from mer_jax.core.dataset import Dataset
from mer_jax.data.preprocess.strain import flow_map

# MEGC2019 composite class counts (docs/design.md, Data: 250/109/83).
_CLASS_COUNTS = {"negative": 250, "positive": 109, "surprise": 83}

# Motion regions per class: (x, y) offset from the face centre in face widths
# (image y points down) and the unit direction (dx, dy) of the flow there.
_MOTIONS = {
    # AU1+2 brow raise: upward flow over both brows.
    "surprise": [((-0.17, -0.20), (0.0, -1.0)), ((0.17, -0.20), (0.0, -1.0))],
    # AU12 lip-corner pull: outward-upward flow at both mouth corners.
    "positive": [((-0.15, 0.24), (-0.8, -0.6)), ((0.15, 0.24), (0.8, -0.6))],
    # AU4 brow lowerer: downward-inward between the brows; AU9: down at the nose root.
    "negative": [((-0.07, -0.15), (0.6, 0.8)), ((0.07, -0.15), (-0.6, 0.8)), ((0.0, -0.04), (0.0, 0.7))],
}


@dataclasses.dataclass(frozen=True)
class _Domain:
    """Domain shift of one source dataset (pixel units at size 60)."""

    flow_scale: float  # multiplies the facial motion (frame rate, camera distance)
    blur: float  # Gaussian blur sigma of the motion (lower effective resolution)
    smooth_noise: float  # std of spatially smooth flow noise (flow-estimation error)
    sensor_noise: float  # std of per-pixel noise


_DOMAINS = {
    "smic": _Domain(flow_scale=0.8, blur=2.0, smooth_noise=0.35, sensor_noise=0.45),
    "casme2": _Domain(flow_scale=1.0, blur=1.0, smooth_noise=0.30, sensor_noise=0.35),
    "samm": _Domain(flow_scale=1.2, blur=0.5, smooth_noise=0.25, sensor_noise=0.25),
}

_REGION_SIGMA = 0.07  # motion region Gaussian sigma, face widths
_JITTER = 0.02  # std of per-clip region position jitter, face widths
_NOISE_CORRELATION = 6.0  # smooth-noise correlation length (blur sigma), pixels
_DRIFT_SHIFT = 0.3  # std of per-clip uniform head translation, pixels
_DRIFT_ROTATION = 0.005  # std of per-clip head rotation, radians


def _blur_matrix(size: int, sigma: float) -> np.ndarray:
    """(size, size) row-normalised Gaussian smoothing matrix (identity for sigma 0)."""
    if sigma <= 0:
        return np.eye(size)
    d = np.arange(size)[:, None] - np.arange(size)[None, :]
    kernel = np.exp(-0.5 * (d / sigma) ** 2)
    return kernel / kernel.sum(axis=1, keepdims=True)


def _blur(fields: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (N, H, W, C) fields over H and W."""
    rows, cols = _blur_matrix(fields.shape[1], sigma), _blur_matrix(fields.shape[2], sigma)
    return np.einsum("hi,nijc,wj->nhwc", rows, fields, cols, optimize=True)


def _subject_labels(rng: np.random.Generator, probs: np.ndarray, clips: int) -> np.ndarray:
    """Labels of one subject's clips drawn from its class frequencies, >= 2 classes."""
    labels = rng.choice(len(probs), size=clips, p=probs)
    if len(np.unique(labels)) < 2:
        others = np.delete(np.arange(len(probs)), labels[0])
        labels[rng.integers(clips)] = rng.choice(others, p=probs[others] / probs[others].sum())
    return labels


def _cover_all_classes(rng: np.random.Generator, labels: np.ndarray, num_classes: int) -> None:
    """Relabel clips in place so one source dataset has every class.

    Each missing class takes one clip of the currently most frequent class
    (count >= 2 by pigeonhole), so no class disappears and each subject keeps
    at least two classes.
    """
    for missing in range(num_classes):
        counts = np.bincount(labels, minlength=num_classes)
        if counts[missing] == 0:
            donor = rng.choice(np.flatnonzero(labels == counts.argmax()))
            labels[donor] = missing


def make_toy_flow(
    *,
    subjects_per_dataset: Sequence[int] = (6, 6, 6),
    clips_per_subject: int = 12,
    size: int = 60,
    seed: int = 0,
    motion_scale: float = 1.0,
    class_names: Sequence[str] = ("negative", "positive", "surprise"),
    num_frames: int = 0,
) -> Dataset:
    """Synthesise a MEGC2019-like composite of onset->apex flow maps.

    Args:
      subjects_per_dataset: subjects in 'smic', 'casme2' and 'samm'.
      clips_per_subject: clips per subject (>= 2; every subject shows >= 2 classes).
      size: height and width of the maps (Xia et al., TIP 2020 uses 60).
      seed: random seed; the same seed gives the same dataset.
      motion_scale: multiplies the class motions; 0 leaves only head drift
        and noise, so nothing in x depends on the label.
      class_names: a subset of 'negative', 'positive', 'surprise' (MEGC2019
        3-class), in label order.
      num_frames: 0 for one map per clip; T >= 2 for clips of T maps from
        onset to apex, the motion growing linearly from 0 to the map's (strain
        scales with the flow, so every frame is a flow map too).

    Returns:
      A :class:`Dataset` with x of shape (N, size, size, 3) (u, v, strain),
      or (N, T, size, size, 3) with ``num_frames`` = T.
    """
    class_names = tuple(class_names)
    unknown = [c for c in class_names if c not in _MOTIONS]
    if unknown or len(set(class_names)) != len(class_names) or len(class_names) < 2:
        raise ValueError(
            f"class_names must be >= 2 distinct names from {tuple(_MOTIONS)}; got {class_names}"
        )
    subjects_per_dataset = tuple(int(s) for s in subjects_per_dataset)
    if len(subjects_per_dataset) != len(_DOMAINS) or min(subjects_per_dataset) < 1:
        raise ValueError(
            f"subjects_per_dataset needs one positive count per dataset {tuple(_DOMAINS)}; "
            f"got {subjects_per_dataset}"
        )
    if clips_per_subject < 2 or min(subjects_per_dataset) * clips_per_subject < len(class_names):
        raise ValueError(
            f"clips_per_subject={clips_per_subject} is too small: each subject needs >= 2 clips and each "
            f"dataset >= {len(class_names)} clips (subjects_per_dataset={subjects_per_dataset})"
        )
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels; got {size}")
    if num_frames == 1 or num_frames < 0:
        raise ValueError(f"num_frames must be 0 (maps) or >= 2 (clips); got {num_frames}")

    rng = np.random.default_rng(seed)
    px = size / 60.0
    num_classes = len(class_names)
    base = np.array([_CLASS_COUNTS[c] for c in class_names], float)
    base /= base.sum()

    # Per-subject identity, then its clips' labels.
    labels, subjects, datasets, sample_ids = [], [], [], []
    centre, face, expressive = [], [], []
    for name, count in zip(_DOMAINS, subjects_per_dataset):
        ds_labels = []
        for j in range(count):
            probs = rng.dirichlet(10.0 * num_classes * base)
            ds_labels.append(_subject_labels(rng, probs, clips_per_subject))
            subject = f"{name}/sub{j + 1:02d}"
            subjects += [subject] * clips_per_subject
            sample_ids += [f"{subject}/clip{k + 1:02d}" for k in range(clips_per_subject)]
            centre += [size / 2 + rng.uniform(-3, 3, size=2) * px] * clips_per_subject
            face += [size * rng.uniform(0.9, 1.1)] * clips_per_subject
            expressive += [rng.lognormal(0.0, 0.25)] * clips_per_subject
        ds_labels = np.concatenate(ds_labels)
        _cover_all_classes(rng, ds_labels, num_classes)
        labels.append(ds_labels)
        datasets += [name] * len(ds_labels)
    label = np.concatenate(labels).astype(np.int32)
    dataset = np.array(datasets)
    centre, face, expressive = np.array(centre), np.array(face), np.array(expressive)
    n = len(label)

    # Class motion: Gaussian regions at the class's facial locations.
    regions = max(len(r) for r in _MOTIONS.values())
    offset = np.zeros((num_classes, regions, 2))
    direction = np.zeros((num_classes, regions, 2))
    for c, name in enumerate(class_names):
        for r, (position, towards) in enumerate(_MOTIONS[name]):
            offset[c, r], direction[c, r] = position, towards
    where = centre[:, None] + face[:, None, None] * (offset[label] + rng.normal(0, _JITTER, (n, regions, 2)))
    flow_scale = np.array([_DOMAINS[d].flow_scale for d in dataset])
    amplitude = (
        motion_scale * px * expressive * flow_scale * rng.uniform(0.5, 1.5, n)
    )[:, None] * rng.uniform(0.8, 1.2, (n, regions))
    grid = np.arange(size, dtype=float)
    dy = grid[None, None, :, None] - where[..., 1, None, None]
    dx = grid[None, None, None, :] - where[..., 0, None, None]
    sigma = _REGION_SIGMA * face[:, None, None, None]
    bumps = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    motion = np.einsum("nrhw,nrc->nhwc", bumps, amplitude[..., None] * direction[label])

    # Domain shift: blur and noise levels per source dataset.
    smooth = _blur(rng.normal(size=(n, size, size, 2)), _NOISE_CORRELATION * px)
    smooth /= smooth.std()
    sensor = rng.normal(size=(n, size, size, 2))
    flow = np.empty_like(motion)
    for name, d in _DOMAINS.items():
        at = dataset == name
        flow[at] = _blur(motion[at], d.blur * px) + px * (
            d.smooth_noise * smooth[at] + d.sensor_noise * sensor[at]
        )

    # Per-clip head drift: uniform translation plus a slight rotation about the centre.
    shift = rng.normal(0, _DRIFT_SHIFT * px, (n, 2))
    angle = rng.normal(0, _DRIFT_ROTATION, n)[:, None, None]
    rel = grid - size / 2
    flow[..., 0] += shift[:, 0, None, None] - angle * rel[None, :, None]
    flow[..., 1] += shift[:, 1, None, None] + angle * rel[None, None, :]

    x = np.asarray(flow_map(flow.astype(np.float32)), dtype=np.float32)
    if num_frames:
        ramp = np.linspace(0.0, 1.0, num_frames, dtype=np.float32)
        x = ramp[None, :, None, None, None] * x[:, None]
    return Dataset(
        x=x,
        label=label,
        subject=np.array(subjects),
        dataset=dataset,
        sample_id=np.array(sample_ids),
        class_names=class_names,
    )
