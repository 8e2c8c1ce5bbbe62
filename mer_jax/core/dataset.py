"""The data set container: every example of a (composite) data set as numpy arrays, one row per clip.

A :class:`Dataset` holds the subject and source data set of each clip so that protocols can cut
leave-one-subject-out folds and metrics can be reported per source data set. Reading builds into one:
mer_jax/data/builds.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np


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
        copy c's sample ids end in '@<names[c]>'. With :meth:`mer_jax.core.protocols.Folds.on_copies`, fold c
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
