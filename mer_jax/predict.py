"""`mer-jax predict`: the class probabilities of a new clip under a run's final model.

A clip is a folder of frame images (ordered by the number that ends each file
name, as the builders read the data sets, then by name) or a video file that
OpenCV reads. The frames from ``onset`` on are the clip; its apex is the one
given or, without one, spotted by Xia et al., TMM 2019, eq. 5. The clip then
goes through the preprocessing of the build the model was trained on (face
alignment, eq. 1 crop, flow, strain, resize: the build's stored variant,
:func:`mer_jax.data.clips.materialize.materialize_frames`), so it reaches the model
as the training clips did.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from mer_jax.data import builds
from mer_jax.core import final_model
from mer_jax.data.clips.layouts import FRAME_NUMBER
from mer_jax.data.clips.materialize import StoredVariant, materialize_frames, read_frame, spot_apex

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclasses.dataclass(frozen=True)
class Prediction:
    label: str  # the most probable class
    probabilities: dict[str, float]  # class name -> probability
    apex: int  # position of the apex frame among the frames read
    apex_spotted: bool  # True when the apex was spotted (none given)


def _frame_order(path: Path) -> tuple:
    match = FRAME_NUMBER.search(path.stem)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def read_frames(source: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """The RGB uint8 frames of a folder of images or a video file, and a name for each (for errors)."""
    source = Path(source)
    if source.is_dir():
        paths = sorted((p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_frame_order)
        if not paths:
            raise ValueError(f"{source}: no frame images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return [read_frame(path) for path in paths], [str(p) for p in paths]
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such folder of frames or video file")
    capture = cv2.VideoCapture(str(source))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise ValueError(f"{source}: not a folder of frames nor a video OpenCV can read")
    return frames, [f"{source} frame {t}" for t in range(len(frames))]


class Predictor:
    """A run's final model with its build's preprocessing, applied to clip after clip."""

    def __init__(self, workdir: str | Path):
        self.final = final_model.load(workdir)
        if self.final.variant is None:
            raise ValueError(
                f"the final model in {workdir} was trained on {self.final.data['name']!r}, which is not built from "
                "clips: predict needs a model trained on a build such as megc2019/flow60"
            )
        self.variant = StoredVariant.from_dict(self.final.variant)
        if self.variant.kind == "appearance":
            raise ValueError(
                "STRCN-A inputs select pixels by a mask of the whole build's heat map, which a single new clip "
                "cannot reproduce; predict works with flow and frames builds"
            )
        if self.variant.alphas:  # the test variant alone (every frame, the test alpha), not the build's augmentation
            alpha = float(self.final.data.get("alpha", 8.0))
            self.variant = dataclasses.replace(self.variant, alphas=(alpha,), keep_fractions=())

    def predict(self, source: str | Path, *, onset: int = 0, apex: int | None = None) -> Prediction:
        """Probabilities of the clip at `source` (positions `onset` and `apex` count from its first frame, 0)."""
        frames, names = read_frames(source)
        if not 0 <= onset < len(frames) - 1:
            raise ValueError(f"{source}: onset {onset} leaves fewer than 2 of its {len(frames)} frames")
        if apex is not None and not onset < apex < len(frames):
            raise ValueError(f"{source}: the apex ({apex}) must come after the onset ({onset}) within its "
                             f"{len(frames)} frames")
        clip, names = frames[onset:], names[onset:]
        position = spot_apex(clip, names) if apex is None else apex - onset
        stored, _ = materialize_frames(clip, position, self.variant, names=names)
        alphas = list(self.variant.alphas)
        x = builds.model_input(stored, alphas, self.final.data.get("alpha", 8.0))
        probabilities = self.final.probabilities(x[None])[0]
        classes = self.final.class_names
        return Prediction(
            label=classes[int(probabilities.argmax())],
            probabilities={name: float(p) for name, p in zip(classes, probabilities)},
            apex=onset + position,
            apex_spotted=apex is None,
        )


def predict_clip(workdir: str | Path, source: str | Path, *, onset: int = 0, apex: int | None = None) -> Prediction:
    """`Predictor(workdir).predict(source, ...)` for one clip."""
    return Predictor(workdir).predict(source, onset=onset, apex=apex)
