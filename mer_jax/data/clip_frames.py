"""The clips of a ``regions`` or ``tim`` build as one uint8 array, and their frame counts (docs/data.md, regions).

Clips have as many frames as onset..offset. ``frames`` (``config.data.frames``)
says what a model sees:

- 0: every frame, zeros appended to each clip up to the longest clip read.
  Aouayeb et al., MLSP 2019, sec. 4.1.2 pads every sequence with zeros at the
  end to 500 frames for its LSTMs; 500 is only a bound above its longest clip,
  so the longest clip read is used instead (the same sequences, less memory).
- K > 0: K frames spread evenly from the onset to the offset (both kept); a
  clip of fewer frames keeps them all and is padded to K.

``extra['num_frames']`` holds each clip's real frame count: frames beyond it
are padding, which a sequence model masks rather than learning from zeros.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


MEMMAP_FORMAT = 1  # raised when what read() stores changes (frame_positions, shrunk): older files are not used
NUM_FRAMES = "num_frames"  # Dataset.extra key: (N,) int32 real frames per clip


@dataclasses.dataclass(frozen=True)
class ClipRow:
    """What the loader keeps of one clip before its frames are read.

    index: the record's index in the build; length: its frames (offset - onset + 1);
    sample_id, dataset, emotion, action_units: as stored.
    """

    index: int
    length: int
    sample_id: str
    dataset: str
    emotion: str
    action_units: str

    @classmethod
    def of(cls, index: int, record: Mapping[str, Any]) -> ClipRow:
        """The row of the build's record ``index`` (its x need not be decoded)."""
        return cls(
            index, int(record["offset"]) - int(record["onset"]) + 1, record["sample_id"].decode(),
            record["dataset"].decode(), record["emotion"].decode(), record["action_units"].decode(),
        )


def frame_positions(length: int, frames: int) -> np.ndarray:
    """The positions read from a clip of ``length`` frames: all of them when ``frames`` is 0 or the clip has
    no more than ``frames``, else ``frames`` positions spread evenly from the first to the last (both kept,
    each distinct)."""
    if frames < 0:
        raise ValueError(f"config.data.frames must be 0 (every frame) or a number of frames > 0; got {frames}")
    if frames == 0 or length <= frames:
        return np.arange(length)
    return np.floor(np.linspace(0, length - 1, frames) + 0.5).astype(np.int64)


def shrunk(frames: np.ndarray, factor: int) -> np.ndarray:
    """(..., H, W, C) uint8 canvases averaged over ``factor`` x ``factor`` blocks: (..., H / f, W / f, C).

    Each region sits at its canvas's top-left, so region r of size (h, w) becomes
    the top-left (h / f, w / f) of the smaller canvas.
    """
    if factor < 1 or frames.shape[-3] % factor or frames.shape[-2] % factor:
        raise ValueError(
            f"config.data.shrink={factor} must be a whole divisor of the {frames.shape[-3:-1]} canvas"
        )
    if factor == 1:
        return frames
    *lead, h, w, c = frames.shape
    blocks = frames.reshape(*lead, h // factor, factor, w // factor, factor, c).mean(axis=(-4, -2))
    return np.round(blocks).astype(np.uint8)


def memmap_path(folder: Path, build: Path, rows: Sequence[ClipRow], frames: int, shrink: int) -> Path:
    """Where :func:`read` keeps the decoded clips of ``rows`` of the build in ``build``: a .npy file in
    ``folder`` named after the build, and after everything its content depends on (the rows, frames, shrink,
    and the build's files: a build made again gets a new file)."""
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in build.iterdir() if p.is_file())
    rows_key = [(r.index, r.sample_id, r.length) for r in rows]
    key = json.dumps([MEMMAP_FORMAT, str(build.resolve()), files, rows_key, frames, shrink])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return folder / f"{build.parent.parent.name}_{build.parent.name}_{build.name}_{digest}.npy"


def read(
    source: Sequence[Mapping[str, Any]], rows: Sequence[ClipRow], frames: int, name: str, shrink: int = 1,
    memmap: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, 6, H / shrink, W / shrink, 1) uint8 clips of ``rows`` in that order (:func:`shrunk`), and (N,)
    int32 real frame counts.

    The output is allocated once and each record is read and sampled into it,
    so memory holds the result and one clip, not every clip twice. With
    ``memmap`` (a .npy path, :func:`memmap_path`) the output is that file,
    written once and then read through a read-only memory map: the host keeps
    the pages in use, which the system can drop again, not the data set.

    Raises:
      ValueError: a record whose frame count is not its onset..offset (a damaged build; naming it).
    """
    counts = np.asarray([len(frame_positions(row.length, frames)) for row in rows], np.int32)
    if memmap is None:
        return _read_into(source, rows, frames, name, shrink, counts, None), counts
    if not memmap.is_file():
        memmap.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=memmap.parent, prefix=f"{memmap.stem}.", suffix=".partial.npy")
        os.close(handle)
        try:  # written under a name of its own, renamed when complete: a file of the final name is whole
            _read_into(source, rows, frames, name, shrink, counts, Path(partial))
            os.replace(partial, memmap)
        finally:
            Path(partial).unlink(missing_ok=True)
    return np.load(memmap, mmap_mode="r"), counts


def _read_into(source, rows, frames, name, shrink, counts, path: Path | None) -> np.ndarray | None:
    """The clips of :func:`read` in a new array, or written to the .npy file `path` (then synced; None)."""
    out = None
    for n, row in enumerate(rows):
        x = source[row.index]["x"]
        if len(x) != row.length:
            raise ValueError(
                f"{name}: example {row.sample_id} holds {len(x)} frames, not its onset..offset's {row.length}; "
                "the build is damaged: build it again into an empty --data_dir"
            )
        clip = shrunk(x[frame_positions(row.length, frames)], shrink)
        if out is None:
            shape = (len(rows), frames or int(counts.max()), *clip.shape[1:])
            if path is None:
                out = np.zeros(shape, np.uint8)
            else:
                out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
        out[n, : counts[n]] = clip
    if path is None:
        return out
    out.flush()
    del out
    with open(path, "rb+") as file:
        os.fsync(file.fileno())
    return None
