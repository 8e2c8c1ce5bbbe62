"""Render one subject: its identity, then every clip's frames and ground truth, written to disk.

Each clip: the expression field of its action units (amplitude drawn per clip
and scaled by the subject's expressiveness), a slow head drift, and per-frame
sensor noise; frame t is ``cv2.remap`` of the neutral face through the
backward map of the forward motion (:mod:`mer_jax.data.synth.motion`), plus noise,
rounded to uint8. The onset frame is the neutral face itself plus noise.

Ground truth goes to ``ground_truth/<dataset>/<subject>/<clip>.npz`` with

  flow          float32 (H, W, 2) onset -> apex flow, u (x) then v (y), the
                convention of :func:`mer_jax.data.preprocess.flow.optical_flow`:
                apex(x + u, y + v) ~ onset(x, y); head drift included;
  expression    float32 (H, W, 2) the expression part alone (no head drift),
                in onset coordinates;
                both rounded to multiples of 2**-10 pixel (so that they
                compress well; the rounding error, under 0.0005 pixel, is far
                below any flow estimator's);
  head          float64 (2, 3) the head's affine motion at the apex: flow(p) =
                head(p + expression(p)) - p;
  landmarks     float64 (68, 2) the neutral face's detected landmarks (x, y);
  onset, apex, offset, fps   ints (apex is the true apex also where the
                CASME II sheet writes '/');
  emotion, megc2019 (the MEGC2019 class, '' for clips outside the
                composite), action_units ('1+2'),
  motion ('inner_brow_raise+outer_brow_raise'), source (the photograph)
                strings; amplitude (peak of ``expression``, pixels) float.

Every random draw comes from a stream keyed by (seed, dataset, subject,
clip), so the output does not depend on which process renders what.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from mer_jax.data.annotations import MEGC2019_EXCLUDED
from mer_jax.data.labels import megc2019_class
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.synth.cameras import CAMERAS
from mer_jax.data.synth.identities import Identity, make_identity
from mer_jax.data.synth.motion import HeadDrift, action_unit_names, backward_map, expression_field, forward_flow, intensity
from mer_jax.data.synth.photos import load_face_photos
from mer_jax.data.synth.plan import PlannedClip, PlannedSubject

GROUND_TRUTH = "ground_truth"  # beside the dataset folders, never inside them
JPEG_QUALITY = 90
_EXPRESSIVENESS = (0.85, 1.15)  # per-subject factor on the amplitude
_AMPLITUDE = (0.75, 1.3)  # per-clip peak displacement, pixels at the default frame size
_NOISE = (0.8, 1.25)  # per-clip factor on the dataset's sensor noise
_DATASET_INDEX = {name: i for i, name in enumerate(LAYOUTS)}
_TRUTH_STEP = 2.0**-10  # ground-truth fields are stored on this grid, pixels


@dataclasses.dataclass(frozen=True)
class RenderTask:
    """One subject to render: its plan, the output root, the frame size, the seed, the factor on the
    expression's amplitude and the frame rate (None: the dataset's own)."""

    subject: PlannedSubject
    root: Path
    frame_size: tuple[int, int]
    seed: int
    expression_scale: float = 1.0
    fps: int | None = None


def subject_identity(task: RenderTask) -> tuple[Identity, float]:
    """The subject's identity and expressiveness (both from the subject's own random stream)."""
    spec, camera = task.subject, CAMERAS[task.subject.dataset]
    rng = np.random.default_rng([task.seed, 0, _DATASET_INDEX[spec.dataset], spec.index])
    photos = load_face_photos()
    photo = photos[(spec.index + 2 * _DATASET_INDEX[spec.dataset]) % len(photos)]
    scale = min(task.frame_size[0] / camera.frame_size[0], task.frame_size[1] / camera.frame_size[1])
    interocular = (camera.interocular[0] * scale, camera.interocular[1] * scale)
    identity = make_identity(
        photo, task.frame_size, interocular, camera.layout.colour, rng, name=f"{spec.dataset} subject {spec.subject}"
    )
    return identity, float(rng.uniform(*_EXPRESSIVENESS)) * scale


def _rounded(field: np.ndarray) -> np.ndarray:
    return (np.round(field / _TRUTH_STEP) * _TRUTH_STEP).astype(np.float32)


def _write_frame(path: Path, frame: np.ndarray) -> None:
    image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.ndim == 3 else frame
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), image, params):
        raise OSError(f"could not write {path}")


def _save_truth(path: Path, expression: np.ndarray, head: np.ndarray, landmarks: np.ndarray, record: dict) -> None:
    """Write the ground-truth .npz (module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        flow=_rounded(forward_flow(expression, head)),
        expression=_rounded(expression),
        head=head,
        landmarks=landmarks,
        **{k: np.asarray(v) for k, v in record.items() if k not in ("dataset", "subject", "clip")},
    )


def render_clip(
    task: RenderTask, clip: PlannedClip, clip_index: int, identity: Identity, expressiveness: float
) -> dict:
    """Write one clip's frames and ground truth; returns its summary record."""
    layout, camera = LAYOUTS[clip.dataset], CAMERAS[clip.dataset]
    spec = task.subject
    rng = np.random.default_rng([task.seed, 1, _DATASET_INDEX[spec.dataset], spec.index, clip_index])
    amplitude = task.expression_scale * expressiveness * rng.uniform(*_AMPLITUDE)
    expression = expression_field(identity.landmarks, clip.action_units, amplitude, task.frame_size, rng)
    drift = HeadDrift.draw(identity.landmarks.mean(axis=0), rng)
    noise = camera.noise * rng.uniform(*_NOISE)

    folder = layout.clip_dir(task.root, clip.subject, clip.clip, clip.emotion)
    folder.mkdir(parents=True, exist_ok=True)
    numbers = np.arange(clip.onset, clip.offset + 1)
    for number, a in zip(numbers, intensity(numbers, clip.onset, clip.apex, clip.offset)):
        head = drift.affine((number - clip.onset) / (clip.offset - clip.onset))
        map_x, map_y = backward_map(expression, float(a), head)
        frame = cv2.remap(identity.neutral, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        frame += noise * rng.standard_normal(frame.shape, dtype=np.float32)
        frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        _write_frame(folder / layout.frame_name(clip.subject, int(number)), frame)

    head = drift.affine((clip.apex - clip.onset) / (clip.offset - clip.onset))
    truth = task.root / GROUND_TRUTH / clip.dataset / clip.subject / f"{clip.clip}.npz"
    excluded = (clip.dataset, clip.subject, clip.clip) in MEGC2019_EXCLUDED
    record = {
        "dataset": clip.dataset,
        "subject": clip.subject,
        "clip": clip.clip,
        "emotion": clip.emotion,
        "megc2019": "" if excluded else megc2019_class(clip.dataset, clip.emotion) or "",
        "onset": clip.onset,
        "apex": clip.apex,
        "offset": clip.offset,
        "fps": task.fps or layout.fps,
        "action_units": "+".join(clip.action_units),
        "motion": action_unit_names(clip.action_units),
        "source": identity.source,
        "amplitude": float(amplitude),
    }
    _save_truth(truth, expression, head, identity.landmarks, record)
    return {
        **record,
        "apex_marked": clip.apex_marked,
        "frames": len(numbers),
        "folder": str(folder),
        "ground_truth": str(truth),
    }


def render_subject(task: RenderTask) -> tuple[list[dict], int]:
    """Render every clip of ``task.subject``; returns (clip records, identity redraws)."""
    identity, expressiveness = subject_identity(task)
    records = [render_clip(task, clip, k, identity, expressiveness) for k, clip in enumerate(task.subject.clips)]
    return records, identity.redraws
