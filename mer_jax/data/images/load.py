"""Reading KDEF / Radboud builds into one :class:`mer_jax.core.dataset.Dataset` for TLCNN's first transfer step."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from mer_jax.core.dataset import Dataset
from mer_jax.data.builds import built_dir
from mer_jax.data.images.labels import EQ11_CLASSES

DEFAULT_NAMES = ("kdef/frontal", "rafd/frontal")


def load_expression_images(
    data_dir: str | os.PathLike = "", names: Sequence[str] = DEFAULT_NAMES, *, limit: int | None = None
) -> Dataset:
    """The builds ``names`` ('dataset/config') under ``data_dir``, read without TensorFlow, as one Dataset.

    Args:
      data_dir: the builds' ``--data_dir`` ('' = TFDS's default).
      names: builds of ``mer-jax build kdef|rafd`` (docs/data.md, Expression images).
      limit: read at most this many images of each build (the first by sample id), e.g. for quick runs.

    Returns:
      A Dataset with x uint8 (N, 240, 320, 3) face crops, label (eq. 11 indices
      into ``class_names`` = :data:`mer_jax.data.images.labels.EQ11_CLASSES`, Wang et
      al., Neurocomputing 2018, sec. 4.1, eq. 11), subject ('kdef/F01'),
      dataset, sample_id, rows sorted by sample id, and ``extra['angle']``,
      ``extra['emotion']`` (each data set's own angle and emotion codes).

    Raises:
      FileNotFoundError: a build is missing (the message says how to build it).
      ValueError: a build that is not an expression-image build, or no names.
    """
    import tensorflow_datasets as tfds  # imported here, as mer_jax.data does, to keep the import light

    if not names:
        raise ValueError("load_expression_images: give at least one build name, e.g. 'kdef/frontal'")
    rows: dict[str, list] = {key: [] for key in ("x", "label", "subject", "dataset", "sample_id", "angle", "emotion")}
    for name in names:
        folder = built_dir(name, data_dir)
        builder = tfds.builder_from_directory(str(folder))
        features = builder.info.features
        if "label" not in features or tuple(features["label"].names) != EQ11_CLASSES:
            raise ValueError(f"{name} under {folder} is not an expression-image build (kdef or rafd): no eq. 11 label")
        source = builder.as_data_source(split="train")
        count = len(source) if limit is None else min(limit, len(source))
        for index in range(count):
            record = source[index]
            rows["x"].append(np.asarray(record["x"], np.uint8))
            rows["label"].append(int(record["label"]))
            for key in ("subject", "dataset", "sample_id", "angle", "emotion"):
                rows[key].append(record[key].decode())
    order = np.argsort(rows["sample_id"])
    x = np.stack(rows["x"])[order] if rows["x"] else np.zeros((0, 240, 320, 3), np.uint8)
    return Dataset(
        x=x,
        label=np.asarray(rows["label"], np.int32)[order],
        subject=np.asarray(rows["subject"], dtype=str)[order],
        dataset=np.asarray(rows["dataset"], dtype=str)[order],
        sample_id=np.asarray(rows["sample_id"], dtype=str)[order],
        class_names=EQ11_CLASSES,
        extra={
            "angle": np.asarray(rows["angle"], dtype=str)[order],
            "emotion": np.asarray(rows["emotion"], dtype=str)[order],
        },
    )
