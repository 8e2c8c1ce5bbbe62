"""Expression images for TLCNN's first transfer step (mer_jax/data/images/): eq. 11 labels, KDEF and Radboud file
names, the face crop, the kdef / rafd builds of their dummy_data/ (faults reported, not dropped) and the loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import data_builders
from mer_jax import cli
from mer_jax.data.clips import build as build_lib
from mer_jax.data.images import EQ11_CLASSES, LABEL_MAP, crop, labels, load_expression_images
from mer_jax.data.images.layouts import IMAGE_LAYOUTS, ImageNameError, parse_kdef, parse_rafd

DUMMY = Path(data_builders.__file__).parent


def test_every_code_maps_onto_eq11_as_printed():
    assert EQ11_CLASSES == ("Happy", "Angry", "Sad", "Contempt", "Disgust", "Neutral", "Fear", "Surprise", "Afraid")
    assert {code for name, code in LABEL_MAP if name == "kdef"} == set(labels.KDEF_EMOTIONS)
    assert {code for name, code in LABEL_MAP if name == "rafd"} == set(labels.RAFD_EMOTIONS)
    assert set(LABEL_MAP.values()) == set(EQ11_CLASSES)  # every class has a source
    assert labels.eq11_class("kdef", "AF") == "Afraid" and labels.eq11_class("rafd", "fearful") == "Fear"
    assert labels.eq11_class("rafd", "contemptuous") == "Contempt" and labels.eq11_class("kdef", "DI") == "Disgust"
    with pytest.raises(KeyError, match="shame"):
        labels.eq11_class("rafd", "shame")


def test_kdef_names_parse_into_subject_session_emotion_angle():
    image = parse_kdef("KDEF/BM23/BM23SAHR.JPG")
    assert (image.subject, image.detail, image.emotion, image.angle, image.label) == ("M23", "B", "SA", "HR", "Sad")
    assert image.sample_id == "kdef/M23/BM23SAHR"
    assert parse_kdef("KDEF/AF01/AF01AFS.JPG").subject == parse_kdef("KDEF/BF01/BF01AFS.JPG").subject == "F01"
    for bad in ("KDEF/AF01/AF01XXS.JPG", "KDEF/AF01/AF01AFX.JPG", "KDEF/CF01/CF01AFS.JPG", "KDEF/AF01/AF1AFS.JPG"):
        with pytest.raises(ImageNameError, match=bad.split("/")[-1]):
            parse_kdef(bad)
    with pytest.raises(ImageNameError, match="in folder 'AF02'"):
        parse_kdef("KDEF/AF02/AF01AFS.JPG")


def test_rafd_names_parse_into_camera_model_emotion_gaze():
    image = parse_rafd("RaFD/Rafd045_12_Moroccan_male_contemptuous_left.jpg")
    assert (image.angle, image.subject, image.emotion, image.detail, image.label) == (
        "045", "12", "contemptuous", "left", "Contempt",
    )
    assert image.sample_id == "rafd/12/Rafd045_12_Moroccan_male_contemptuous_left"
    for bad in ("Rafd090_01_Caucasian_female_joyful_frontal.jpg", "Rafd091_01_Caucasian_female_sad_frontal.jpg",
                "Rafd090_01_Caucasian_female_sad_up.jpg", "Rafd090_1_Caucasian_female_sad_frontal.jpg"):
        with pytest.raises(ImageNameError, match=bad):
            parse_rafd(bad)


def test_find_reports_misnamed_and_duplicate_files(tmp_path):
    shutil.copytree(DUMMY / "rafd" / "dummy_data" / "RaFD", tmp_path / "RaFD")
    (tmp_path / "RaFD" / "copy").mkdir()
    shutil.copy(next((tmp_path / "RaFD").glob("Rafd090_01*fearful*")), tmp_path / "RaFD" / "copy")
    (tmp_path / "RaFD" / ".DS_Store").write_bytes(b"")
    found, problems = IMAGE_LAYOUTS["rafd"].find(tmp_path)
    assert len(found) == 9  # 8 pictures + the faceless one (found here; the build skips it)
    assert len(problems) == 2
    assert any("joyful" in p and "skipped" in p for p in problems)
    assert any("the same picture as" in p for p in problems)
    with pytest.raises(FileNotFoundError, match="Rafd090_01_Caucasian_female_angry_frontal.jpg"):
        IMAGE_LAYOUTS["rafd"].find(tmp_path / "nothing")


def test_the_crop_holds_every_point_at_the_papers_shape():
    points = np.array([[40.0, 30.0], [80.0, 30.0], [60.0, 110.0]])  # taller than wide
    x0, y0, x1, y1 = crop.point_box(points)
    assert x0 <= 40 and x1 >= 80 and y0 <= 30 and y1 >= 110
    assert (x1 - x0) / (y1 - y0) == pytest.approx(320 / 240, rel=0.02)
    assert y1 - y0 <= 82  # no wider than needed
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, :50] = 200  # the box runs past the image: its border pixels repeat
    out = crop.face_crop(image, points)
    assert out.shape == (240, 320, 3) and out.dtype == np.uint8
    assert out[:, 0].min() == 200 and out[:, -1].max() == 0


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built")
    for name in ("kdef", "rafd"):
        args = cli.make_parser().parse_args(
            ["build", name, "--manual_dir", str(DUMMY / name / "dummy_data"), "--data_dir", str(out)]
        )
        args.run(args)  # the default config: frontal
    return out


def test_builds_skip_faceless_and_misnamed_files_and_say_which(built):
    for name, faceless, misnamed, other in (
        ("kdef", "AM01NES.JPG", "AF01XXS.JPG", 8),
        ("rafd", "Rafd090_03_Caucasian_male_neutral_frontal.jpg", "joyful", 4),
    ):
        builder = build_lib.BUILDERS[name](config="frontal", data_dir=str(built))
        meta = builder.info.metadata
        assert meta["images_skipped_by_fault"] == {"no face": 1}
        assert len(meta["images_skipped"]) == 1 and faceless in meta["images_skipped"][0]
        assert len(meta["file_name_problems"]) == 1 and misnamed in meta["file_name_problems"][0]
        assert meta["files_at_other_angles"] == other
        summary = build_lib.format_summary(builder)
        assert faceless in summary and misnamed in summary


def test_load_expression_images_reads_both_builds_with_eq11_labels(built):
    data = load_expression_images(built)
    assert data.x.shape == (12, 240, 320, 3) and data.x.dtype == np.uint8
    assert data.class_names == EQ11_CLASSES
    by_id = dict(zip(data.sample_id, (data.class_names[i] for i in data.label)))
    assert by_id["kdef/F01/AF01AFS"] == "Afraid" and by_id["kdef/F02/BF02HAS"] == "Happy"
    assert by_id["rafd/01/Rafd090_01_Caucasian_female_fearful_frontal"] == "Fear"
    assert by_id["rafd/02/Rafd090_02_Caucasian_female_contemptuous_frontal"] == "Contempt"
    assert set(data.subject) == {"kdef/F01", "kdef/F02", "rafd/01", "rafd/02"}
    assert set(data.dataset) == {"kdef", "rafd"}
    assert set(data.extra["angle"]) == {"S", "090"}
    assert data.x.std(axis=(1, 2, 3)).min() > 10  # faces, not blank crops
    with pytest.raises(FileNotFoundError, match="mer-jax build rafd"):
        load_expression_images(built, names=("rafd/all_angles",))


def test_a_build_of_nothing_stops_naming_the_files(tmp_path):
    (tmp_path / "KDEF" / "AF01").mkdir(parents=True)
    shutil.copy(DUMMY / "kdef" / "dummy_data" / "KDEF" / "AF01" / "AF01XXS.JPG", tmp_path / "KDEF" / "AF01")
    with pytest.raises(ValueError, match="AF01XXS.JPG"):
        build_lib.build("kdef", manual_dir=str(tmp_path), data_dir=str(tmp_path / "out"))
