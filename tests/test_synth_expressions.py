"""Synthetic posed-expression images (mer_jax/data/synth/expressions.py), written in KDEF's layout and built by the
kdef builder: classes, subjects and counts of the build, and that the expressions are where they belong."""

from __future__ import annotations

import collections
from pathlib import Path

import cv2
import numpy as np
import pytest

from mer_jax.data.clips import build as build_lib
from mer_jax.data.images import load_expression_images
from mer_jax.data.images.layouts import parse_kdef
from mer_jax.data.synth import expressions

SIZE = expressions.DUMMY_SIZE
SET = {"identities": 3, "sessions": ("A", "B"), "emotions": ("NE", "HA", "SU"), "angles": ("S", "HL"), "size": SIZE}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic_kdef")
    return root, expressions.write_synthetic_expressions(root, **SET)


@pytest.fixture(scope="module")
def built(written, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built")
    build_lib.build("kdef", builder_config="all_angles", manual_dir=str(written[0]), data_dir=str(out))
    return out


def _read(root: Path, name: str) -> np.ndarray:
    """A written picture, grey, lightly blurred (sigma 1.5 px) so that its differences measure motion, not noise."""
    image = cv2.imread(str(root / "KDEF" / name[:4] / f"{name}.JPG")).astype(np.float32).mean(axis=-1)
    return cv2.GaussianBlur(image, (0, 0), 1.5)


def test_writes_kdef_names_for_every_person_session_emotion_and_angle(written):
    root, summary = written
    assert summary["subjects"] == ["F01", "F02", "M01"]  # astronaut, grace_hopper, carphone
    parsed = [parse_kdef(root / name) for name in summary["files"]]
    assert len(parsed) == 3 * 2 * 3 * 2
    assert collections.Counter((p.subject, p.detail, p.emotion, p.angle) for p in parsed) == {
        (person, session, emotion, angle): 1
        for person in ("F01", "F02", "M01") for session in "AB" for emotion in ("NE", "HA", "SU") for angle in ("S", "HL")
    }


def test_the_kdef_builder_builds_every_picture_with_its_class(built):
    data = load_expression_images(built, names=("kdef/all_angles",))
    assert data.x.shape == (36, 240, 320, 3) and data.x.dtype == np.uint8
    names = [data.class_names[i] for i in data.label]
    assert collections.Counter(names) == {"Neutral": 12, "Happy": 12, "Surprise": 12}
    assert collections.Counter(data.subject) == {"kdef/F01": 12, "kdef/F02": 12, "kdef/M01": 12}
    assert collections.Counter(data.extra["angle"]) == {"S": 18, "HL": 18}
    happy = data.sample_id[data.label == data.class_names.index("Happy")]
    assert all(sample.split("/")[-1][4:6] == "HA" for sample in happy)


def _box(landmarks: np.ndarray, points: list[int], margin: float) -> tuple[slice, slice]:
    lo, hi = landmarks[points].min(axis=0) - margin, landmarks[points].max(axis=0) + margin
    return slice(int(lo[1]), int(hi[1]) + 1), slice(int(lo[0]), int(hi[0]) + 1)


def test_emotions_move_their_own_face_regions_alike_in_both_sessions(written):
    root, _ = written
    landmarks = expressions.synthetic_identity(0, size=SIZE).landmarks  # F01, as written
    distance = float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))
    mouth = _box(landmarks, list(range(48, 68)), 0.15 * distance)
    brows = _box(landmarks, list(range(17, 27)), 0.15 * distance)

    def change(name: str, region) -> np.ndarray:
        """The picture minus the same session's neutral face, in ``region``."""
        return (_read(root, name) - _read(root, f"{name[:4]}NES"))[region]

    def size(name: str, region) -> float:
        return float(np.abs(change(name, region)).mean())

    def alike(a: str, b: str, region) -> float:
        return float(np.corrcoef(change(a, region).ravel(), change(b, region).ravel())[0, 1])

    # happiness (cheek raise, lip-corner pull) moves the mouth, not the brows; surprise (brow and lid raise)
    # the brows, not the mouth
    assert size("AF01HAS", mouth) > 3 * size("AF01HAS", brows)
    assert size("AF01SUS", brows) > 3 * size("AF01SUS", mouth)
    assert size("AF01HAS", mouth) > 2.0 and size("AF01SUS", brows) > 5.0  # grey levels: visible expressions
    # the same emotion of the same person in the other session (new AU jitter and noise) changes the face the
    # same way; another emotion does not
    assert alike("AF01HAS", "BF01HAS", mouth) > 0.8 and alike("AF01SUS", "BF01SUS", brows) > 0.8
    assert alike("AF01HAS", "AF01SUS", mouth) < 0.5 and alike("AF01SUS", "AF01HAS", brows) < 0.5
    # a neutral face is the same person in both sessions: noise only
    assert float(np.abs(_read(root, "AF01NES") - _read(root, "BF01NES")).mean()) < 1.0


def test_the_same_call_writes_the_same_pictures(written, tmp_path):
    root, summary = written
    again = expressions.write_synthetic_expressions(tmp_path, **{**SET, "identities": 1, "emotions": ("HA",)})
    assert again["files"]
    for name in again["files"]:
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes(), name


def test_half_profiles_turn_the_face():
    identity = expressions.synthetic_identity(0, size=SIZE)
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    straight = expressions.render_expression(identity, (), 0.0, rng(), rng()).astype(float)
    left = expressions.render_expression(identity, (), expressions.YAW["kdef"]["HL"], rng(), rng()).astype(float)
    right = expressions.render_expression(identity, (), expressions.YAW["kdef"]["HR"], rng(), rng()).astype(float)
    assert np.abs(left - straight).mean() > 5 and np.abs(right - straight).mean() > 5
    assert np.abs(left - np.flip(right, axis=1)).mean() > 5  # turned one way, then the other, not mirrored
    with pytest.raises(ValueError, match="cannot draw angles"):
        expressions.write_synthetic_expressions("/nonexistent", angles=("FL",))
