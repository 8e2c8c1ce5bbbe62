"""Datasets as plain numpy arrays (DESIGN.md, Layout: data.py).

Training needs no TensorFlow: a :class:`Dataset` holds every example of a
(composite) dataset in memory, with the subject and source-dataset of each
clip so that protocols can cut leave-one-subject-out folds (DESIGN.md, What
it is for) and metrics can be reported per source dataset.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Dataset:
    """All examples of a dataset, one row per clip.

    Attributes:
      x: (N, H, W, C) float32 model inputs, e.g. seed 002's u, v, strain maps.
      label: (N,) int32 class indices into ``class_names``.
      subject: (N,) str subject ids, unique across source datasets
        (e.g. ``'casme2/sub01'``).
      dataset: (N,) str source dataset name (e.g. ``'casme2'``).
      sample_id: (N,) str unique clip ids (e.g. ``'casme2/sub01/EP02_01f'``).
      class_names: class name of each label index.
    """

    x: np.ndarray
    label: np.ndarray
    subject: np.ndarray
    dataset: np.ndarray
    sample_id: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.x, np.ndarray) or self.x.ndim != 4:
            raise ValueError(
                f"Dataset.x must be a 4-d numpy array (N, H, W, C); got {type(self.x).__name__} "
                f"with shape {getattr(self.x, 'shape', None)}"
            )
        if self.x.dtype != np.float32:
            raise ValueError(f"Dataset.x must be float32; got {self.x.dtype}")
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
    def input_shape(self) -> tuple[int, int, int]:
        """Shape (H, W, C) of one example."""
        return tuple(int(d) for d in self.x.shape[1:])

    def shuffled_labels(self, seed: int) -> np.ndarray:
        """A random permutation of ``label`` (same class counts, links to x broken).

        Training on these while evaluating on the true labels is the sanity
        check that a model's score comes from the inputs, not the protocol.
        """
        return np.random.default_rng(seed).permutation(self.label)


def load(config: Any) -> Dataset:
    """Load the dataset that ``config.name`` names.

    Args:
      config: an ``ml_collections.ConfigDict`` (or mapping with ``get``) with
        ``name`` and optionally ``seed`` and, for ``'synthetic_flow'``, a
        ``synthetic`` sub-config of keyword arguments for
        :func:`mer_jax.synthetic.make_synthetic_flow`.

    Returns:
      The loaded :class:`Dataset`.
    """
    name = config.get("name", None)
    if name != "synthetic_flow":
        raise ValueError(
            f"unknown dataset {name!r}; available: synthetic_flow "
            "(built TFDS datasets arrive with the data builders)"
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
