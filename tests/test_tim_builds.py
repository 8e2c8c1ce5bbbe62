"""The ``tim32`` / ``tim64`` builder configs (TLCNN's input; Wang et al., Neurocomputing 2018, sec. 3.4, 4.2).

Builds ``megc2019/tim32`` from a small synthetic composite and checks what it stores against the raw
frames: shape and dtype, the first and last stored frames are the clip's first and last frames cut by
the FIRST frame's landmark rectangle (unaligned: the composite's heads drift) and resized; and that a
build's worker pool keeps a bounded number of clips in flight.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from mer_jax.data import builds
from mer_jax.data.annotations import ClipAnnotation
from mer_jax.data.clips import build as build_lib
from mer_jax.data.clips import builder as builder_lib
from mer_jax.data.clips.builder import config_named
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.clips.materialize import StoredVariant, landmark_box, materialize_frames, read_frame
from mer_jax.data.preprocess import faces, tim
from mer_jax.data.synth import write_synthetic_composite

SYNTH = {"seed": 5, "subjects": 1, "clips_per_subject": 2}


@pytest.fixture(scope="module")
def composite(tmp_path_factory) -> dict:
    return write_synthetic_composite(tmp_path_factory.mktemp("tim") / "raw", progress=False, workers=1, **SYNTH)


@pytest.fixture(scope="module")
def built(composite, tmp_path_factory):
    out = tmp_path_factory.mktemp("tim_built")
    build_lib.build("megc2019", builder_config="tim32", manual_dir=composite["out_dir"], data_dir=str(out))
    return tfds.builder_from_directory(str(builds.built_dir("megc2019/tim32", out)))


def _paths(composite: dict, sample_id: str):
    clip = next(c for c in composite["clips"] if f"{c['dataset']}/{c['subject']}/{c['clip']}" == sample_id)
    annotation = ClipAnnotation(
        clip["dataset"], clip["subject"], clip["clip"], clip["onset"], None, clip["offset"], clip["emotion"], "",
        clip["clip"],
    )
    return LAYOUTS[clip["dataset"]].frame_paths(composite["out_dir"], annotation)


def _cut(frame: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    shrink = 240 * 320 < crop.shape[0] * crop.shape[1]
    return cv2.resize(crop, (320, 240), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def test_tim32_stores_the_first_frames_landmark_rectangle_unaligned_at_240_by_320(built, composite):
    source = built.as_data_source(split="train")
    assert len(source) == sum(bool(c["megc2019"]) for c in composite["clips"]) >= 3
    meta = built.info.metadata
    assert meta["clips_skipped"] == []
    assert StoredVariant.from_dict(meta["variant"]) == config_named("tim32").variant == StoredVariant(
        "tim", (240, 320), num_frames=32
    )
    moved = 0
    for i in range(len(source)):
        record = source[i]
        x = record["x"]
        assert x.shape == (32, 240, 320, 3) and x.dtype == np.uint8
        paths = _paths(composite, record["sample_id"].decode())
        assert record["offset"] - record["onset"] + 1 == len(paths)
        first, last = read_frame(paths[0]), read_frame(paths[-1])
        box = landmark_box(first)
        points = faces.detect_landmarks(first)
        assert box[0] <= points[:, 0].min() and points[:, 0].max() < box[2]
        assert box[1] <= points[:, 1].min() and points[:, 1].max() < box[3]
        # TIM keeps the first and last frames; both are cut by the first frame's rectangle (within uint8 rounding).
        assert np.abs(x[0].astype(int) - _cut(first, box)).max() <= 1
        assert np.abs(x[-1].astype(int) - _cut(last, box)).max() <= 1
        # The head drifts: the last frame's own rectangle differs, and its crop is not what was stored.
        own = landmark_box(last, name=str(paths[-1]))
        if own != box:
            moved += 1
            assert np.abs(x[-1].astype(int) - _cut(last, own)).mean() > 1
        # Every stored frame: TIM (not linear interpolation) of all the frames cut by that one rectangle.
        frames = np.stack([read_frame(p) for p in paths])
        expected = np.clip(np.rint(tim.interpolate(np.stack([_cut(f, box) for f in frames]), 32)), 0, 255)
        assert np.abs(x.astype(int) - expected).max() <= 1
        # What predict gets from the frames in memory is what the build stored.
        apex = int(record["apex"]) - int(record["onset"])
        again, fallbacks = materialize_frames(frames, apex, config_named("tim32").variant)
        assert fallbacks == 0
        np.testing.assert_array_equal(again, x)
    assert moved >= 1


def test_a_memory_mapped_load_equals_the_load_into_memory_and_is_decoded_once(built, monkeypatch):
    data_dir = built.data_dir.split("/megc2019/")[0]
    in_memory = builds.load_built("megc2019/tim32", data_dir=data_dir, shrink=2)
    mapped = builds.load_built("megc2019/tim32", data_dir=data_dir, shrink=2, memmap=True)
    assert isinstance(mapped.x, np.memmap) and not mapped.x.flags.writeable
    np.testing.assert_array_equal(mapped.x, in_memory.x)
    np.testing.assert_array_equal(mapped.sample_id, in_memory.sample_id)
    (written,) = (Path(data_dir) / "decoded").iterdir()
    assert written.suffix == ".npy" and "megc2019_tim32" in written.name
    monkeypatch.setattr(builds.clip_frames, "shrunk", lambda *_: pytest.fail("decoded again"))
    again = builds.load_built("megc2019/tim32", data_dir=data_dir, shrink=2, memmap=True)  # the file, not the build
    np.testing.assert_array_equal(again.x, in_memory.x)


def test_tim_variants_are_checked():
    assert config_named("tim64").variant.shape == (64, 240, 320, 3)
    with pytest.raises(ValueError, match="tim needs num_frames >= 2; got 0"):
        StoredVariant("tim", (240, 320))
    with pytest.raises(ValueError, match="tim stores the clip unmagnified"):
        StoredVariant("tim", (240, 320), num_frames=32, alphas=(8.0,))


class _ThreadPool(concurrent.futures.ThreadPoolExecutor):
    """Stands in for the process pool (same process, so the patched _build_clip is seen); counts submissions."""

    submitted = 0

    def __init__(self, workers, mp_context=None):
        super().__init__(workers)

    def submit(self, *args, **kwargs):
        type(self).submitted += 1
        return super().submit(*args, **kwargs)


def test_build_clips_keeps_a_bounded_number_of_clips_in_flight(monkeypatch):
    """The pool is fed as results are taken: submitted - yielded never exceeds IN_FLIGHT_PER_WORKER x workers,
    and results come in the clips' order."""
    monkeypatch.setattr(builder_lib.concurrent.futures, "ProcessPoolExecutor", _ThreadPool)
    monkeypatch.setattr(builder_lib, "_build_clip", lambda root, clip, variant: clip)
    clips = list(range(10 * builder_lib.CLIPS_PER_WORKER))
    results, in_flight = [], []
    for result in builder_lib.build_clips("root", clips, None, workers=2):
        results.append(result)
        in_flight.append(_ThreadPool.submitted - len(results) + 1)
    assert results == clips
    assert max(in_flight) <= builder_lib.IN_FLIGHT_PER_WORKER * 2
    assert _ThreadPool.submitted == len(clips)
