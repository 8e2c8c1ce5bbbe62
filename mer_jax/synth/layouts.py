"""The three datasets as they ship: frame rates, frame files and folder layout.

Paths follow docs/design.md (Data), relative to the output folder:
  - CASME II: ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg`` (colour JPEG,
    200 fps), frames numbered from the onset to the offset;
  - SAMM: ``SAMM/006/006_1_2/006_05562.jpg`` (grayscale JPEG, 200 fps),
    subject in 3 digits, frame number in 5;
  - SMIC: ``HS/s1/micro/negative/s1_ne_01/image123456.bmp`` (colour BMP,
    100 fps), no sheet and no apex.

The frame sizes are much smaller than the real cameras' (640 x 480 and
2040 x 1088) so that the whole composite stays small on disk; SMIC's
uncompressed BMP frames are the smallest.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mer_jax.annotations import CASME2_SHEET, SAMM_SHEET

GROUND_TRUTH = "ground_truth"  # beside the dataset folders, never inside them


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """Facts about one dataset that the generator needs.

    name: 'casme2', 'samm' or 'smic' (as in :mod:`mer_jax.annotations`).
    folder: the top folder of the frame tree.
    sheet: the coding sheet's file name, None for SMIC (it has none).
    fps: the camera's frame rate.
    frame_size: default (width, height) of the written frames.
    colour: whether frames are RGB (else 8-bit grayscale).
    subjects: subject folder names in the dataset's own spelling, in order.
    interocular: range of the eye-centre distance of the faces, pixels at ``frame_size``.
    duration: range of clip lengths onset -> offset, seconds.
    noise: standard deviation of the sensor noise, gray levels.
    """

    name: str
    folder: str
    sheet: str | None
    fps: int
    frame_size: tuple[int, int]
    colour: bool
    subjects: tuple[str, ...]
    interocular: tuple[float, float]
    duration: tuple[float, float]
    noise: float

    def clip_dir(self, root: Path, subject: str, clip: str, emotion: str) -> Path:
        """The folder holding one clip's frames."""
        if self.name == "smic":
            return root / self.folder / subject / "micro" / emotion / clip
        return root / self.folder / subject / clip

    def frame_name(self, subject: str, frame: int) -> str:
        """The file name of frame number ``frame``."""
        if self.name == "casme2":
            return f"img{frame}.jpg"
        if self.name == "samm":
            return f"{subject}_{frame:05d}.jpg"
        return f"image{frame:06d}.bmp"


LAYOUTS = {
    "casme2": DatasetLayout(
        name="casme2",
        folder="CASME2_RAW_selected",
        sheet=CASME2_SHEET,
        fps=200,
        frame_size=(320, 240),
        colour=True,
        subjects=tuple(f"sub{n:02d}" for n in range(1, 27)),
        interocular=(46.0, 58.0),
        duration=(0.10, 0.18),
        noise=1.2,
    ),
    "samm": DatasetLayout(
        name="samm",
        folder="SAMM",
        sheet=SAMM_SHEET,
        fps=200,
        frame_size=(336, 176),
        colour=False,
        subjects=tuple(f"{n:03d}" for n in range(6, 38) if n not in (8, 27)),
        interocular=(40.0, 48.0),
        duration=(0.10, 0.18),
        noise=0.8,
    ),
    "smic": DatasetLayout(
        name="smic",
        folder="HS",
        sheet=None,
        fps=100,
        frame_size=(144, 108),
        colour=True,
        # The 16 subjects of SMIC-HS.
        subjects=tuple(f"s{n}" for n in (1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 18, 19, 20)),
        interocular=(29.0, 34.0),
        duration=(0.10, 0.16),
        noise=1.8,
    ),
}
