"""Evaluation protocols as boolean fold masks: LOSO, Xia et al.'s (TMM 2019) LOVO, stratified k-fold.

A protocol is a ``Folds``: one row of ``test_masks`` per fold, True where the
fold holds that sample out. Every protocol here is a partition: each sample is
held out by exactly one fold.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike

PROTOCOLS = ("loso", "lovo", "kfold", "subject_kfold")


@dataclasses.dataclass(frozen=True, eq=False)
class Folds:
    """Held-out and training samples of each fold.

    test_masks: (F, N) bool, True where fold f holds sample n out.
    names: F fold names (the held-out subject for LOSO).
    only_train: (F, N) bool or None: where given, fold f trains on exactly
      these samples (e.g. augmented copies of its training clips, which no
      fold ever tests on); None: every sample a fold does not hold out.
    """

    test_masks: np.ndarray
    names: tuple[str, ...]
    only_train: np.ndarray | None = None

    def __post_init__(self) -> None:
        masks = self._frozen(self.test_masks, "test_masks")
        if len(self.names) != masks.shape[0]:
            raise ValueError(f"{len(self.names)} fold names given for {masks.shape[0]} folds")
        object.__setattr__(self, "test_masks", masks)
        object.__setattr__(self, "names", tuple(str(name) for name in self.names))
        if self.only_train is not None:
            train = self._frozen(self.only_train, "only_train")
            if train.shape != masks.shape:
                raise ValueError(f"only_train has shape {train.shape}; test_masks {masks.shape}")
            both = np.argwhere(train & masks)
            if len(both):
                fold, sample = both[0]
                raise ValueError(f"fold {self.names[fold]!r} both trains on and holds out sample {sample}")
            object.__setattr__(self, "only_train", train)

    @staticmethod
    def _frozen(masks, name: str) -> np.ndarray:
        masks = np.asarray(masks)
        if masks.ndim != 2 or masks.dtype != np.bool_:
            raise ValueError(f"{name} must be a 2-D bool array (folds, samples), got shape {masks.shape} dtype {masks.dtype}")
        masks = masks.copy()
        masks.setflags(write=False)
        return masks

    @property
    def train_masks(self) -> np.ndarray:
        """(F, N) bool, True where fold f trains on sample n (the complement of test_masks unless only_train)."""
        return ~self.test_masks if self.only_train is None else self.only_train

    @property
    def num_folds(self) -> int:
        return self.test_masks.shape[0]

    def select(self, folds: np.ndarray, names: tuple[str, ...] | None = None) -> Folds:
        """The folds `folds` (indices, repeats allowed), renamed `names` if given."""
        train = None if self.only_train is None else self.only_train[folds]
        return Folds(self.test_masks[folds], names or tuple(self.names[f] for f in folds), train)

    def on_copies(self) -> Folds:
        """These folds over F copies of the samples side by side (F x N rows): fold f trains and tests on copy f
        only, as it does here on the samples. For inputs that differ per fold (:meth:`mer_jax.core.dataset.Dataset.copies`)."""
        own = np.kron(np.eye(self.num_folds, dtype=bool), np.ones((1, self.test_masks.shape[1]), bool))
        tiled = (np.tile(masks, self.num_folds) for masks in (self.test_masks, self.train_masks))
        return Folds(own & next(tiled), self.names, own & next(tiled))

    def with_fold_of_everything(self, name: str) -> Folds:
        """These folds and one more that holds nothing out and trains on every sample any fold uses, last."""
        nothing = np.zeros((1, self.test_masks.shape[1]), bool)
        train = None
        if self.only_train is not None:
            train = np.concatenate([self.only_train, (self.only_train | self.test_masks).any(axis=0, keepdims=True)])
        return Folds(np.concatenate([self.test_masks, nothing]), (*self.names, name), train)


def _require_two_folds(num_folds: int, reason: str) -> None:
    if num_folds < 2:
        raise ValueError(f"an evaluation needs at least 2 folds, but {reason}")


def loso(subjects: ArrayLike) -> Folds:
    """Leave one subject out: one fold per distinct subject, in sorted order."""
    subjects = np.asarray(subjects).astype(str)
    if subjects.ndim != 1:
        raise ValueError(f"subjects must be 1-D, got shape {subjects.shape}")
    names = np.unique(subjects)
    _require_two_folds(len(names), f"LOSO found {len(names)} distinct subject(s): {names.tolist()}")
    return Folds(test_masks=subjects[None, :] == names[:, None], names=tuple(names))


def lovo(num_samples: int, test_fraction: float = 0.05, seed: int = 0) -> Folds:
    """Xia et al.'s (TMM 2019) leave-one-video-out as run in the paper (sec. IV-B).

    "To save the training time of deep models, we leave 5% videos for testing":
    the videos are shuffled with ``seed`` and split into round(1 / test_fraction)
    folds of near-equal size (sizes differ by at most 1), so each evaluation holds
    out about ``test_fraction`` of the videos and every video is tested once.
    With fewer videos than that many folds, each fold holds out one video (plain
    leave-one-video-out). Fold names are 'lovo-00', 'lovo-01', ...
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    requested = round(1 / test_fraction)
    _require_two_folds(requested, f"test_fraction={test_fraction} gives {requested} fold(s)")
    _require_two_folds(num_samples, f"LOVO got num_samples={num_samples} video(s)")
    num_folds = min(requested, num_samples)
    order = np.random.default_rng(seed).permutation(num_samples)
    masks = np.zeros((num_folds, num_samples), dtype=bool)
    for fold, held_out in enumerate(np.array_split(order, num_folds)):
        masks[fold, held_out] = True
    return Folds(test_masks=masks, names=tuple(f"lovo-{i:02d}" for i in range(num_folds)))


def stratified_kfold(labels: ArrayLike, k: int = 5, seed: int = 0) -> Folds:
    """Class-stratified k folds; every sample is tested once.

    Each class's samples are shuffled with ``seed`` and dealt round-robin over
    the folds, continuing where the previous class stopped, so per-class counts
    per fold differ by at most 1 and fold sizes differ by at most 1.
    Fold names are 'kfold-00', 'kfold-01', ...
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    _require_two_folds(k, f"k={k}")
    if k > labels.size:
        raise ValueError(f"k={k} folds need at least {k} samples, got {labels.size}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(labels.size, dtype=np.int64)
    start = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold_of[members] = (start + np.arange(members.size)) % k
        start = (start + members.size) % k
    masks = fold_of[None, :] == np.arange(k)[:, None]
    return Folds(test_masks=masks, names=tuple(f"kfold-{i:02d}" for i in range(k)))


def make_folds(
    name: str,
    *,
    subjects: ArrayLike,
    labels: ArrayLike,
    seed: int = 0,
    k: int = 5,
    test_fraction: float = 0.05,
) -> Folds:
    """The protocol ``name`` ('loso', 'lovo', 'kfold' or 'subject_kfold') over the given samples."""
    subjects, labels = np.asarray(subjects), np.asarray(labels)
    if len(subjects) != len(labels):
        raise ValueError(
            f"subjects and labels differ in length: {len(subjects)} subjects, {len(labels)} labels"
        )
    if name == "loso":
        return loso(subjects)
    if name == "lovo":
        return lovo(len(labels), test_fraction=test_fraction, seed=seed)
    if name == "kfold":
        return stratified_kfold(labels, k=k, seed=seed)
    if name == "subject_kfold":
        return subject_kfold(subjects, k=k, seed=seed)
    raise ValueError(f"unknown protocol {name!r}; valid names: {list(PROTOCOLS)}")


def subject_kfold(subjects: ArrayLike, k: int = 5, seed: int = 0) -> Folds:
    """k folds of whole subjects: the distinct subjects shuffled with ``seed`` and split into k groups of
    near-equal size; fold i holds out every clip of group i. Subject-independent like LOSO, with k training
    runs instead of one per subject (for CPU-sized runs). Fold names are 'subjects-00', 'subjects-01', ...
    """
    subjects = np.asarray(subjects).astype(str)
    names = np.unique(subjects)
    _require_two_folds(k, f"k={k}")
    if k > len(names):
        raise ValueError(f"subject_kfold: k={k} folds need at least {k} subjects, got {len(names)}")
    groups = np.array_split(np.random.default_rng(seed).permutation(names), k)
    masks = np.stack([np.isin(subjects, group) for group in groups])
    return Folds(test_masks=masks, names=tuple(f"subjects-{i:02d}" for i in range(k)))


def over_rows(folds: Folds, clip_of_row: ArrayLike) -> Folds:
    """``folds`` of the clips, over rows that are clips or variants of them (e.g. augmented copies).

    Row r is made from the clip whose own row is ``clip_of_row[r]`` (a clip's
    own row maps to itself); ``folds`` has one column per clip, in the order of
    their own rows. Fold f holds out the own rows of the clips it holds out,
    and trains on every row of the clips it trains on (``only_train``): a
    held-out clip's variants are in no fold's test set and never in that
    fold's training set (Xia et al., TMM 2019, sec. III-E: the augmented
    training set of each fold is made of its training clips only).
    """
    clip_of_row = np.asarray(clip_of_row)
    rows = np.arange(len(clip_of_row))
    own = clip_of_row == rows
    if folds.test_masks.shape[1] != own.sum():
        raise ValueError(f"folds of {folds.test_masks.shape[1]} clips for rows of {own.sum()} clips")
    column = np.cumsum(own) - 1  # a clip's column among the clips, at its own row
    clip = column[clip_of_row]
    return Folds(folds.test_masks[:, clip] & own, folds.names, folds.train_masks[:, clip])


def folds_of_config(
    protocol, *, subjects: ArrayLike, labels: ArrayLike, clip_of_row: ArrayLike | None = None
) -> Folds:
    """:func:`make_folds` with the settings of a run's ``config.protocol`` (name, seed, k, test_fraction).

    With ``clip_of_row`` (:func:`mer_jax.data.variants.clip_of_row`, for a data set
    with augmented rows), the protocol is cut over the clips' own rows only
    (subjects, videos and labels of the clips) and spread over every row by
    :func:`over_rows`.
    """
    subjects, labels = np.asarray(subjects), np.asarray(labels)
    own = slice(None) if clip_of_row is None else np.asarray(clip_of_row) == np.arange(len(clip_of_row))
    folds = make_folds(
        protocol.name,
        subjects=subjects[own],
        labels=labels[own],
        seed=protocol.seed,
        k=protocol.k,
        test_fraction=protocol.test_fraction,
    )
    return folds if clip_of_row is None else over_rows(folds, clip_of_row)
