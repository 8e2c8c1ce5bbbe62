"""The six regions of Aouayeb et al. (MLSP 2019): boxes on a real face, canvases, "not me" tables, loading.

docs/data.md, Config regions. The build runs the real megc2019 builder on the
committed dummy composite (data_builders/megc2019/dummy_data: 9 clips of 3
frames written by mer_jax.data.synth).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow_datasets as tfds

import data_builders
from mer_jax.data import builds
from mer_jax.data import clip_frames as region_clips
from mer_jax.methods import six_regions as regions_method
from mer_jax.data.clips import build as build_lib
from mer_jax.data.clips.builder import config_named
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.clips.materialize import StoredVariant, materialize_frames, read_frame
from mer_jax.data.preprocess import faces
from mer_jax.data.preprocess.regions import cut_regions, fitted_size, region_boxes
from mer_jax.data.region_geometry import CANVAS, REGION_NAMES, REGION_SIZES
from mer_jax.methods.six_regions.region_labels import (
    EMOTION_REGIONS,
    action_unit_regions,
    parse_action_units,
    region_labels,
    tables,
)
from mer_jax.data.synth.motion import ACTION_UNITS, expression_field

DUMMY = Path(data_builders.__file__).parent / "megc2019" / "dummy_data"
EYES = {"left_eye_brow", "right_eye_brow"}
CHEEKS = {"left_cheek", "right_cheek"}
# Each region's own landmarks (dlib's 0-based numbering); a cheek has none of its own, so its centre:
# midway between the lower eyelid and the mouth corner on that side.
GROUPS = {
    "left_eye_brow": [*range(17, 22), *range(36, 42)],
    "right_eye_brow": [*range(22, 27), *range(42, 48)],
    "nose": list(range(27, 36)),
    "mouth": list(range(48, 68)),
}
CHEEK_CENTRES = {"left_cheek": (41, 48), "right_cheek": (46, 54)}


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def landmarks(astronaut):
    return faces.detect_landmarks(astronaut, name="astronaut")


def inside(points, box) -> bool:
    x0, y0, x1, y1 = box
    points = np.atleast_2d(points)
    return bool(np.all((points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0) & (points[:, 1] < y1)))


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_boxes_land_on_their_features(astronaut, landmarks):
    boxes = dict(zip(REGION_NAMES, region_boxes(astronaut, name="astronaut"), strict=True))
    assert tuple(faces.REGIONS) == REGION_NAMES  # the point sets and the sizes name the regions alike
    for region, points in GROUPS.items():
        assert inside(landmarks[points], boxes[region]), region
    for region, (eyelid, corner) in CHEEK_CENTRES.items():
        assert inside((landmarks[eyelid] + landmarks[corner]) / 2, boxes[region]), region
    for eye in EYES:
        assert not overlap(boxes[eye], boxes["mouth"]), eye
    assert not overlap(boxes["left_eye_brow"], boxes["right_eye_brow"])
    assert not overlap(boxes["left_eye_brow"], boxes["right_cheek"])
    assert not overlap(boxes["right_eye_brow"], boxes["left_cheek"])
    assert not overlap(boxes["left_cheek"], boxes["right_cheek"])
    # image-left is left: the region named left lies left of the nose
    assert boxes["left_eye_brow"][2] <= boxes["nose"][2] and boxes["right_eye_brow"][0] >= boxes["nose"][0]
    assert boxes["left_cheek"][0] < boxes["nose"][0] < boxes["right_cheek"][0]


def test_paper_sizes_follow_each_region_s_long_side(astronaut):
    """The paper's [a, b] pairs read as (height, width) by the anatomy: eye + brow and mouth wider than tall,
    nose taller than wide, as the boxes on a real face are."""
    for region, (x0, y0, x1, y1), (height, width) in zip(REGION_NAMES, region_boxes(astronaut), REGION_SIZES):
        if region not in CHEEKS:
            assert ((x1 - x0) > (y1 - y0)) == (width > height), region
    assert CANVAS == (max(h for h, _ in REGION_SIZES), max(w for _, w in REGION_SIZES))


def test_crops_go_top_left_on_black_and_shrink_only_when_larger():
    rng = np.random.default_rng(0)
    frame = rng.integers(1, 256, (400, 500, 3), dtype=np.uint8)  # no black pixel: the canvas's zeros are padding
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    # (height x width) left eye 40 x 30 fits its 80 x 100 canvas, right eye 80 x 100 fills it, nose 200 x 60
    # shrinks by 0.6 to 120 x 36, the cheeks fill their 60 x 60, mouth 90 x 320 shrinks by 0.5 to 45 x 160.
    boxes = [
        (10, 20, 40, 60), (0, 0, 100, 80), (100, 100, 160, 300), (200, 0, 260, 60), (300, 300, 360, 360),
        (100, 310, 420, 400),
    ]
    out = cut_regions(frame, boxes)
    assert out.shape == (6, *CANVAS, 1) and out.dtype == np.uint8
    expected_sizes = [(40, 30), (80, 100), (120, 36), (60, 60), (60, 60), (45, 160)]
    for r, ((x0, y0, x1, y1), (h, w)) in enumerate(zip(boxes, expected_sizes)):
        region = out[r, ..., 0]
        assert (region[:h, :w] > 0).all() and not region[h:].any() and not region[:, w:].any(), REGION_NAMES[r]
        crop = gray[y0:y1, x0:x1]
        if crop.shape == (h, w):
            np.testing.assert_array_equal(region[:h, :w], crop)  # kept pixel for pixel
        else:
            np.testing.assert_array_equal(region[:h, :w], cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA))
    assert fitted_size((100, 50), (80, 100)) == (80, 40) and fitted_size((30, 40), (60, 60)) == (30, 40)


def test_action_units_are_read_as_the_sheets_write_them():
    assert parse_action_units("L12+R14") == ([("L", "12"), ("R", "14")], [])
    assert parse_action_units("AU4+AU7") == ([("", "4"), ("", "7")], [])
    assert parse_action_units(" 12B + r20b ") == ([("", "12"), ("R", "20")], [])
    assert parse_action_units("4+(7)+10?") == ([("", "4"), ("", "7"), ("", "10")], [])
    assert parse_action_units("4+smile") == ([("", "4")], ["smile"])
    assert parse_action_units("") == ([], [])


def test_action_unit_table_hand_checked():
    assert set(action_unit_regions("12")) == CHEEKS | {"mouth"}
    assert set(action_unit_regions("L12")) == {"right_cheek", "mouth"}  # the subject's left is the image's right
    assert set(action_unit_regions("R14")) == {"left_cheek", "mouth"}
    assert set(action_unit_regions("4+7")) == EYES
    assert set(action_unit_regions("AU1+AU2")) == EYES
    assert set(action_unit_regions("9")) == EYES | {"nose"}
    assert set(action_unit_regions("6+12")) == EYES | CHEEKS | {"mouth"}
    assert set(action_unit_regions("17+24")) == {"mouth"}
    assert action_unit_regions("51") == () and action_unit_regions("") == ()  # head turn: no region
    assert action_unit_regions("12+4") == action_unit_regions("4+12")  # in REGION_NAMES order


def test_emotion_table_hand_checked():
    assert set(EMOTION_REGIONS["positive"]) == EYES | CHEEKS | {"mouth"}  # the paper's example: happy, not the nose
    assert set(EMOTION_REGIONS["surprise"]) == EYES | {"mouth"}
    assert set(EMOTION_REGIONS["negative"]) == EYES | {"nose", "mouth"}
    assert set(EMOTION_REGIONS["repression"]) == CHEEKS | {"mouth"}
    assert EMOTION_REGIONS["others"] == REGION_NAMES


def test_tables_override_and_refuse_unknown_regions():
    custom = tables({"action_units": {"12": ["mouth"]}, "emotions": {"surprise": ["left_eye_brow"]}})
    assert custom.action_units["12"] == ("mouth",) and custom.action_units["4"] == tuple(sorted(EYES))
    assert custom.emotions["surprise"] == ("left_eye_brow",)
    assert custom.emotions["negative"] == EMOTION_REGIONS["negative"]
    with pytest.raises(ValueError, match="unknown region.*'chin'"):
        tables({"emotions": {"surprise": ["chin"]}})
    with pytest.raises(ValueError, match="not an AU number"):
        tables({"action_units": {"smile": ["mouth"]}})
    with pytest.raises(ValueError, match="unknown key"):
        tables({"regions": {}})


def test_region_labels_values_and_fallback(caplog):
    label = np.array([1, 2, 0, 0, 0], np.int32)
    with caplog.at_level(logging.WARNING):
        got = region_labels(
            label, 3, ["L12", "", "", "4+9", "15+smile"], ["happiness", "surprise", "disgust", "disgust", "anger"],
            ["casme2", "smic", "samm", "samm", "samm"], ["c/1", "s/1", "m/1", "m/2", "m/3"],
        )
    assert got.dtype == np.int32 and got.shape == (5, 6)
    np.testing.assert_array_equal(got[0], [3, 3, 3, 3, 1, 1])  # L12: right cheek and mouth
    np.testing.assert_array_equal(got[1], [2, 2, 3, 3, 3, 2])  # SMIC surprise: eyes and mouth
    np.testing.assert_array_equal(got[2], [0, 0, 0, 3, 3, 0])  # blank AUs: disgust's table
    np.testing.assert_array_equal(got[3], [0, 0, 0, 3, 3, 3])  # 4+9: eyes and nose
    np.testing.assert_array_equal(got[4], [3, 3, 3, 3, 3, 0])  # 15 read, 'smile' ignored
    warned = [r.getMessage() for r in caplog.records if "emotion table" in r.getMessage()]
    assert len(warned) == 1 and "1 clips" in warned[0] and "m/1" in warned[0] and "s/1" not in warned[0]
    ignored = [r.getMessage() for r in caplog.records if "not AU codes" in r.getMessage()]
    assert len(ignored) == 1 and "m/3 ('15+smile')" in ignored[0]
    with pytest.raises(ValueError, match="x/1.*'tense'"):
        region_labels(np.array([0], np.int32), 3, [""], ["tense"], ["casme2"], ["x/1"])


def test_synthetic_motions_move_most_in_a_region_their_action_unit_names(landmarks):
    """The synthetic composite renders each AU code its sheet writes (mer_jax.data.synth.motion); the region its
    rendered motion moves most (mean displacement inside the box) is one the AU table gives that code."""
    boxes = faces.facial_regions(landmarks)
    for code in ACTION_UNITS:
        field = expression_field(landmarks, (code,), 1.0, (512, 512), np.random.default_rng(0))
        field = np.linalg.norm(field, axis=-1)
        moved = {r: field[y0:y1, x0:x1].mean() for r, (x0, y0, x1, y1) in boxes.items()}
        assert max(moved, key=moved.get) in action_unit_regions(code), (code, moved)


def test_frame_positions_spread_evenly_and_keep_both_ends():
    np.testing.assert_array_equal(region_clips.frame_positions(10, 4), [0, 3, 6, 9])
    np.testing.assert_array_equal(region_clips.frame_positions(3, 5), [0, 1, 2])
    np.testing.assert_array_equal(region_clips.frame_positions(7, 0), np.arange(7))
    for length in range(2, 60):
        for frames in range(2, length + 1):
            positions = region_clips.frame_positions(length, frames)
            assert len(positions) == frames and positions[0] == 0 and positions[-1] == length - 1
            assert (np.diff(positions) > 0).all() and np.diff(positions).max() - np.diff(positions).min() <= 1
    with pytest.raises(ValueError, match="config.data.frames"):
        region_clips.frame_positions(5, -1)


def _row(index, length):
    return region_clips.ClipRow(index, length, f"casme2/sub01/c{index}", "casme2", "happiness", "12")


def test_read_pads_to_the_longest_clip_or_samples_k():
    # frame t of each clip holds the value t + 1 everywhere
    source = [{"x": np.broadcast_to(np.arange(1, n + 1, dtype=np.uint8)[:, None, None, None, None], (n, 6, 2, 3, 1))}
              for n in (5, 2, 9)]
    rows = [_row(i, len(s["x"])) for i, s in enumerate(source)]
    x, count = region_clips.read(source, rows, 0, "test")
    assert x.shape == (3, 9, 6, 2, 3, 1) and x.dtype == np.uint8 and count.dtype == np.int32
    np.testing.assert_array_equal(count, [5, 2, 9])
    np.testing.assert_array_equal(x[0, :, 0, 0, 0, 0], [1, 2, 3, 4, 5, 0, 0, 0, 0])  # zeros after the clip
    x, count = region_clips.read(source, rows[::-1], 4, "test")
    np.testing.assert_array_equal(count, [4, 2, 4])
    np.testing.assert_array_equal(x[0, :, 0, 0, 0, 0], [1, 4, 6, 9])  # frames 1..9 sampled, ends kept
    np.testing.assert_array_equal(x[1, :, 0, 0, 0, 0], [1, 2, 0, 0])  # shorter than K: padded
    with pytest.raises(ValueError, match="c1 holds 2 frames, not.*3"):
        region_clips.read(source, [_row(1, 3)], 0, "test")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("regions")
    build_lib.build("megc2019", builder_config="regions", manual_dir=str(DUMMY), data_dir=str(out))
    return out


def test_build_stores_every_frame_as_the_in_memory_path_does(built):
    builder = tfds.builder_from_directory(str(builds.built_dir("megc2019/regions", built)))
    source = builder.as_data_source(split="train")
    variant = StoredVariant.from_dict(builder.info.metadata["variant"])
    assert variant == config_named("regions").variant and builder.info.metadata["clips_skipped"] == []
    assert len(source) == 9
    for index in range(len(source)):
        record = source[index]
        x, onset, offset = record["x"], int(record["onset"]), int(record["offset"])
        assert x.shape == (offset - onset + 1, 6, *CANVAS, 1) and x.dtype == np.uint8
        for r, (height, width) in enumerate(REGION_SIZES):
            assert x[:, r, :height, :width].any() and not x[:, r, height:].any() and not x[:, r, :, width:].any()
    record = source[0]
    dataset, subject, clip = record["sample_id"].decode().split("/")
    layout = LAYOUTS[dataset]
    folder = layout.clip_dir(DUMMY, subject, clip, record["emotion"].decode())
    numbers = range(int(record["onset"]), int(record["offset"]) + 1)
    frames = [read_frame(folder / layout.frame_name(subject, n)) for n in numbers]
    expected, _ = materialize_frames(frames, 0, variant)
    np.testing.assert_array_equal(record["x"], expected)


def test_regions_load_without_tensorflow(built):
    code = (
        "import sys; from mer_jax.data import builds; "
        f"d = builds.load_built('megc2019/regions', data_dir={str(built)!r}, frames_per_clip=2); "
        "print(d.x.shape[1], 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "False"]


def test_loader_samples_frames_and_fills_extra(built):
    whole = regions_method.load(_config(built))
    assert whole.x.dtype == np.uint8 and whole.x.shape == (9, 3, 6, *CANVAS, 1)
    np.testing.assert_array_equal(whole.extra["num_frames"], 3)
    labels = whole.extra["region_label"]
    assert labels.shape == (9, 6) and labels.dtype == np.int32
    assert "region_label" not in builds.load(_config(built)).extra  # the method's, not the build's
    assert ((labels == whole.label[:, None]) | (labels == whole.num_classes)).all()
    assert (labels == whole.label[:, None]).any(axis=1).all()  # every clip has a region taking part
    sampled = builds.load(_config(built, frames=2))
    np.testing.assert_array_equal(sampled.x, whole.x[:, [0, 2]])
    padded = regions_method.load(_config(built, frames=5))
    np.testing.assert_array_equal(padded.extra["num_frames"], 3)
    np.testing.assert_array_equal(padded.x[:, :3], whole.x)
    assert not padded.x[:, 3:].any()
    taken = padded.take(np.array([2, 0]))
    np.testing.assert_array_equal(taken.extra["region_label"], labels[[2, 0]])
    mouth_only = {"emotions": dict.fromkeys(EMOTION_REGIONS, ["mouth"]),
                  "action_units": dict.fromkeys(ACTION_UNIT_NUMBERS, ["mouth"])}
    custom = regions_method.load(_config(built, region_tables=mouth_only))
    np.testing.assert_array_equal(custom.extra["region_label"][:, 5], custom.label)
    assert (custom.extra["region_label"][:, :5] == custom.num_classes).all()


ACTION_UNIT_NUMBERS = [str(int(code.lstrip("LR"))) for code in ACTION_UNITS]


def _config(built: Path, **data_keys):
    return {"name": "megc2019/regions", "data_dir": str(built), **data_keys}
