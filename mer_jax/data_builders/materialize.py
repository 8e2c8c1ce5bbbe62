"""What a builder config stores for one clip (docs/design.md, Preprocessing).

A :class:`ClipSpec` names one stored variant; :func:`materialize` turns a
clip's frame files into that variant's array:

  flow        onset -> apex optical flow of the aligned eq. 1 face crops,
              resized to ``size`` (Xia et al., TIP 2020, sec. IV-A), with optical strain
              (eq. 2) as a third channel when ``strain``; with ``alphas``, one
              flow per magnification factor of the clip (Xia et al., TMM 2019, sec. III-B,
              III-E), shape (A, H, W, 2).
  appearance  the aligned crops at ``size``, magnified by each alpha, then
              temporally normalised to ``num_frames`` (Xia et al., TMM 2019, sec. III-C),
              uint8 (A, T, H, W, 3); the builder turns these into the
              d2 x T x C matrices once the mask of every clip's heat map is known.
  frames      the aligned crops at ``size`` temporally normalised to
              ``num_frames``, uint8 (T, H, W, 3), for the sequence models.

The apex is the annotated one, else Xia et al., TMM 2019, eq. 5 over the clip's raw frames.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from mer_jax.data_builders.sources import ClipError
from mer_jax.preprocess import apex as apex_lib
from mer_jax.preprocess import faces, flow, magnify, strain, temporal

KINDS = ("flow", "appearance", "frames")
# Clips are padded in time to a multiple of this before magnification, so the
# jitted EVM compiles for a few lengths only. The IIR filter is causal, so
# frames appended after the end change nothing before it.
_TIME_BUCKET = 16


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """One stored variant of a clip.

    kind: one of ``KINDS``.
    size: (height, width) of the stored maps or frames.
    alphas: magnification factors; () stores the unmagnified clip.
    strain: flow only: append optical strain as a third channel (needs no alphas).
    num_frames: appearance and frames: frames after temporal normalisation.
    method: flow only: optical flow method (:data:`mer_jax.preprocess.flow.METHODS`).
    """

    kind: str
    size: tuple[int, int]
    alphas: tuple[float, ...] = ()
    strain: bool = False
    num_frames: int = 0
    method: str = "tvl1"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown clip kind {self.kind!r}; valid: {KINDS}")
        if self.kind != "flow" and self.num_frames < 2:
            raise ValueError(f"{self.kind} needs num_frames >= 2; got {self.num_frames}")
        if self.strain and (self.kind != "flow" or self.alphas):
            raise ValueError("strain is stored only for unmagnified flow")
        if self.kind == "appearance" and not self.alphas:
            raise ValueError("appearance needs at least one alpha")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the array :func:`materialize` returns."""
        height, width = self.size
        if self.kind == "flow":
            channels = 3 if self.strain else 2
            return (len(self.alphas), height, width, channels) if self.alphas else (height, width, channels)
        frames = (self.num_frames, height, width, 3)
        return (len(self.alphas), *frames) if self.kind == "appearance" else frames

    @property
    def dtype(self) -> type:
        return np.float32 if self.kind == "flow" else np.uint8


def read_frame(path: Path) -> np.ndarray:
    """An RGB uint8 frame; ClipError naming the file if it cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def find_apex(paths: list[Path], apex_number: int | None, onset_number: int) -> tuple[int, bool]:
    """(apex position in ``paths``, whether it was spotted by Xia et al., TMM 2019, eq. 5)."""
    if apex_number is not None:
        return apex_number - onset_number, False
    gray = np.stack([cv2.cvtColor(read_frame(p), cv2.COLOR_RGB2GRAY) for p in paths])
    return apex_lib.spot_apex(gray), True


def _crops(paths: list[Path], size: tuple[int, int] | None) -> tuple[np.ndarray, int]:
    """Aligned eq. 1 crops of ``paths`` and how many frames fell back to earlier landmarks."""
    frames = [read_frame(p) for p in paths]
    try:
        crops, stats = faces.align_and_crop(
            frames, names=[str(p) for p in paths], size=None if size is None else (size[1], size[0])
        )
    except (faces.FaceNotFoundError, ValueError) as error:
        raise ClipError(str(error)) from error
    return crops, stats["landmark_fallbacks"]


def _magnified(crops: np.ndarray, alphas: tuple[float, ...]) -> np.ndarray:
    """(A, T, H, W, 3) float32: the clip magnified by each alpha (padded in time, then cut back)."""
    length = len(crops)
    padded = -(-length // _TIME_BUCKET) * _TIME_BUCKET
    clip = np.concatenate([crops, np.repeat(crops[-1:], padded - length, axis=0)]).astype(np.float32)
    batch = np.broadcast_to(clip, (len(alphas), *clip.shape))
    return np.asarray(magnify.magnify(batch, np.asarray(alphas, np.float32)))[:, :length]


def _to_uint8(frames) -> np.ndarray:
    return np.clip(np.rint(np.asarray(frames)), 0, 255).astype(np.uint8)


def materialize(paths: list[Path], apex: int, spec: ClipSpec) -> tuple[np.ndarray, int]:
    """The stored array of a clip and its count of landmark fallbacks.

    Args:
      paths: the clip's frame files, onset first.
      apex: position of the apex frame in ``paths``.
      spec: what to store.

    Raises:
      ClipError: unreadable frame, no face in the first frame, crop outside the image.
    """
    if spec.kind == "flow" and not spec.alphas:
        crops, fallbacks = _crops([paths[0], paths[apex]], None)
        field = flow.optical_flow(crops[0], crops[1], method=spec.method)
        field = flow.resize_flow(field, spec.size)
        return np.asarray(strain.flow_map(field) if spec.strain else field, np.float32), fallbacks
    if spec.kind == "flow":
        crops, fallbacks = _crops(paths[: apex + 1], spec.size)
        clips = _magnified(crops, spec.alphas)
        fields = [flow.optical_flow(clip[0], clip[apex], method=spec.method) for clip in clips]
        return np.stack(fields).astype(np.float32), fallbacks
    crops, fallbacks = _crops(paths, spec.size)
    if spec.kind == "frames":
        return _to_uint8(temporal.interpolate(crops, spec.num_frames)), fallbacks
    clips = _magnified(crops, spec.alphas)
    return np.stack([_to_uint8(temporal.interpolate(clip, spec.num_frames)) for clip in clips]), fallbacks
