"""How the six-region method reads a `regions` build: the clips' frames with, per clip, its "not me"
region labels (Aouayeb et al., MLSP 2019, sec. 3.2; mer_jax/methods/six_regions/region_labels.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mer_jax.core.dataset import Dataset
from mer_jax.data import builds
from mer_jax.data.clip_frames import ClipRow
from mer_jax.methods.six_regions import region_labels

REGION_LABEL = "region_label"  # Dataset.extra key: (N, 6) int32 region labels, num_classes = "not me"


def load(data: Any) -> Dataset:
    """The data set `data.name` (`data` as :func:`mer_jax.data.builds.load`), a `regions` build's clips with
    ``extra['region_label']`` from the tables `data.region_tables` overrides."""
    tables = data.get("region_tables", None)
    return builds.load(data, rows_extra=lambda rows, label, num_classes: {
        REGION_LABEL: labels_of(rows, label, num_classes, tables)
    })


def labels_of(
    rows: Sequence[ClipRow], label: np.ndarray, num_classes: int, tables: Mapping[str, Any] | None
) -> np.ndarray:
    """(N, 6) the region labels of the clips `rows` of classes `label`, ``num_classes`` meaning "not me"."""
    return region_labels.region_labels(
        label, num_classes, [r.action_units for r in rows], [r.emotion for r in rows], [r.dataset for r in rows],
        [r.sample_id for r in rows], region_labels.tables(tables),
    )
