"""What a builder config stores for one clip (docs/data.md, Configs; docs/preprocessing.md).

A :class:`StoredVariant` names one stored variant; :func:`materialize_frames`
turns a clip's frames, already in memory, into that variant's array, and
:func:`materialize` does the same from the clip's frame files:

  flow        onset -> apex optical flow of the aligned face crops (Xia et al.,
              TMM 2019, eq. 1), resized to ``size`` (Xia et al., TIP 2020,
              sec. IV-A), with optical strain (Xia et al., TIP 2020, eq. 2) as
              a third channel when ``strain``; with ``alphas``, one flow per
              magnification factor of the clip (Xia et al., TMM 2019, sec.
              III-B, III-E) and frame-keeping level (``keep_fractions``),
              shape (L A, H, W, 2).
  appearance  the aligned crops at ``size``, magnified by each alpha, then
              temporally normalised to ``num_frames`` (Xia et al., TMM 2019,
              sec. III-C), per frame-keeping level: uint8 (L A, T, H, W, 3);
              training turns these into
              the d2 x T x C matrices of the heat-map mask's pixels when it
              reads the build (:mod:`mer_jax.methods.strcn.heat_mask`).
  frames      the aligned crops at ``size`` temporally normalised to
              ``num_frames``, uint8 (T, H, W, 3), for the sequence models.
  regions     Aouayeb et al.'s (MLSP 2019) six regions of every frame, cut
              unaligned by the first frame's boxes, grayscale, each on its
              black canvas (:mod:`mer_jax.data.preprocess.regions`); uint8
              (T, 6, H, W, 1) with (H, W) = ``size``, the common canvas.
  tim         TLCNN's input (Wang et al., Neurocomputing 2018, sec. 3.4, 4.2):
              every frame cut unaligned by the rectangle around the first
              frame's 68 landmarks (:func:`landmark_box`; the paper: DRMF's
              66), resized to ``size``, RGB, brought to ``num_frames`` by the
              temporal interpolation model (:mod:`mer_jax.data.preprocess.tim`):
              uint8 (T, H, W, 3).

The apex is the annotated one, else Xia et al., TMM 2019, eq. 5 over the clip's
aligned faces (:func:`spot_apex`).

Frame keeping (sec. III-E) drops frames from the aligned clip before any
temporal step, as if they had not been recorded: the kept frames are
magnified (so the IIR band-pass sees the motion faster, and the magnified
apex, hence STRCN-G's onset -> apex flow, changes), then normalised in time
(STRCN-A). docs/data.md, STRCN's x50 augmentation, gives the reading.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mer_jax.data.clips.errors import ClipError
from mer_jax.data.preprocess import apex as apex_lib
from mer_jax.data.preprocess import faces, flow, magnify, regions, strain, temporal, tim
from mer_jax.data.region_geometry import CANVAS, CHANNELS, REGION_NAMES

KINDS = ("flow", "appearance", "frames", "regions", "tim")
# Clips are padded in time to a multiple of this before magnification, so the
# jitted EVM compiles for a few lengths only. The IIR filter is causal, so
# frames appended after the end change nothing before it.
_TIME_BUCKET = 16


@dataclasses.dataclass(frozen=True)
class StoredVariant:
    """One stored variant of a clip: everything :func:`materialize_frames` needs besides the frames.

    Every variant but regions and tim crops the face the same way: each frame
    aligned onto the first and cut by the first frame's box (Xia et al., TMM
    2019, eq. 1; :func:`mer_jax.data.preprocess.faces.align_and_crop`); regions and
    tim cut every frame, unaligned, by boxes from the first frame's landmarks.

    kind: one of ``KINDS``.
    size: (height, width) of the stored maps or frames; regions: the common
      canvas, :data:`mer_jax.methods.six_regions.region_labels.CANVAS`.
    alphas: magnification factors; () stores the unmagnified clip.
    strain: flow only: append optical strain as a third channel (needs no alphas).
    num_frames: appearance, frames and tim: frames after temporal normalisation,
      by linear interpolation (tim: by TIM); regions keeps every frame: 0.
    method: flow only: optical flow method (:data:`mer_jax.data.preprocess.flow.METHODS`).
    keep_fractions: magnified variants only: the frame-keeping levels of Xia
      et al., TMM 2019, sec. III-E (100% first), each a random share of the
      clip's frames (onset..apex for flow, every frame for appearance), kept
      before magnification; () keeps every frame. ``x`` then holds one row
      per (level, alpha), :func:`mer_jax.data.variants.stored_variants`.
    tvl1_epsilon: flow with method tvl1: the solver's stopping threshold
      (:func:`mer_jax.data.preprocess.flow.optical_flow`).

    :meth:`to_dict` / :meth:`from_dict` save it as JSON-friendly values and
    rebuild it; a build keeps it in its metadata as ``variant``.
    """

    kind: str
    size: tuple[int, int]
    alphas: tuple[float, ...] = ()
    strain: bool = False
    num_frames: int = 0
    method: str = "tvl1"
    keep_fractions: tuple[float, ...] = ()
    tvl1_epsilon: float = flow.TVL1_EPSILON

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown clip kind {self.kind!r}; valid: {KINDS}")
        if self.kind in ("appearance", "frames", "tim") and self.num_frames < 2:
            raise ValueError(f"{self.kind} needs num_frames >= 2; got {self.num_frames}")
        if self.kind == "regions" and (self.size != CANVAS or self.num_frames or self.alphas):
            raise ValueError(
                f"regions stores every frame, unmagnified, on the canvas {CANVAS}; got size {self.size}, "
                f"num_frames {self.num_frames}, alphas {self.alphas}"
            )
        if self.kind == "tim" and self.alphas:
            raise ValueError(f"tim stores the clip unmagnified; got alphas {self.alphas}")
        if self.strain and (self.kind != "flow" or self.alphas):
            raise ValueError("strain is stored only for unmagnified flow")
        if self.kind == "appearance" and not self.alphas:
            raise ValueError("appearance needs at least one alpha")
        if self.kind == "flow" and self.method not in flow.METHODS:
            raise ValueError(f"unknown flow method {self.method!r}; valid: {tuple(flow.METHODS)}")
        if self.keep_fractions and (
            not self.alphas or self.keep_fractions[0] != 1.0 or not all(0.0 < k <= 1.0 for k in self.keep_fractions)
        ):
            raise ValueError(
                "keep_fractions are the frame-keeping levels of magnified variants, 1.0 first, each in (0, 1]; "
                f"got {self.keep_fractions} with alphas {self.alphas}"
            )
        if not self.tvl1_epsilon > 0:
            raise ValueError(f"tvl1_epsilon must be positive; got {self.tvl1_epsilon}")

    @property
    def levels(self) -> tuple[float, ...]:
        """The frame-keeping levels stored: ``keep_fractions``, or every frame only."""
        return self.keep_fractions or (1.0,)

    @property
    def shape(self) -> tuple[int | None, ...]:
        """Shape of the array :func:`materialize_frames` returns (regions: None frames, as many as the clip's)."""
        height, width = self.size
        if self.kind == "regions":
            return (None, len(REGION_NAMES), height, width, CHANNELS)
        variants = len(self.levels) * len(self.alphas)
        if self.kind == "flow":
            channels = 3 if self.strain else 2
            return (variants, height, width, channels) if self.alphas else (height, width, channels)
        frames = (self.num_frames, height, width, 3)
        return (variants, *frames) if self.kind == "appearance" else frames

    @property
    def dtype(self) -> type:
        return np.float32 if self.kind == "flow" else np.uint8

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (tuples become lists)."""
        return {
            "kind": self.kind,
            "size": list(self.size),
            "alphas": list(self.alphas),
            "strain": self.strain,
            "num_frames": self.num_frames,
            "method": self.method,
            "keep_fractions": list(self.keep_fractions),
            "tvl1_epsilon": self.tvl1_epsilon,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> StoredVariant:
        """The variant :meth:`to_dict` saved (ValueError for unknown keys or bad values)."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown StoredVariant field(s) {sorted(unknown)}")
        values = dict(values)
        if "size" in values:
            values["size"] = tuple(int(v) for v in values["size"])
        for field in ("alphas", "keep_fractions"):
            if field in values:
                values[field] = tuple(float(v) for v in values[field])
        return cls(**values)


def read_frame(path: str | Path) -> np.ndarray:
    """An RGB uint8 frame (grayscale files come back as three equal channels).

    The file is checked before it is decoded, because OpenCV decodes a
    truncated JPEG into a half-grey image without an error: a JPEG must hold
    its end-of-image marker (FF D9) after its last scan, and a BMP the pixel
    rows its header declares. The format is told by the file's first bytes,
    not its extension. Python reads the bytes and OpenCV decodes them from
    memory, so paths with non-ASCII characters work on every system.

    Raises:
      ClipError: naming the file and its fault (``fault``: 'missing frame',
        'empty frame', 'truncated frame', 'unreadable frame').
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ClipError(f"{path}: not a readable image: {error.strerror}", fault="missing frame") from error
    if not data:
        raise ClipError(f"{path}: not a readable image: empty file (0 bytes)", fault="empty frame")
    _check_complete(path, data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipError(f"{path}: not a readable image", fault="unreadable frame")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _check_complete(path: str | Path, data: bytes) -> None:
    """ClipError if ``data``, a JPEG or BMP file's bytes, stops short of what its format says it holds."""
    if data.startswith(b"\xff\xd8") and not _jpeg_complete(data):
        raise ClipError(
            f"{path}: not a readable image: truncated JPEG ({len(data)} bytes, no end-of-image marker FF D9 "
            "after its last scan)",
            fault="truncated frame",
        )
    if data.startswith(b"BM") and len(data) < _bmp_size(data):
        raise ClipError(
            f"{path}: not a readable image: truncated BMP ({len(data)} bytes; its header declares "
            f"{_bmp_size(data)})",
            fault="truncated frame",
        )


def _jpeg_complete(data: bytes) -> bool:
    """Whether the end-of-image marker follows the last start-of-scan marker.

    Inside a scan's coded data an FF byte is followed only by 00 or a restart
    marker (D0-D7), so a file cut anywhere in its last scan lacks FF D9 after
    it; bytes a camera appends after the end of the image do not matter.
    """
    scan = data.rfind(b"\xff\xda")
    return scan >= 0 and data.find(b"\xff\xd9", scan) >= 0


def _bmp_size(data: bytes) -> int:
    """The size a BMP file must have: the end of its pixel rows if uncompressed, else its header's size field."""
    if len(data) < 34:
        return 34  # shorter than its headers
    declared, offset, header = struct.unpack_from("<I4xII", data, 2)
    if header == 12:  # BITMAPCOREHEADER
        width, height, bits = struct.unpack_from("<HHxxH", data, 18)
        compression = 0
    else:
        width, height, _, bits, compression = struct.unpack_from("<iiHHI", data, 18)
    if compression not in (0, 3, 6):  # run-length encoded: only the size field says
        return declared
    row_bytes = (abs(width) * bits + 31) // 32 * 4
    return offset + row_bytes * abs(height)


def spot_apex(frames: Sequence[np.ndarray] | np.ndarray, names: Sequence[str] | None = None) -> int:
    """Position of the apex among RGB (or grayscale) uint8 ``frames``, onset first (Xia et al., TMM 2019, eq. 5).

    Eq. 5 is applied to the faces aligned onto the first frame and cut by its
    eq. 1 box, as the paper spots after its spatial processing (sec. III-B,
    III-C): on the raw frames the head's own motion grows the difference from
    the onset frame after frame and drags the argmax late. On 60 clips of a
    synthetic composite with head drift, the spotted apex was 12.1 frames
    from the true one on average on raw frames (2% within 2 frames) and 1.4
    on the aligned faces (87% within 2 frames).
    """
    names = _frame_names(names, len(frames))
    crops, _ = _crops(_check_frames(frames, 0, names), names, None)
    return apex_lib.spot_apex(np.stack([cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) for crop in crops]))


def find_apex(paths: list[Path], apex_number: int | None, onset_number: int) -> tuple[int, bool]:
    """(apex position in ``paths``, whether it was spotted by Xia et al., TMM 2019, eq. 5)."""
    if apex_number is not None:
        return apex_number - onset_number, False
    return spot_apex([read_frame(p) for p in paths], names=[str(p) for p in paths]), True


def _frame_names(names: Sequence[str] | None, count: int) -> list[str]:
    """``names`` as strings (default "frame <t>"); ValueError unless there is one per frame."""
    if names is None:
        return [f"frame {t}" for t in range(count)]
    if len(names) != count:
        raise ValueError(f"{len(names)} names for {count} frames")
    return [str(n) for n in names]


def _check_length(count: int) -> None:
    if count < 2:
        raise ClipError(f"a clip needs at least 2 frames (onset and apex); got {count}")


def _check_frames(frames: Sequence[np.ndarray] | np.ndarray, apex: int, names: list[str]) -> list[np.ndarray]:
    """The frames as a list of RGB uint8 (H, W, 3) arrays of one size; ClipError naming the frame otherwise."""
    _check_length(len(frames))
    if not 0 <= apex < len(frames):
        raise ClipError(f"apex position {apex} outside the clip's {len(frames)} frames")
    checked: list[np.ndarray] = []
    for name, frame in zip(names, frames, strict=True):
        frame = np.asarray(frame)
        if frame.ndim == 2 and frame.dtype == np.uint8:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise ClipError(f"{name}: expected uint8 RGB (H, W, 3); got {frame.dtype} {frame.shape}")
        checked.append(frame)
    _check_sizes(checked, names)
    return checked


def _check_sizes(frames: list[np.ndarray], names: list[str]) -> None:
    """ClipError naming the first frame whose size differs from the clip's (the most common; the first on a tie)."""
    sizes = [frame.shape[:2] for frame in frames]
    common = Counter(sizes).most_common(1)[0][0]
    for name, size in zip(names, sizes, strict=True):
        if size != common:
            reference = names[sizes.index(common)]
            raise ClipError(
                f"{name}: {size[1]} x {size[0]} pixels, unlike the clip's other frames read "
                f"({reference}: {common[1]} x {common[0]})",
                fault="frame size",
            )


def _crops(frames: list[np.ndarray], names: list[str], size: tuple[int, int] | None) -> tuple[np.ndarray, int]:
    """Aligned eq. 1 crops of ``frames`` and how many frames fell back to earlier landmarks."""
    try:
        crops, stats = faces.align_and_crop(frames, names=names, size=None if size is None else (size[1], size[0]))
    except faces.FaceNotFoundError as error:
        raise ClipError(str(error), fault="no face") from error
    except ValueError as error:
        raise ClipError(str(error)) from error
    return crops, stats["landmark_fallbacks"]


def _magnified(crops: np.ndarray, alphas: tuple[float, ...], *, last_only: bool = False) -> np.ndarray:
    """(A, T, H, W, 3) float32: the clip magnified by each alpha (padded in time, then cut back);
    with ``last_only``, (A, H, W, 3): its last frame only (:func:`mer_jax.data.preprocess.magnify.magnify`'s ``frame``)."""
    length = len(crops)
    padded = -(-length // _TIME_BUCKET) * _TIME_BUCKET
    clip = np.concatenate([crops, np.repeat(crops[-1:], padded - length, axis=0)]).astype(np.float32)[None]
    alphas = np.asarray(alphas, np.float32)
    if last_only:
        return np.asarray(magnify.magnify(clip, alphas, frame=length - 1))
    return np.asarray(magnify.magnify(clip, alphas))[:, :length]


def kept_frames(length: int, variant: StoredVariant, seed: int) -> list[np.ndarray]:
    """The positions of a ``length``-frame clip that each frame-keeping level of ``variant`` keeps
    (Xia et al., TMM 2019, sec. III-E; :func:`mer_jax.data.preprocess.temporal.kept_frame_indices`: the first and
    last frames always). Level i draws from a generator seeded by (``seed``, i): a clip's draws are the same
    in every build, and its levels independent of one another."""
    return [
        temporal.kept_frame_indices(length, fraction, np.random.default_rng([seed, level]))
        for level, fraction in enumerate(variant.levels)
    ]


def _to_uint8(frames) -> np.ndarray:
    return np.clip(np.rint(np.asarray(frames)), 0, 255).astype(np.uint8)


def _unaligned(
    frames: Iterable[np.ndarray],
    names: list[str],
    place: Callable[..., Any],
    cut: Callable[[np.ndarray, Any], np.ndarray],
) -> np.ndarray:
    """(T, ...): ``cut(frame, boxes)`` of each RGB uint8 frame (read one at a time), unaligned, with
    ``boxes = place(first frame, name=its name)`` found in the first frame's landmarks only (regions, tim)."""
    _check_length(len(names))
    cuts, boxes, first = [], None, None
    for name, frame in zip(names, frames, strict=True):
        if first is None:
            try:
                boxes = place(frame, name=name)
            except faces.FaceNotFoundError as error:
                raise ClipError(str(error), fault="no face") from error
            except ValueError as error:
                raise ClipError(str(error)) from error
            first = (name, frame.shape)
        elif frame.shape != first[1]:
            raise ClipError(
                f"{name}: {frame.shape[1]} x {frame.shape[0]} pixels, unlike the clip's first frame "
                f"({first[0]}: {first[1][1]} x {first[1][0]})",
                fault="frame size",
            )
        cuts.append(cut(frame, boxes))
    return np.stack(cuts)


def _regions(frames: Iterable[np.ndarray], names: list[str]) -> tuple[np.ndarray, int]:
    """(T, 6, H, W, 1) uint8 regions of RGB uint8 ``frames`` (read one at a time) and 0 landmark fallbacks:
    landmarks are found in the first frame only."""
    return _unaligned(frames, names, regions.region_boxes, regions.cut_regions), 0


def landmark_box(frame: np.ndarray, *, name: str = "frame") -> faces.Box:
    """(x0, y0, x1, y1), x1 and y1 exclusive: the smallest rectangle of whole pixels holding ``frame``'s 68
    landmarks, clipped to the image (Wang et al., Neurocomputing 2018, sec. 4.1-4.2: "a rectangle that is
    mostly suitable for containing all the feature points", there DRMF's 66).

    Raises:
      FaceNotFoundError: no face in ``frame``.
      ValueError: the rectangle lies outside the image (naming the frame).
    """
    points = faces.detect_landmarks(frame, name=name)
    height, width = frame.shape[:2]
    (x0, y0), (x1, y1) = np.floor(points.min(axis=0)).astype(int), np.ceil(points.max(axis=0)).astype(int) + 1
    box = (max(int(x0), 0), max(int(y0), 0), min(int(x1), width), min(int(y1), height))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(
            f"{name}: the landmarks' rectangle {(x0, y0, x1, y1)} lies outside the {width} x {height} image"
        )
    return box


def _crop_resized(frame: np.ndarray, box: faces.Box, size: tuple[int, int]) -> np.ndarray:
    """``frame`` cut by ``box`` and resized to ``size`` (height, width): area averaging where that shrinks
    the crop, else bilinear (as :func:`mer_jax.data.preprocess.faces.align_and_crop` resizes)."""
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    shrink = size[0] * size[1] < crop.shape[0] * crop.shape[1]
    return cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _tim(frames: Iterable[np.ndarray], names: list[str], variant: StoredVariant) -> tuple[np.ndarray, int]:
    """(num_frames, H, W, 3) uint8 TIM clip of RGB uint8 ``frames`` (read one at a time; resized before TIM,
    so a clip holds T frames of ``size`` in memory) and 0 landmark fallbacks."""
    crops = _unaligned(frames, names, landmark_box, functools.partial(_crop_resized, size=variant.size))
    return _to_uint8(tim.interpolate(crops, variant.num_frames)), 0


def used_positions(length: int, apex: int, variant: StoredVariant) -> list[int]:
    """The positions of a ``length``-frame clip that ``variant`` reads: onset and apex for plain flow,
    onset..apex for magnified flow, every frame otherwise."""
    if variant.kind == "flow" and not variant.alphas:
        return [0, apex]
    if variant.kind == "flow":
        return list(range(apex + 1))
    return list(range(length))


def materialize_frames(
    frames: Sequence[np.ndarray] | np.ndarray,
    apex: int,
    variant: StoredVariant,
    *,
    names: Sequence[str] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """The stored array of a clip held in memory, and its count of landmark fallbacks.

    The same computation a build applies to every clip, so a new clip (a video
    or a folder of frames) gets exactly what a model trained on the build saw.

    Args:
      frames: the clip's RGB uint8 (H, W, 3) frames (grayscale (H, W) are
        accepted), onset first; a list or a (T, H, W, 3) array. Only
        :func:`used_positions` are read (plain flow: the onset and the apex).
      apex: position of the apex frame in ``frames`` (:func:`spot_apex` finds
        one where none is known).
      variant: what to store, e.g. ``StoredVariant.from_dict(metadata['variant'])``
        of a build.
      names: the frames' file names or labels for error messages (default
        "frame <t>").
      seed: the frame-keeping draws' seed (:func:`kept_frames`); builds use the
        clip's sample id's CRC-32.

    Returns:
      (``variant.shape`` array of ``variant.dtype``, frames whose face was not
      found and kept the previous frame's landmarks).

    Raises:
      ClipError (a ValueError): no face in the first frame, crop outside the
        image (the message names the frame); fewer than 2 frames, an apex
        outside them, frames that are not uint8 RGB of one size.
    """
    names = _frame_names(names, len(frames))
    frames = _check_frames(frames, apex, names)
    if variant.kind == "flow" and not variant.alphas:
        crops, fallbacks = _crops([frames[0], frames[apex]], [names[0], names[apex]], None)
        field = flow.optical_flow(crops[0], crops[1], method=variant.method)
        field = flow.resize_flow(field, variant.size)
        return np.asarray(strain.flow_map(field) if variant.strain else field, np.float32), fallbacks
    if variant.kind == "flow":
        # Onset -> apex of each kept onset..apex clip magnified; EVM leaves the onset (its first frame) as it is.
        crops, fallbacks = _crops(frames[: apex + 1], names[: apex + 1], variant.size)
        onset = crops[0].astype(np.float32)
        fields = [
            flow.optical_flow(onset, magnified, method=variant.method, tvl1_epsilon=variant.tvl1_epsilon)
            for kept in kept_frames(len(crops), variant, seed)
            for magnified in _magnified(crops[kept], variant.alphas, last_only=True)
        ]
        return np.stack(fields).astype(np.float32), fallbacks
    if variant.kind == "regions":
        return _regions(frames, names)
    if variant.kind == "tim":
        return _tim(frames, names, variant)
    crops, fallbacks = _crops(frames, names, variant.size)
    if variant.kind == "frames":
        return _to_uint8(temporal.interpolate(crops, variant.num_frames)), fallbacks
    variants = [
        _to_uint8(temporal.interpolate(clip, variant.num_frames))
        for kept in kept_frames(len(crops), variant, seed)
        for clip in _magnified(crops[kept], variant.alphas)
    ]
    return np.stack(variants), fallbacks


def materialize(
    paths: Sequence[str | Path], apex: int, variant: StoredVariant, *, seed: int = 0
) -> tuple[np.ndarray, int]:
    """The stored array of a clip from its frame files, and its count of landmark fallbacks.

    Reads only the frames ``variant`` uses (:func:`used_positions`), then
    :func:`materialize_frames`.

    Args:
      paths: the clip's frame files, onset first.
      apex: position of the apex frame in ``paths``.
      variant: what to store.
      seed: the frame-keeping draws' seed (:func:`kept_frames`).

    Raises:
      ClipError: unreadable frame (named), no face in the first frame, crop outside the image.
    """
    if not 0 <= apex < len(paths):
        raise ClipError(
            f"{paths[0] if paths else 'clip'}: apex position {apex} outside its {len(paths)} frames",
            fault="apex outside clip",
        )
    used = used_positions(len(paths), apex, variant)
    names = [str(paths[t]) for t in used]
    if variant.kind == "regions":  # frame by frame: a clip's full frames are never all in memory
        return _regions((read_frame(paths[t]) for t in used), names)
    if variant.kind == "tim":  # frame by frame, as regions
        return _tim((read_frame(paths[t]) for t in used), names, variant)
    frames = [read_frame(paths[t]) for t in used]
    return materialize_frames(frames, used.index(apex), variant, names=names, seed=seed)
