"""Datasets as plain numpy arrays (docs/design.md, Layout: data.py).

Training needs no TensorFlow: built data sets are array_record files read
through TFDS's random-access data source. A :class:`Dataset` holds every
example of a (composite) dataset in memory, with the subject and source-dataset of each
clip so that protocols can cut leave-one-subject-out folds (docs/design.md, What
it is for) and metrics can be reported per source dataset.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from absl import logging

from mer_jax import augment as augmentation
from mer_jax import region_clips
from mer_jax.labels import strcn4_classes

DEFAULT_DATA_DIR = "~/tensorflow_datasets"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """All examples of a dataset, one row per clip.

    Attributes:
      x: (N, ...) model inputs of any rank per example, e.g. (N, H, W, C)
        u, v, strain maps (Xia et al., TIP 2020, eq. 2), (N, T, H, W, C) clips;
        float32, or uint8 images that the model scales by 1/255 (a quarter of
        the host and device memory).
      label: (N,) int32 class indices into ``class_names``.
      subject: (N,) str subject ids, unique across source datasets
        (e.g. ``'casme2/sub01'``).
      dataset: (N,) str source dataset name (e.g. ``'casme2'``).
      sample_id: (N,) str unique clip ids (e.g. ``'casme2/sub01/EP02_01f'``).
      class_names: class name of each label index.
      extra: further per-example arrays, each with the leading N axis, that a
        model family or a trainer needs beside x and label (e.g. the frame
        count of padded clips, per-region labels).
    """

    x: np.ndarray
    label: np.ndarray
    subject: np.ndarray
    dataset: np.ndarray
    sample_id: np.ndarray
    class_names: tuple[str, ...]
    extra: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.x, np.ndarray) or self.x.ndim < 2:
            raise ValueError(
                f"Dataset.x must be a numpy array (N, ...) of one example per row; got {type(self.x).__name__} "
                f"with shape {getattr(self.x, 'shape', None)}"
            )
        if self.x.dtype not in (np.float32, np.uint8):
            raise ValueError(f"Dataset.x must be float32 or uint8; got {self.x.dtype}")
        n = self.x.shape[0]
        expected = {"label": "i", "subject": "U", "dataset": "U", "sample_id": "U"}
        for field, kind in expected.items():
            value = getattr(self, field)
            if not isinstance(value, np.ndarray) or value.ndim != 1:
                raise ValueError(
                    f"Dataset.{field} must be a 1-d numpy array; got {type(value).__name__} "
                    f"with shape {getattr(value, 'shape', None)}"
                )
            if value.shape[0] != n:
                raise ValueError(f"Dataset.{field} has {value.shape[0]} entries but x has {n} examples")
            if value.dtype.kind != kind:
                raise ValueError(f"Dataset.{field} must have dtype kind '{kind}'; got {value.dtype}")
        if self.label.dtype != np.int32:
            raise ValueError(f"Dataset.label must be int32; got {self.label.dtype}")
        if not isinstance(self.class_names, tuple) or len(self.class_names) < 2:
            raise ValueError(f"Dataset.class_names must be a tuple of >= 2 names; got {self.class_names!r}")
        if n and (self.label.min() < 0 or self.label.max() >= len(self.class_names)):
            raise ValueError(
                f"Dataset.label values must lie in [0, {len(self.class_names)}) for class_names "
                f"{self.class_names}; got min {self.label.min()}, max {self.label.max()}"
            )
        for field, value in self.extra.items():
            if not isinstance(value, np.ndarray) or value.ndim < 1 or value.shape[0] != n:
                raise ValueError(
                    f"Dataset.extra[{field!r}] must be a numpy array with one row per example ({n}); "
                    f"got shape {getattr(value, 'shape', None)}"
                )
        ids, counts = np.unique(self.sample_id, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"Dataset.sample_id must be unique; repeated: {ids[counts > 1][:5].tolist()}")

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``class_names``)."""
        return len(self.class_names)

    @property
    def num_samples(self) -> int:
        """Number of examples N."""
        return int(self.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. (H, W, C) or (T, H, W, C)."""
        return tuple(int(d) for d in self.x.shape[1:])

    def take(self, index: np.ndarray) -> Dataset:
        """The examples ``index`` (indices or a boolean mask), every per-example array alike."""
        return dataclasses.replace(
            self, x=self.x[index], label=self.label[index], subject=self.subject[index],
            dataset=self.dataset[index], sample_id=self.sample_id[index],
            extra={field: value[index] for field, value in self.extra.items()},
        )

    def copies(self, x: np.ndarray, names: tuple[str, ...]) -> Dataset:
        """One copy of these examples per name with inputs `x` (copies, N, ...), side by side (copies x N rows);
        copy c's sample ids end in '@<names[c]>'. With :meth:`mer_jax.protocols.Folds.on_copies`, fold c
        trains and tests on copy c: inputs made per fold (a fold's own mask, its own frozen features)."""
        if x.shape[:2] != (len(names), self.num_samples):
            raise ValueError(f"copies: x has shape {x.shape}; expected ({len(names)}, {self.num_samples}, ...)")
        return Dataset(
            x=x.reshape(-1, *x.shape[2:]),
            label=np.tile(self.label, len(names)),
            subject=np.tile(self.subject, len(names)),
            dataset=np.tile(self.dataset, len(names)),
            sample_id=np.concatenate([np.char.add(self.sample_id, f"@{name}") for name in names]),
            class_names=self.class_names,
            extra={field: np.concatenate([value] * len(names)) for field, value in self.extra.items()},
        )

    def shuffled_labels(self, seed: int) -> np.ndarray:
        """A random permutation of ``label`` (same class counts, links to x broken).

        Training on these while evaluating on the true labels is the sanity
        check that a model's score comes from the inputs, not the protocol.
        """
        return np.random.default_rng(seed).permutation(self.label)


def load(config: Any) -> Dataset:
    """Load the dataset that ``config.name`` names.

    Args:
      config: an ``ml_collections.ConfigDict`` (or mapping with ``get``):
        ``name`` is ``'synthetic_flow'`` (built in, with a ``synthetic``
        sub-config of keyword arguments for
        :func:`mer_jax.synthetic.make_synthetic_flow` and a ``seed``) or a
        built data set ``'dataset/config'`` such as ``'megc2019/flow60'``,
        read from ``data_dir`` by :func:`load_built` with ``labels``,
        ``classes``, ``alpha``, ``augment``, ``mask``, ``top_p``, and for a
        regions build ``frames`` and ``region_tables``.

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
            mask=config.get("mask", "paper"),
            top_p=config.get("top_p", 0.30),
            frames_per_clip=config.get("frames", 0),
            shrink=config.get("shrink", 1),
            region_tables=config.get("region_tables", None),
            memmap=config.get("memmap", False),
        )
    if name != "synthetic_flow":
        raise ValueError(
            f"unknown dataset {name!r}; available: synthetic_flow, or a built data set 'dataset/config' "
            "such as 'megc2019/flow60' (see `mer-jax build`)"
        )
    # Imported here: synthetic builds Dataset objects, so it imports this module.
    from mer_jax import synthetic

    options = config.get("synthetic", None) or {}
    kwargs = dict(options.to_dict() if hasattr(options, "to_dict") else options)
    allowed = set(inspect.signature(synthetic.make_synthetic_flow).parameters) - {"seed"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(
            f"config.synthetic has unknown field(s) {unknown}; allowed: {sorted(allowed)} "
            "(the seed is config.seed)"
        )
    return synthetic.make_synthetic_flow(**kwargs, seed=config.get("seed", 0))


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
    frame kept (:func:`mer_jax.augment.stored_variants`).
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
    alpha: float = 8.0, augment: bool = False, mask: str = "paper", top_p: float = 0.30, frames_per_clip: int = 0,
    shrink: int = 1,
    region_tables: Mapping[str, Any] | None = None,
    memmap: bool = False,
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
        ``extra['clip']`` naming each row's clip (:mod:`mer_jax.augment`); the
        clip's own row is its ``alpha`` variant with every frame.
      mask, top_p: strcn_a (magnified frames): 'paper' gives each clip's
        d2 x T x C matrix of the ``top_p`` pixels of the heat map of every
        clip read; 'per_fold' keeps the frames and each clip's heat term in
        ``extra['heat']`` for :func:`mer_jax.heat_mask.training_inputs`
        (:mod:`mer_jax.heat_mask`).
      frames_per_clip, shrink, region_tables: regions builds (Aouayeb et al., MLSP
        2019): x is uint8 (N, T, 6, H / shrink, W / shrink, 1) (``shrink`` > 1:
        every frame's canvas averaged over shrink x shrink blocks, for CPU-sized
        runs); ``frames_per_clip`` 0 keeps every
        frame, zero-padded at the end to the longest clip, K > 0 samples K
        frames evenly from onset to offset (:mod:`mer_jax.region_clips`);
        ``extra['num_frames']`` (N,) holds each clip's real frame count and
        ``extra['region_label']`` (N, 6) its region labels, ``num_classes``
        meaning "not me", from :func:`mer_jax.region_labels.tables`
        (``region_tables``). ``shrink`` applies to tim builds too (Wang et al.,
        Neurocomputing 2018): x is uint8 (N, T, 240 / shrink, 320 / shrink, 3),
        read clip by clip into one array allocated once.
      memmap: regions and tim builds: the clips are decoded once into a .npy
        file in ``<data_dir>/decoded/`` (:func:`mer_jax.region_clips.memmap_path`)
        and x is a read-only memory map of it, so host memory holds the pages
        in use, not the data set (with ``train.data_on_device=False``, TLCNN's
        frames at full size; docs/data.md).

    Raises:
      FileNotFoundError: nothing built under that name.
      ValueError: an unknown label map or alpha; ``augment`` for a build of
        one variant per clip; an example whose inputs are not all finite (the
        first is named); a class in ``classes`` that no example has (the first
        example left out is named).
    """
    import tensorflow_datasets as tfds  # a core dependency; imported here to keep `import mer_jax.data` light

    from mer_jax import heat_mask  # imports this module

    folder = built_dir(name, data_dir)
    builder = tfds.builder_from_directory(str(folder))
    features = builder.info.features
    names = _label_names(labels, classes, features)
    variant = builder.info.metadata.get("variant") or {}
    regions = variant.get("kind") == "regions"
    tim = variant.get("kind") == "tim"  # TLCNN's frames (Wang et al., Neurocomputing 2018): GBs at full size
    if not regions and (frames_per_clip or region_tables):
        raise ValueError(f"config.data.frames and region_tables apply to regions builds, not {name}")
    if not (regions or tim) and shrink != 1:
        raise ValueError(f"config.data.shrink applies to regions and tim builds, not {name}")
    if not (regions or tim) and memmap:
        raise ValueError(f"config.data.memmap applies to regions and tim builds, not {name}")
    # The frames of a regions or tim build are read after the labels, into one uint8 array allocated once:
    # skipped (not decompressed) here.
    clip_frames = regions or tim
    source = builder.as_data_source(split="train", decoders={"x": tfds.decode.SkipDecoding()} if clip_frames else None)
    alphas = list(builder.info.metadata.get("alphas", []) or [])
    if alphas and alpha not in alphas:
        raise ValueError(f"{name} is stored for alpha in {alphas}; config.data.alpha={alpha} is not one of them")
    frames = (builder.info.metadata.get("variant") or {}).get("kind") == "appearance"  # strcn_a: masked below
    variants = augmentation.stored_variants(alphas, (builder.info.metadata.get("variant") or {}).get("keep_fractions"))
    if augment and len(variants) < 2:
        raise ValueError(
            f"config.data.augment needs a build storing several variants of each clip (flow_strcn_g, strcn_a); "
            f"{name} stores {max(len(variants), 1)}"
        )
    xs, label, subject, dataset, sample_id, left_out, heat, clip = [], [], [], [], [], [], [], []
    for index in range(len(source)):
        record = source[index]
        sample = record["sample_id"].decode()
        text = _label(record, labels, names, features)
        if text not in names:
            left_out.append(f"{sample} ({text})")
            continue
        if regions:
            made = [("", region_clips.ClipRow.of(index, record))]
        elif tim:  # every clip holds the build's frame count, whatever its onset..offset
            made = [("", dataclasses.replace(region_clips.ClipRow.of(index, record), length=variant["num_frames"]))]
        else:  # appearance frames stay uint8 (STRCN scales them by 1/255): a quarter of the memory of float32
            made = [
                (suffix, _finite(x if frames else _float(x), sample, name, folder))
                for suffix, x in augmentation.rows(record["x"], variants, alpha, augment)
            ]
        own_heat = heat_mask.clip_heat(record["x"], alphas) if frames else None
        for suffix, x in made:
            xs.append(x)
            if frames:  # each clip's heat counts once, on its own row
                heat.append(own_heat if suffix == "" else np.zeros_like(own_heat))
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
    if clip_frames:
        rows = [xs[i] for i in order]
        cache = None
        if memmap:
            decoded = folder.parents[2] / "decoded"  # folder: <data_dir>/<dataset>/<config>/<version>
            cache = region_clips.memmap_path(decoded, folder, rows, frames_per_clip, shrink)
        x, num_frames = region_clips.read(
            builder.as_data_source(split="train"), rows, frames_per_clip, name, shrink, cache
        )
        extra = {} if tim else region_clips.extra(
            rows, np.asarray(label, np.int32)[order], len(names), num_frames, region_tables
        )
    else:
        x = np.stack([xs[i] for i in order])  # one copy: with data.augment, 50 rows of every clip
        xs.clear()  # the decoded records, as large as x
        extra = {heat_mask.HEAT: np.stack(heat)[order]} if frames else {}
        if augment:
            extra[augmentation.CLIP] = np.asarray(clip)[order]
    loaded = Dataset(
        x=x,
        label=np.asarray(label, np.int32)[order],
        subject=np.asarray(subject)[order],
        dataset=np.asarray(dataset)[order],
        sample_id=np.asarray(sample_id)[order],
        class_names=names,
        extra=extra,
    )
    if frames and mask not in heat_mask.MASKS:
        raise ValueError(f"unknown data.mask {mask!r}; valid: {heat_mask.MASKS}")
    return heat_mask.paper(loaded, top_p) if frames and mask == "paper" else loaded
