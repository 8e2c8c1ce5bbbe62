"""Reading what `mer-jax build` wrote into a :class:`~mer_jax.core.dataset.Dataset`, without TensorFlow.

Built data sets are array_record files read through TFDS's random-access data source; every example
is held in memory (or, for frame clips, memory-mapped).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from absl import logging

from mer_jax.core.dataset import Dataset
from mer_jax.data import clip_frames, toy_flow
from mer_jax.data.labels import strcn4_classes
from mer_jax.data import variants

DEFAULT_DATA_DIR = "~/tensorflow_datasets"


def load(config: Any, **hooks) -> Dataset:
    """Load the dataset that ``config.name`` names.

    Args:
      config: an ``ml_collections.ConfigDict`` (or mapping with ``get``):
        ``name`` is ``'toy_flow'`` (built in, with a ``toy_flow``
        sub-config of keyword arguments for
        :func:`mer_jax.data.toy_flow.make_toy_flow` and a ``seed``) or a
        built data set ``'dataset/config'`` such as ``'megc2019/flow60'``,
        read from ``data_dir`` by :func:`load_built` with ``labels``,
        ``classes``, ``alpha``, ``augment``, and for regions and tim builds
        ``frames``, ``shrink`` and ``memmap``.
      hooks: ``clip_extra`` and ``rows_extra`` of :func:`load_built`, a
        method's additions (mer_jax/methods/).

    Returns:
      The loaded :class:`Dataset`.
    """
    name = config.get("name", None)
    if isinstance(name, str) and "/" in name:
        return load_built(
            name,
            data_dir=config.get("data_dir", ""),
            labels=config.get("labels", "megc2019"),
            classes=tuple(config.get("classes", ())),
            alpha=config.get("alpha", 8.0),
            augment=config.get("augment", False),
            frames_per_clip=config.get("frames", 0),
            shrink=config.get("shrink", 1),
            memmap=config.get("memmap", False),
            **hooks,
        )
    if name != "toy_flow":
        raise ValueError(
            f"unknown dataset {name!r}; available: toy_flow, or a built data set 'dataset/config' "
            "such as 'megc2019/flow60' (see `mer-jax build`)"
        )
    options = config.get("toy_flow", None) or {}
    kwargs = dict(options.to_dict() if hasattr(options, "to_dict") else options)
    allowed = set(inspect.signature(toy_flow.make_toy_flow).parameters) - {"seed"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(
            f"config.data.toy_flow has unknown field(s) {unknown}; allowed: {sorted(allowed)} "
            "(the seed is config.seed)"
        )
    return toy_flow.make_toy_flow(**kwargs, seed=config.get("seed", 0))


LABELS = ("megc2019", "strcn4", "emotion")
# A build's version folder; TFDS writes into incomplete.XXXXXX_1.0.0 beside it until done.
_VERSION = re.compile(r"\d+\.\d+\.\d+")


def built_dir(name: str, data_dir: str | os.PathLike = "") -> Path:
    """The folder of the newest version of the built data set ``name`` ('dataset/config')."""
    dataset, _, variant = name.partition("/")
    root = Path(data_dir or DEFAULT_DATA_DIR).expanduser()
    versions = sorted(
        (
            p for p in (root / dataset / variant).glob("*")
            if _VERSION.fullmatch(p.name) and (p / "dataset_info.json").is_file()
        ),
        key=lambda p: tuple(int(part) for part in p.name.split(".")),
    )
    if not versions:
        raise FileNotFoundError(
            f"no built data set {name!r} under {root}: build it first with "
            f"`mer-jax build {dataset} --builder_config {variant or 'flow60'} --manual_dir DIR --data_dir {root}`"
        )
    return versions[-1]


def _label_names(labels: str, classes: tuple[str, ...], features: Any) -> tuple[str, ...]:
    if labels not in LABELS:
        raise ValueError(f"config.data.labels must be one of {LABELS}; got {labels!r}")
    if labels == "emotion":
        if len(classes) < 2:
            raise ValueError("config.data.labels='emotion' needs config.data.classes: the emotions kept, in order")
        return tuple(c.lower() for c in classes)
    names = tuple(features[f"{labels}_label"].names)
    return tuple(n for n in names if n != "none")


def _label(record: dict, labels: str, names: tuple[str, ...], features: Any) -> str:
    if labels == "emotion":
        return record["emotion"].decode().strip().lower()
    return features[f"{labels}_label"].int2str(int(record[f"{labels}_label"]))


def model_input(stored: np.ndarray, alphas: list[float], alpha: float) -> np.ndarray:
    """A stored example as the model sees it: the `alpha` slice of magnified variants, float32, uint8 / 255.

    The first ``len(alphas)`` rows of magnified variants are the clip with every
    frame kept (:func:`mer_jax.data.variants.stored_variants`).
    """
    return _float(stored[alphas.index(alpha)] if alphas else stored)


def _float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def _finite(x: np.ndarray, sample_id: str, name: str, folder: Path) -> np.ndarray:
    """``x``, unless it holds NaN or inf: then a ValueError naming the data set and the example."""
    bad = x.size - int(np.isfinite(x).sum())
    if bad:
        raise ValueError(
            f"{name} under {folder}: example {sample_id} holds {bad} non-finite values (NaN or inf) of {x.size}; "
            "the build is damaged: build it again into an empty --data_dir"
        )
    return x


def _check_classes_found(names: tuple[str, ...], label: list[int], left_out: list[str], name: str, folder: Path):
    """ValueError naming the classes of config.data.classes that no example has: the config does not match the
    data set's labels (a misspelt emotion, another data set's label set)."""
    found = set(label)
    missing = [class_name for index, class_name in enumerate(names) if index not in found]
    if missing:
        first = f"; the first example left out is {left_out[0]}" if left_out else ""
        raise ValueError(
            f"{name} under {folder} has no example of class(es) {missing} of config.data.classes {names}: "
            f"the classes do not match the data set's labels{first}"
        )


def build_metadata(name: str, data_dir: str | os.PathLike = "") -> dict[str, Any]:
    """What ``mer-jax build`` recorded of the build ``name``: its stored variant, skipped clips, ..."""
    import tensorflow_datasets as tfds

    return dict(tfds.builder_from_directory(str(built_dir(name, data_dir))).info.metadata)


def load_built(
    name: str, *, data_dir: str | os.PathLike = "", labels: str = "megc2019", classes: tuple[str, ...] = (),
    alpha: float = 8.0, augment: bool = False, frames_per_clip: int = 0, shrink: int = 1, memmap: bool = False,
    clip_extra: Callable[[np.ndarray, list[float]], dict[str, np.ndarray]] | None = None,
    rows_extra: Callable[[list[clip_frames.ClipRow], np.ndarray, int], dict[str, np.ndarray]] | None = None,
) -> Dataset:
    """Read a data set written by ``mer-jax build`` into a :class:`Dataset`, without TensorFlow.

    Args:
      name: 'dataset/config', e.g. 'megc2019/flow60', 'casme2/flow_strcn_g'.
      data_dir: the build's ``--data_dir`` ('' = TFDS's default).
      labels: 'megc2019' (negative, positive, surprise), 'strcn4' (negative,
        positive, surprise, other; without 'other' for SMIC alone, which
        does not annotate it) or 'emotion' (the dataset's own labels,
        those in ``classes``, in that order). Clips without a class in the
        chosen map are left out, and a warning says how many and which.
      alpha: for variants stored at several magnification factors
        (flow_strcn_g, strcn_a): the factor whose inputs are used.
      augment: those builds: each clip's other stored variants (alphas 5..14
        x frame-keeping levels, Xia et al., TMM 2019, sec. III-E) become rows
        too, named ``<sample id>@keep<percent>_alpha<alpha>``, with
        ``extra['clip']`` naming each row's clip (:mod:`mer_jax.data.variants`); the
        clip's own row is its ``alpha`` variant with every frame.
      frames_per_clip, shrink: regions builds (Aouayeb et al., MLSP
        2019): x is uint8 (N, T, 6, H / shrink, W / shrink, 1) (``shrink`` > 1:
        every frame's canvas averaged over shrink x shrink blocks, for CPU-sized
        runs); ``frames_per_clip`` 0 keeps every
        frame, zero-padded at the end to the longest clip, K > 0 samples K
        frames evenly from onset to offset (:mod:`mer_jax.data.clip_frames`);
        ``extra['num_frames']`` (N,) holds each clip's real frame count.
        ``shrink`` applies to tim builds too (Wang et al.,
        Neurocomputing 2018): x is uint8 (N, T, 240 / shrink, 320 / shrink, 3),
        read clip by clip into one array allocated once.
      memmap: regions and tim builds: the clips are decoded once into a .npy
        file in ``<data_dir>/decoded/`` (:func:`mer_jax.data.clip_frames.memmap_path`)
        and x is a read-only memory map of it, so host memory holds the pages
        in use, not the data set (with ``train.data_on_device=False``, TLCNN's
        frames at full size; docs/data.md).
      clip_extra: ``clip_extra(stored, alphas)`` of each clip's stored inputs
        (every variant) gives arrays of that clip that join ``extra``, on its
        own row (zeros on its ``augment`` rows): e.g. STRCN-A's heat term.
      rows_extra: regions and tim builds: ``rows_extra(rows, label,
        num_classes)`` of the clips (:class:`~mer_jax.data.clip_frames.ClipRow`,
        in the data set's order) gives arrays that join ``extra``: e.g. the
        six-region method's region labels.

    Raises:
      FileNotFoundError: nothing built under that name.
      ValueError: an unknown label map or alpha; ``augment`` for a build of
        one variant per clip; an example whose inputs are not all finite (the
        first is named); a class in ``classes`` that no example has (the first
        example left out is named).
    """
    import tensorflow_datasets as tfds  # a core dependency; imported here to keep `import mer_jax.data.builds` light

    folder = built_dir(name, data_dir)
    builder = tfds.builder_from_directory(str(folder))
    features = builder.info.features
    names = _label_names(labels, classes, features)
    variant = builder.info.metadata.get("variant") or {}
    regions = variant.get("kind") == "regions"
    tim = variant.get("kind") == "tim"  # TLCNN's frames (Wang et al., Neurocomputing 2018): GBs at full size
    if not regions and frames_per_clip:
        raise ValueError(f"config.data.frames applies to regions builds, not {name}")
    if not (regions or tim) and shrink != 1:
        raise ValueError(f"config.data.shrink applies to regions and tim builds, not {name}")
    if not (regions or tim) and memmap:
        raise ValueError(f"config.data.memmap applies to regions and tim builds, not {name}")
    # The frames of a regions or tim build are read after the labels, into one uint8 array allocated once:
    # skipped (not decompressed) here.
    clip_frames_kind = regions or tim
    source = builder.as_data_source(split="train", decoders={"x": tfds.decode.SkipDecoding()} if clip_frames_kind else None)
    alphas = list(builder.info.metadata.get("alphas", []) or [])
    if alphas and alpha not in alphas:
        raise ValueError(f"{name} is stored for alpha in {alphas}; config.data.alpha={alpha} is not one of them")
    frames = (builder.info.metadata.get("variant") or {}).get("kind") == "appearance"  # uint8, as stored
    stored = variants.stored_variants(alphas, (builder.info.metadata.get("variant") or {}).get("keep_fractions"))
    if augment and len(stored) < 2:
        raise ValueError(
            f"config.data.augment needs a build storing several variants of each clip (flow_strcn_g, strcn_a); "
            f"{name} stores {max(len(stored), 1)}"
        )
    xs, label, subject, dataset, sample_id, left_out, added, clip = [], [], [], [], [], [], [], []
    for index in range(len(source)):
        record = source[index]
        sample = record["sample_id"].decode()
        text = _label(record, labels, names, features)
        if text not in names:
            left_out.append(f"{sample} ({text})")
            continue
        if regions:
            made = [("", clip_frames.ClipRow.of(index, record))]
        elif tim:  # every clip holds the build's frame count, whatever its onset..offset
            made = [("", dataclasses.replace(clip_frames.ClipRow.of(index, record), length=variant["num_frames"]))]
        else:  # appearance frames stay uint8 (STRCN scales them by 1/255): a quarter of the memory of float32
            made = [
                (suffix, _finite(x if frames else _float(x), sample, name, folder))
                for suffix, x in variants.rows(record["x"], stored, alpha, augment)
            ]
        own = clip_extra(record["x"], alphas) if clip_extra is not None and not clip_frames_kind else None
        for suffix, x in made:
            xs.append(x)
            if own is not None:  # each clip's arrays count once, on its own row
                added.append({k: v if suffix == "" else np.zeros_like(v) for k, v in own.items()})
            label.append(names.index(text))
            subject.append(record["subject"].decode())
            dataset.append(record["dataset"].decode())
            sample_id.append(sample + suffix)
            clip.append(sample)
    if labels == "emotion" and xs:
        _check_classes_found(names, label, left_out, name, folder)
    if labels == "strcn4":  # SMIC annotates three of the four (Xia et al., TMM 2019, sec. IV-B)
        kept = strcn4_classes(set(dataset))
        label = [kept.index(names[index]) for index in label]
        names = kept
    if left_out:
        logging.warning(
            "%s: %d clips have no class among %s (labels=%s) and are left out: %s",
            name, len(left_out), names, labels, ", ".join(left_out[:10]) + (" ..." if len(left_out) > 10 else ""),
        )
    if not xs:
        raise ValueError(f"{name} under {folder} holds no clip with a class among {names} (labels={labels})")
    order = np.argsort(sample_id)
    if clip_frames_kind:
        rows = [xs[i] for i in order]
        cache = None
        if memmap:
            decoded = folder.parents[2] / "decoded"  # folder: <data_dir>/<dataset>/<config>/<version>
            cache = clip_frames.memmap_path(decoded, folder, rows, frames_per_clip, shrink)
        x, num_frames = clip_frames.read(
            builder.as_data_source(split="train"), rows, frames_per_clip, name, shrink, cache
        )
        extra = {} if tim else {clip_frames.NUM_FRAMES: num_frames}
        if rows_extra is not None:
            extra.update(rows_extra(rows, np.asarray(label, np.int32)[order], len(names)))
    else:
        x = np.stack([xs[i] for i in order])  # one copy: with data.augment, 50 rows of every clip
        xs.clear()  # the decoded records, as large as x
        extra = {k: np.stack([a[k] for a in added])[order] for k in added[0]} if added else {}
        if augment:
            extra[variants.CLIP] = np.asarray(clip)[order]
    return Dataset(
        x=x,
        label=np.asarray(label, np.int32)[order],
        subject=np.asarray(subject)[order],
        dataset=np.asarray(dataset)[order],
        sample_id=np.asarray(sample_id)[order],
        class_names=names,
        extra=extra,
    )
