"""Synthetic macro-expression images in KDEF's (or Radboud's) file layout, for TLCNN's first transfer step.

The same packaged face photographs and identities as the synthetic composite
(:mod:`mer_jax.data.synth.photos`, :mod:`mer_jax.data.synth.identities`), posed with the
composite's action-unit motions (:mod:`mer_jax.data.synth.motion`) at full
intensity: every AU that any of the composite's combinations for the emotion
uses (fear: inner and outer brow raise, brow lower, lip stretch; happiness:
cheek raise and lip-corner pull; ...; contempt: the one-sided dimpler), with a
peak displacement of :data:`FULL_AMPLITUDE` inter-ocular distances, about
six times the micro-expressions' 1 px, where a neutral face stays still.

- People: one identity per photograph drawn (astronaut and grace_hopper
  female, the carphone frames male), numbered per gender as KDEF does
  (F01, F02, M01, ...).
- Sessions (KDEF's A and B): the same neutral face, each session with its own
  draw of the AUs' small jitter (anchors, widths, directions, weights) and
  its own sensor noise, as a second photo session of the same person
  would differ.
- Angles: the straight view is the identity itself; half profiles (KDEF HL /
  HR, Radboud cameras 045 / 135) are *approximated* by turning the image as
  a flat plane by :data:`HALF_PROFILE` degrees about a vertical axis through the
  face (a perspective warp): no occlusion, no depth, so no full profiles
  (KDEF FL / FR, Radboud 000 / 180) are written.

Every draw comes from a stream keyed by (seed, identity, session, emotion), so
the output does not depend on the order of writing; the same call writes the
same bytes. Entry point: :func:`write_synthetic_expressions`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from mer_jax.data.images import labels
from mer_jax.data.images.layouts import IMAGE_LAYOUTS
from mer_jax.data.synth.identities import Identity, make_identity
from mer_jax.data.synth.motion import EMOTION_ACTION_UNITS, backward_map, expression_field, face_frame
from mer_jax.data.synth.photos import load_face_photos

FULL_AMPLITUDE = 0.12  # peak displacement of a posed expression, inter-ocular distances
HALF_PROFILE = 30.0  # degrees a half profile turns the face plane (KDEF: 45; flatter turns lose the face)
SIZE = (281, 381)  # (width, height): half of KDEF's 562 x 762
INTEROCULAR = (0.17, 0.2)  # eye-centre distance, fractions of the width
NOISE = 1.5  # sensor noise std, grey levels
JPEG_QUALITY = 90

# The composite's emotion names (:data:`mer_jax.data.synth.motion.EMOTION_ACTION_UNITS`) of each data set's codes.
_MOTIONS = {
    "kdef": {"AF": "fear", "AN": "anger", "DI": "disgust", "HA": "happiness", "NE": None, "SA": "sadness",
             "SU": "surprise"},
    "rafd": {"angry": "anger", "contemptuous": "contempt", "disgusted": "disgust", "fearful": "fear",
             "happy": "happiness", "neutral": None, "sad": "sadness", "surprised": "surprise"},
}
# Yaw of each angle code, degrees (+: the face's image-left side recedes).
YAW = {
    "kdef": {"S": 0.0, "HL": HALF_PROFILE, "HR": -HALF_PROFILE},
    "rafd": {"090": 0.0, "045": HALF_PROFILE, "135": -HALF_PROFILE},
}
DEFAULT_ANGLES = {"kdef": ("S", "HL", "HR"), "rafd": ("090", "045", "135")}
SESSIONS = {"kdef": tuple(labels.KDEF_SESSIONS), "rafd": labels.RAFD_GAZES}  # Radboud: gazes
DEFAULT_SESSIONS = {"kdef": ("A", "B"), "rafd": ("frontal",)}  # gazes are not drawn: only frontal by default


def full_action_units(emotion: str | None) -> tuple[str, ...]:
    """The AU codes of a posed ``emotion`` (a composite emotion name; None: neutral, no AU).

    Every AU of the emotion's combinations, in order of first use; contempt
    keeps its first (one-sided) combination, since both sides at once would be
    a symmetric dimpler.
    """
    if emotion is None:
        return ()
    combinations = EMOTION_ACTION_UNITS[emotion]
    if emotion == "contempt":
        return combinations[0]
    return tuple(dict.fromkeys(code for combination in combinations for code in combination))


def turn(image: np.ndarray, centre: np.ndarray, width: float, degrees: float) -> np.ndarray:
    """``image`` turned as a flat plane by ``degrees`` about the vertical axis through ``centre``.

    A pinhole camera at 4 ``width`` (a face-sized span) from the plane: a point X to the side of the axis
    goes to X cos(a) f / (f + X sin(a)); borders repeat.
    """
    if degrees == 0.0:
        return image
    angle, focal = np.deg2rad(degrees), 4.0 * width
    cx, cy = centre
    source = np.array([[cx - width, cy - width], [cx + width, cy - width], [cx + width, cy + width],
                       [cx - width, cy + width]], dtype=np.float32)
    dx, dy = source[:, 0] - cx, source[:, 1] - cy
    depth = focal / (focal + dx * np.sin(angle))
    target = np.stack([cx + dx * np.cos(angle) * depth, cy + dy * depth], axis=1).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    height, full_width = image.shape[:2]
    return cv2.warpPerspective(image, matrix, (full_width, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)


def render_expression(
    identity: Identity, codes: tuple[str, ...], yaw: float, expression_rng: np.random.Generator,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """One posed picture, uint8 RGB: the AUs ``codes`` at full amplitude (their jitter drawn from
    ``expression_rng``), turned by ``yaw`` degrees (:func:`turn`), plus sensor noise from ``noise_rng``."""
    height, width = identity.neutral.shape[:2]
    _, _, distance = face_frame(identity.landmarks)
    image = identity.neutral
    if codes:
        field = expression_field(identity.landmarks, codes, FULL_AMPLITUDE * distance, (width, height), expression_rng)
        map_x, map_y = backward_map(field, 1.0, np.eye(2, 3))
        image = cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    image = turn(image, identity.landmarks.mean(axis=0), 1.3 * distance, yaw)
    image = image + NOISE * noise_rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def synthetic_identity(k: int, seed: int = 0, size: tuple[int, int] = SIZE, name: str = "") -> Identity:
    """Person ``k``'s neutral face: photograph k (in turn), drawn from the stream (seed, 0, k)."""
    photos = load_face_photos()
    interocular = (INTEROCULAR[0] * size[0], INTEROCULAR[1] * size[0])
    return make_identity(photos[k % len(photos)], size, interocular, True, np.random.default_rng([seed, 0, k]),
                         name=name or f"synthetic person {k}")


def _file_name(dataset: str, person: str, gender: str, session: str, emotion: str, angle: str) -> str:
    if dataset == "kdef":
        return f"{session}{person}/{session}{person}{emotion}{angle}.JPG"
    return f"Rafd{angle}_{person}_Caucasian_{labels.KDEF_GENDERS[gender]}_{emotion}_{session}.jpg"


def write_synthetic_expressions(
    out_dir: str | os.PathLike,
    *,
    dataset: str = "kdef",
    identities: int = 5,
    sessions: Sequence[str] | None = None,
    angles: Sequence[str] | None = None,
    emotions: Sequence[str] | None = None,
    seed: int = 0,
    size: tuple[int, int] = SIZE,
) -> dict:
    """Write posed pictures into ``out_dir/KDEF/`` (or ``out_dir/RaFD/``) in the data set's real layout.

    Args:
      out_dir: the folder to use as ``--manual_dir`` of ``mer-jax build kdef`` (``rafd``).
      dataset: 'kdef' or 'rafd' (whose file names it writes).
      identities: people, one per face photograph in turn (photographs repeat with new draws after the fifth).
      sessions: KDEF's 'A', 'B' (default both); Radboud's gazes (default 'frontal', the only one drawable).
      angles: KDEF 'S', 'HL', 'HR' (default all three); Radboud '090', '045', '135'.
      emotions: the data set's codes (default all: KDEF's 7, Radboud's 8).
      seed: the random seed.
      size: (width, height) of the pictures.

    Returns:
      {"images": count, "files": paths under out_dir, "subjects": the people ('F01', 'M01', ...),
      "bytes": bytes written, "seconds": time taken, "folder": the data set's top folder}.
    """
    start = time.perf_counter()
    sessions = tuple(sessions or DEFAULT_SESSIONS[dataset])
    angles = tuple(angles or DEFAULT_ANGLES[dataset])
    emotions = tuple(emotions or _MOTIONS[dataset])
    unknown = sorted(set(angles) - set(YAW[dataset]))
    if unknown:
        raise ValueError(f"{dataset}: cannot draw angles {unknown}; drawable: {', '.join(YAW[dataset])}")
    unknown = sorted(set(sessions) - set(SESSIONS[dataset]))
    if unknown:
        raise ValueError(f"{dataset}: unknown sessions {unknown}; codes: {', '.join(SESSIONS[dataset])}")
    unknown = sorted(set(emotions) - set(_MOTIONS[dataset]))
    if unknown:
        raise ValueError(f"{dataset}: unknown emotions {unknown}; codes: {', '.join(_MOTIONS[dataset])}")
    root = Path(out_dir)
    folder = root / IMAGE_LAYOUTS[dataset].folder
    photos = load_face_photos()
    keys = {name: {code: i for i, code in enumerate(table)} for name, table in
            (("session", SESSIONS[dataset]), ("emotion", _MOTIONS[dataset]), ("angle", YAW[dataset]))}
    counts = {"F": 0, "M": 0}
    files, subjects, written = [], [], 0
    for k in range(identities):
        photo = photos[k % len(photos)]
        gender = "M" if photo.name.startswith("carphone") else "F"
        counts[gender] += 1
        person = f"{gender}{counts[gender]:02d}" if dataset == "kdef" else f"{k + 1:02d}"
        subjects.append(person)
        identity = synthetic_identity(k, seed, size, name=f"synthetic {dataset} {person}")
        for session in sessions:
            s = keys["session"][session]
            for emotion in emotions:
                e = keys["emotion"][emotion]
                codes = full_action_units(_MOTIONS[dataset][emotion])
                for angle in angles:
                    # The expression's draws are shared by the angles of one session; the noise is not.
                    picture = render_expression(
                        identity, codes, YAW[dataset][angle], np.random.default_rng([seed, 1, k, s, e]),
                        np.random.default_rng([seed, 2, k, s, e, keys["angle"][angle]]),
                    )
                    path = folder / _file_name(dataset, person, gender, session, emotion, angle)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    ok, data = cv2.imencode(".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                    if not ok:
                        raise OSError(f"could not encode {path}")
                    path.write_bytes(data.tobytes())
                    written += len(data)
                    files.append(path.relative_to(root).as_posix())
    return {"images": len(files), "files": files, "subjects": subjects, "bytes": written,
            "seconds": time.perf_counter() - start, "folder": str(folder)}


# What the builders' dummy_data/ hold (data_builders/kdef, data_builders/rafd): two people, two emotions, the
# straight view and one half profile, small pictures; plus one picture without a face and one misnamed file.
DUMMY = {
    "kdef": {"sessions": ("A", "B"), "emotions": ("AF", "HA"), "angles": ("S", "HL"),
             "no_face": "KDEF/AM01/AM01NES.JPG", "misnamed": "KDEF/AF01/AF01XXS.JPG"},
    "rafd": {"sessions": ("frontal",), "emotions": ("fearful", "contemptuous"), "angles": ("090", "045"),
             "no_face": "RaFD/Rafd090_03_Caucasian_male_neutral_frontal.jpg",
             "misnamed": "RaFD/Rafd090_01_Caucasian_female_joyful_frontal.jpg"},
}
DUMMY_SIZE = (192, 256)


def write_dummy_data(out_dir: str | os.PathLike, dataset: str) -> dict:
    """Write a builder's ``dummy_data/`` (:data:`DUMMY`): ``python -c "from mer_jax.data.synth.expressions import
    write_dummy_data as w; w('data_builders/kdef/dummy_data', 'kdef')"`` (likewise rafd)."""
    spec = DUMMY[dataset]
    summary = write_synthetic_expressions(
        out_dir, dataset=dataset, identities=2, sessions=spec["sessions"], angles=spec["angles"],
        emotions=spec["emotions"], size=DUMMY_SIZE,
    )
    root = Path(out_dir)
    blank = np.full((DUMMY_SIZE[1], DUMMY_SIZE[0], 3), 128, np.uint8)  # a grey picture: no face
    (root / spec["no_face"]).parent.mkdir(parents=True, exist_ok=True)
    (root / spec["no_face"]).write_bytes(cv2.imencode(".jpg", blank)[1].tobytes())
    (root / spec["misnamed"]).write_bytes((root / summary["files"][0]).read_bytes())
    return summary
