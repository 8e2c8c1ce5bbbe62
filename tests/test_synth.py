"""The synthetic composite written in the real datasets' layouts (mer_jax.data.synth)."""

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from mer_jax.data.annotations import (
    CASME2_SHEET,
    SAMM_SHEET,
    ClipAnnotation,
    megc2019_members,
    read_casme2_sheet,
    read_samm_sheet,
    scan_smic,
)
from mer_jax.data.labels import megc2019_class
from mer_jax.data.preprocess.faces import detect_landmarks, eye_centres
from mer_jax.data.preprocess.flow import optical_flow
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.synth import write_synthetic_composite
from mer_jax.data.synth.cameras import CAMERAS
from mer_jax.data.synth.identities import make_identity
from mer_jax.data.synth.motion import HeadDrift, backward_map, expression_field, forward_flow, intensity
from mer_jax.data.synth.photos import load_face_photos
from mer_jax.data.synth.plan import make_plan

SMALL = {"subjects": {"casme2": 2, "samm": 2, "smic": 2}, "clips_per_subject": 3}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_synthetic_composite(tmp_path_factory.mktemp("synth"), seed=0, progress=False, **SMALL)


def _written(record):
    """What the annotation readers should return for a clip record."""
    marked = record["apex_marked"] and record["dataset"] != "smic"
    return (
        record["dataset"], record["subject"], record["clip"], record["onset"], record["apex"] if marked else None,
        record["offset"], record["emotion"], record["action_units"] if record["dataset"] != "smic" else "",
    )


def _read(annotation: ClipAnnotation):
    a = annotation
    return (a.dataset, a.subject, a.clip, a.onset, a.apex, a.offset, a.emotion, a.action_units)


def _frame(record, number):
    layout = LAYOUTS[record["dataset"]]
    path = Path(record["folder"]) / layout.frame_name(record["subject"], number)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def _truth(record):
    with np.load(record["ground_truth"]) as data:
        return {k: data[k] for k in data.files}


def test_sheets_and_folders_round_trip_through_the_readers(small):
    root = Path(small["out_dir"])
    casme2, casme2_problems = read_casme2_sheet(root / CASME2_SHEET)
    samm, samm_problems = read_samm_sheet(root / SAMM_SHEET)
    smic, smic_problems = scan_smic(root)
    assert casme2_problems == samm_problems == smic_problems == []
    assert sorted(map(_read, casme2 + samm + smic)) == sorted(map(_written, small["clips"]))
    assert any(a.apex is None for a in casme2)  # a '/' apex cell, as in the real sheet
    assert samm[0].source == f"{SAMM_SHEET} row 15"  # 13 rows of preamble, header in row 14
    header = next(openpyxl.load_workbook(root / CASME2_SHEET).active.iter_rows(values_only=True))
    assert header == ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                      "Action Units", "Estimated Emotion")
    samm_rows = list(openpyxl.load_workbook(root / SAMM_SHEET).active.iter_rows(values_only=True))
    assert samm_rows[13] == ("Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
                             "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes")


def test_frames_run_from_onset_to_offset_in_each_layout(small):
    examples = {}
    for record in small["clips"]:
        layout = LAYOUTS[record["dataset"]]
        names = sorted(p.name for p in Path(record["folder"]).iterdir())
        expected = [layout.frame_name(record["subject"], n) for n in range(record["onset"], record["offset"] + 1)]
        assert names == sorted(expected) and len(names) == record["frames"]
        examples.setdefault(record["dataset"], (Path(record["folder"]), expected[0]))
    root = Path(small["out_dir"])
    assert examples["casme2"][0].relative_to(root).parts[:2] == ("CASME2_RAW_selected", "sub01")
    assert examples["casme2"][1].startswith("img") and examples["casme2"][1].endswith(".jpg")
    assert examples["samm"][0].relative_to(root).parts[:2] == ("SAMM", "006")
    assert examples["samm"][1].startswith("006_") and len(examples["samm"][1]) == len("006_05562.jpg")
    assert examples["smic"][0].relative_to(root).parts[:3] == ("HS", "s1", "micro")
    assert len(examples["smic"][1]) == len("image123456.bmp")
    for record in (small["clips"][0], small["clips"][-1], next(r for r in small["clips"] if r["dataset"] == "samm")):
        frame = _frame(record, record["onset"])
        width, height = CAMERAS[record["dataset"]].frame_size
        assert frame.shape == ((height, width, 3) if LAYOUTS[record["dataset"]].colour else (height, width))


def test_ground_truth_lies_beside_the_datasets(small):
    root = Path(small["out_dir"])
    for record in small["clips"]:
        path = Path(record["ground_truth"])
        assert path == root / "ground_truth" / record["dataset"] / record["subject"] / f"{record['clip']}.npz"
        truth = _truth(record)
        width, height = CAMERAS[record["dataset"]].frame_size
        assert truth["flow"].shape == truth["expression"].shape == (height, width, 2)
        assert truth["flow"].dtype == np.float32
        assert record["onset"] < int(truth["apex"]) == record["apex"] < record["offset"]
        assert str(truth["megc2019"]) == (megc2019_class(record["dataset"], record["emotion"]) or "")
        assert str(truth["motion"]) == record["motion"]


def test_full_plan_is_the_megc2019_composite_plus_other_clips():
    clips = [c for s in make_plan(0) for c in s.clips]
    annotations = [
        ClipAnnotation(c.dataset, c.subject, c.clip, c.onset, c.apex, c.offset, c.emotion, "", "") for c in clips
    ]
    members = megc2019_members(annotations)
    assert len(members) == 442 and len({(a.dataset, a.subject) for a in members}) == 68
    expected = {"smic": (70, 51, 43, 16), "casme2": (88, 32, 25, 24), "samm": (92, 26, 15, 28)}
    for dataset, (negative, positive, surprise, subjects) in expected.items():
        mine = [a for a in members if a.dataset == dataset]
        counts = Counter(megc2019_class(dataset, a.emotion) for a in mine)
        assert (counts["negative"], counts["positive"], counts["surprise"]) == (negative, positive, surprise)
        assert len({a.subject for a in mine}) == subjects
    assert len(clips) > 442  # others, fear, sadness, Other and the three excluded CASME II clips
    assert {"EP12_01f", "EP09_05f", "EP02_07"} <= {c.clip for c in clips}


def test_same_seed_same_bytes_other_seed_other_frames(small, tmp_path):
    again = write_synthetic_composite(tmp_path / "again", seed=0, workers=1, progress=False, **SMALL)
    for first, second in zip(small["clips"], again["clips"], strict=True):
        for number in (first["onset"], first["apex"], first["offset"]):
            name = LAYOUTS[first["dataset"]].frame_name(first["subject"], number)
            assert (Path(first["folder"]) / name).read_bytes() == (Path(second["folder"]) / name).read_bytes()
        np.testing.assert_array_equal(_truth(first)["flow"], _truth(second)["flow"])
    other = write_synthetic_composite(
        tmp_path / "other", seed=1, subjects={"smic": 1}, clips_per_subject=1, workers=1, progress=False
    )
    record = other["clips"][0]
    reference = next(r for r in small["clips"] if r["dataset"] == "smic")
    assert not np.array_equal(_frame(record, record["onset"]), _frame(reference, reference["onset"]))


def _motion_region(truth, share):
    """Pixels where the expression moves by more than ``share`` of its peak, away from the borders."""
    expression = np.linalg.norm(truth["expression"], axis=-1)
    region = expression > share * expression.max()
    region[:8], region[-8:], region[:, :8], region[:, -8:] = False, False, False, False
    return region


def _mismatch(onset, apex, flow, where):
    """Mean |apex(x + u, y + v) - onset(x, y)| over ``where``."""
    height, width = flow.shape[:2]
    x, y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    moved = cv2.remap(apex, x + flow[..., 0], y + flow[..., 1], cv2.INTER_CUBIC)
    return np.abs(moved - onset)[where].mean()


def test_ground_truth_flow_moves_onset_pixels_onto_the_apex(small):
    """apex(x + u, y + v) ~ onset(x, y): the written frames follow the saved flow's convention."""
    ratios = []
    for record in small["clips"]:
        truth = _truth(record)
        onset, apex = (_frame(record, n).astype(np.float32) for n in (record["onset"], record["apex"]))
        gray = onset if onset.ndim == 2 else onset.mean(axis=-1)
        gradient = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
        region = _motion_region(truth, 0.3)
        textured = region & (gradient > np.median(gradient[region]))  # where a 1 px motion shows
        flow = truth["flow"]
        truth_error, zero_error, reversed_error = (
            _mismatch(onset, apex, f, textured) for f in (flow, np.zeros_like(flow), -flow)
        )
        assert truth_error < zero_error < reversed_error, record["clip"]
        ratios.append(truth_error / zero_error)
    assert max(ratios) < 0.7 and np.mean(ratios) < 0.4


def test_tvl1_recovers_the_saved_flow_and_the_motion_is_about_one_pixel(small):
    ratios = []
    for record in small["clips"]:
        truth = _truth(record)
        # TV-L1 on the face and a margin around it (the motion is inside), for speed.
        left, right = eye_centres(truth["landmarks"])
        margin = 0.6 * np.linalg.norm(right - left)
        (x0, y0), (x1, y1) = truth["landmarks"].min(axis=0) - margin, truth["landmarks"].max(axis=0) + margin
        face = (slice(max(int(y0), 0), int(y1)), slice(max(int(x0), 0), int(x1)))
        onset, apex = (_frame(record, n)[face] for n in (record["onset"], record["apex"]))
        estimate = optical_flow(onset, apex, "tvl1")
        flow, region = truth["flow"][face], _motion_region(truth, 0.5)[face]
        error = np.linalg.norm(estimate - flow, axis=-1)[region].mean()
        ratios.append(error / np.linalg.norm(flow, axis=-1)[region].mean())
        peak = np.linalg.norm(truth["expression"], axis=-1).max()
        assert 0.5 < peak < 2.0 and peak == pytest.approx(record["amplitude"], abs=2e-3)
    # End-point error inside the motion region relative to the motion there (zero flow scores 1).
    assert max(ratios) < 0.9 and np.mean(ratios) < 0.55


def test_every_identity_is_detected_where_its_landmarks_were_saved(small):
    first_clips = {(r["dataset"], r["subject"]): r for r in reversed(small["clips"])}
    for record in first_clips.values():
        saved = _truth(record)["landmarks"]
        found = detect_landmarks(_frame(record, record["onset"]), name=record["folder"])
        left, right = eye_centres(saved)
        assert np.linalg.norm(found - saved, axis=-1).mean() < 0.1 * np.linalg.norm(right - left)


def test_an_undetectable_identity_is_redrawn_then_reported():
    with pytest.raises(RuntimeError, match="no face was detected"):
        make_identity(load_face_photos()[0], (64, 48), (8.0, 9.0), True, np.random.default_rng(0), name="tiny")


def _box_energy(field, landmarks, points, margin):
    (lx, ly), (hx, hy) = landmarks[points].min(axis=0) - margin, landmarks[points].max(axis=0) + margin
    box = field[int(ly) : int(hy) + 1, int(lx) : int(hx) + 1]
    return np.linalg.norm(box, axis=-1).mean(), box


def test_class_motions_differ_by_region(small):
    seen = set()
    for record in small["clips"]:
        truth = _truth(record)
        landmarks, expression = truth["landmarks"], truth["expression"]
        left, right = eye_centres(landmarks)
        margin = 0.25 * np.linalg.norm(right - left)
        brows, brow_box = _box_energy(expression, landmarks, list(range(17, 27)), margin)
        mouth, _ = _box_energy(expression, landmarks, list(range(48, 68)), margin)
        if record["megc2019"] == "surprise":
            assert brows > 3 * mouth and brow_box[..., 1].mean() < 0, record["clip"]  # brows go up
        elif record["megc2019"] == "positive":
            assert mouth > 3 * brows, record["clip"]
            corner_left = expression[int(landmarks[48, 1]), int(landmarks[48, 0])]
            corner_right = expression[int(landmarks[54, 1]), int(landmarks[54, 0])]
            assert corner_left[0] < 0 < corner_right[0] and corner_left[1] < 0 and corner_right[1] < 0
        seen.add(record["megc2019"])
    assert {"surprise", "positive"} <= seen


def test_backward_map_inverts_the_forward_motion():
    size = (320, 240)
    landmarks = load_face_photos()[0].landmarks  # the astronaut's face lies inside 320 x 240
    expression = expression_field(landmarks, ("1", "2", "12"), 1.5, size, np.random.default_rng(1))
    head = HeadDrift.draw(landmarks.mean(axis=0), np.random.default_rng(2)).affine(1.0)
    flow = forward_flow(expression, head)
    map_x, map_y = backward_map(expression, 1.0, head)
    x, y = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
    # The onset pixel the apex pixel (x + u, y + v) comes from is (x, y) again.
    back_x = cv2.remap(map_x, x + flow[..., 0], y + flow[..., 1], cv2.INTER_LINEAR)
    back_y = cv2.remap(map_y, x + flow[..., 0], y + flow[..., 1], cv2.INTER_LINEAR)
    inner = (slice(4, -4), slice(4, -4))
    error = np.hypot(back_x - x, back_y - y)[inner]
    assert error.max() < 0.02 and error.mean() < 0.002  # of a 1.5 px motion
    assert np.linalg.norm(expression, axis=-1).max() == pytest.approx(1.5, rel=1e-5)


def test_intensity_rises_to_the_apex_and_returns():
    a = intensity(np.arange(10, 31), onset=10, apex=17, offset=30)
    assert a[0] == a[-1] == 0 and a[7] == 1 and a.argmax() == 7
    assert (np.diff(a[:8]) > 0).all() and (np.diff(a[7:]) < 0).all()


def test_bad_arguments_and_used_folders_are_refused(small, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        write_synthetic_composite(tmp_path, subjects={"casme3": 1}, progress=False)
    with pytest.raises(ValueError, match="subjects"):
        write_synthetic_composite(tmp_path, subjects={"smic": 17}, progress=False)
    with pytest.raises(FileExistsError, match="CASME2_RAW_selected"):
        write_synthetic_composite(small["out_dir"], subjects=1, clips_per_subject=1, progress=False)
    with pytest.raises(ValueError, match="fps for smic must be a positive int"):
        write_synthetic_composite(tmp_path / "fps", subjects=1, fps={"smic": 0}, progress=False)
    assert not (tmp_path / "fps").exists()  # arguments are checked before anything is written


def test_a_lower_frame_rate_writes_fewer_frames_of_the_same_clip_length(tmp_path):
    summary = write_synthetic_composite(
        tmp_path, subjects={"smic": 1}, clips_per_subject=2, fps=20, frame_size=(80, 64), workers=1, progress=False
    )
    assert summary["datasets"]["smic"]["fps"] == 20
    for record in summary["clips"]:
        # SMIC clips last 0.10-0.16 s: 3 or 4 frames at 20 fps, the apex strictly inside.
        assert 3 <= record["frames"] == record["offset"] - record["onset"] + 1 <= 4
        assert record["onset"] < record["apex"] < record["offset"] and record["fps"] == 20
        assert int(_truth(record)["fps"]) == 20
        assert _frame(record, record["apex"]).shape == (64, 80, 3)


@pytest.mark.slow
def test_full_default_composite(tmp_path):
    summary = write_synthetic_composite(tmp_path, progress=False)
    casme2, p1 = read_casme2_sheet(tmp_path / CASME2_SHEET)
    samm, p2 = read_samm_sheet(tmp_path / SAMM_SHEET)
    smic, p3 = scan_smic(tmp_path)
    assert p1 == p2 == p3 == []
    assert sorted(map(_read, casme2 + samm + smic)) == sorted(map(_written, summary["clips"]))
    members = megc2019_members(casme2 + samm + smic)
    assert len(members) == 442 and len({(a.dataset, a.subject) for a in members}) == 68
    assert summary["bytes"] < 300e6
    first_clips = {(r["dataset"], r["subject"]): r for r in reversed(summary["clips"])}
    assert len(first_clips) == 72
    for record in first_clips.values():
        detect_landmarks(_frame(record, record["onset"]), name=record["folder"])
