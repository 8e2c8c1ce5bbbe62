"""How the synthetic composite films each dataset: frame size, face size, clip lengths, sensor noise.

Where the files go and how they are named (folders, sheets, frame names,
frame rates, colour, subject names) is the datasets' layout, shared with the
builders' readers: :data:`mer_jax.data.clips.layouts.LAYOUTS`. This module holds
only what the generator chooses.

The frame sizes are much smaller than the real cameras' (640 x 480 and
2040 x 1088) so that the whole composite stays small on disk; SMIC's
uncompressed BMP frames are the smallest.
"""

from __future__ import annotations

import dataclasses

from mer_jax.data.clips.layouts import LAYOUTS, DatasetLayout


@dataclasses.dataclass(frozen=True)
class Camera:
    """What the generator writes for one dataset, besides its layout.

    layout: the dataset's on-disk layout (name, folders, frame names, fps, colour, subjects).
    frame_size: default (width, height) of the written frames.
    interocular: range of the eye-centre distance of the faces, pixels at ``frame_size``.
    duration: range of clip lengths onset -> offset, seconds.
    noise: standard deviation of the sensor noise, gray levels.
    """

    layout: DatasetLayout
    frame_size: tuple[int, int]
    interocular: tuple[float, float]
    duration: tuple[float, float]
    noise: float


CAMERAS = {
    "casme2": Camera(
        LAYOUTS["casme2"], frame_size=(320, 240), interocular=(46.0, 58.0), duration=(0.10, 0.18), noise=1.2
    ),
    "samm": Camera(
        LAYOUTS["samm"], frame_size=(336, 176), interocular=(40.0, 48.0), duration=(0.10, 0.18), noise=0.8
    ),
    "smic": Camera(
        LAYOUTS["smic"], frame_size=(144, 108), interocular=(29.0, 34.0), duration=(0.10, 0.16), noise=1.8
    ),
}
