"""The TFDS builders across datasets, on a small synthetic composite written in the real datasets' layouts.

Each builder's own tfds.testing.DatasetBuilderTestCase runs beside it, on its
committed ``dummy_data/`` (``data_builders/<name>/<name>_dataset_builder_test.py``).
The tests here write a composite with :mod:`mer_jax.data.synth` and check what the
builds hold against what was written, reading a build back without
TensorFlow, reuse of a finished build, the error paths (missing files,
unreadable frames), the in-memory preprocessing a build applies, and that
every builder folder has what ``tfds new`` lays out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import data_builders
from mer_jax.data import builds
from mer_jax.methods import strcn
from mer_jax.methods.strcn import heat_mask
from mer_jax.data.annotations import ClipAnnotation
from mer_jax.data.clips import build as build_lib
from mer_jax.data.clips.builder import CONFIGS, ClipDatasetBuilder, config_named
from mer_jax.data.clips.errors import ClipError
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.clips.materialize import StoredVariant, materialize, materialize_frames, read_frame, spot_apex
from mer_jax.data.clips.testing import smaller_config
from mer_jax.predict import read_frames
from mer_jax.data.preprocess import apex as apex_lib
from mer_jax.data.preprocess import appearance, faces, optical_strain
from mer_jax.data.preprocess.flow import resize_flow
from mer_jax.data.synth import write_synthetic_composite

ROOT = Path(tempfile.mkdtemp(prefix="mer_jax_builders_"))
RAW = ROOT / "synthetic_me_raw"
SYNTH = {"seed": 3, "subjects": 1, "clips_per_subject": 3}
BUILDERS_DIR = Path(data_builders.__file__).parent
_SUMMARY: dict = {}


def fake_composite() -> dict:
    """The raw composite every test reads (written once per test session)."""
    if not _SUMMARY:
        _SUMMARY.update(write_synthetic_composite(RAW, progress=False, **SYNTH))
    return _SUMMARY


def clip_counts() -> dict[str, int]:
    clips = fake_composite()["clips"]
    counts = {name: sum(c["dataset"] == name for c in clips) for name in ("casme2", "samm", "smic")}
    counts["megc2019"] = counts["synthetic_me"] = sum(bool(c["megc2019"]) for c in clips)
    return counts


def _annotation(record: dict) -> ClipAnnotation:
    return ClipAnnotation(
        record["dataset"], record["subject"], record["clip"], record["onset"], None, record["offset"],
        record["emotion"], "", record["clip"],
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """megc2019/flow60 built once from the fake composite."""
    fake_composite()
    out = tmp_path_factory.mktemp("built")
    build_lib.build("megc2019", builder_config="flow60", manual_dir=str(RAW), data_dir=str(out))
    return out


def test_flow60_holds_the_clips_with_their_annotations(built):
    builder = tfds.builder_from_directory(str(builds.built_dir("megc2019/flow60", built)))
    source = builder.as_data_source(split="train")
    records = {source[i]["sample_id"].decode(): source[i] for i in range(len(source))}
    expected = {f"{c['dataset']}/{c['subject']}/{c['clip']}": c for c in fake_composite()["clips"] if c["megc2019"]}
    assert set(records) == set(expected)
    labels = builder.info.features["megc2019_label"]
    for sample_id, record in records.items():
        clip = expected[sample_id]
        assert labels.int2str(int(record["megc2019_label"])) == clip["megc2019"]
        assert record["onset"] == clip["onset"] and record["offset"] == clip["offset"]
        assert bool(record["apex_spotted"]) == (clip["dataset"] == "smic" or not clip["apex_marked"])
        assert record["x"].shape == (60, 60, 3) and np.isfinite(record["x"]).all()
        assert (record["x"][..., 2] >= 0).all()  # strain is a magnitude
    meta = builder.info.metadata
    assert meta["clips_written"] == len(expected) and meta["clips_skipped"] == []
    assert StoredVariant.from_dict(meta["variant"]) == config_named("flow60").variant


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_flow60_agrees_with_the_composites_ground_truth_flow(built):
    """The stored u, v against the expression flow the composite rendered, cut by the same eq. 1 box and resized.

    Alignment removes the head's drift, so the reference is the expression field alone. Only clips
    whose apex the sheet marks are compared (CASME II and SAMM here; SMIC's apex is spotted and may
    sit frames from the rendered one). Measured on this composite: correlation 0.57-0.88,
    0.15 at most with u and v swapped, end-point error 0.05-0.10 pixel of the 60 x 60 map.
    An onset/apex swap negates the correlation, a u/v swap drops it below 0.3.
    """
    builder = tfds.builder_from_directory(str(builds.built_dir("megc2019/flow60", built)))
    source = builder.as_data_source(split="train")
    records = {source[i]["sample_id"].decode(): source[i] for i in range(len(source))}
    compared = 0
    for clip in fake_composite()["clips"]:
        record = records.get(f"{clip['dataset']}/{clip['subject']}/{clip['clip']}")
        if record is None or bool(record["apex_spotted"]):
            continue
        truth = np.load(clip["ground_truth"])
        assert int(record["apex"]) == int(truth["apex"])
        height, width = truth["expression"].shape[:2]
        x0, y0, x1, y1 = faces.crop_box(truth["landmarks"])
        box = (slice(max(y0, 0), min(y1, height)), slice(max(x0, 0), min(x1, width)))
        expected = resize_flow(truth["expression"][box], (60, 60))
        stored = record["x"][..., :2]
        assert correlation(stored, expected) >= 0.5, clip["clip"]
        assert abs(correlation(stored, expected[..., ::-1])) < 0.3, clip["clip"]
        assert np.linalg.norm(stored - expected, axis=-1).mean() < 0.2, clip["clip"]
        # The third channel is the strain of the stored u, v (Xia et al., TIP 2020, sec. IV-A).
        np.testing.assert_allclose(record["x"][..., 2], optical_strain(stored), rtol=1e-5, atol=1e-6)
        compared += 1
    assert compared >= 4


def test_in_memory_frames_give_what_the_build_stored(built):
    """materialize_frames on a clip's decoded frames (all of them, as `predict` has) == the stored x."""
    builder = tfds.builder_from_directory(str(builds.built_dir("megc2019/flow60", built)))
    source = builder.as_data_source(split="train")
    variant = StoredVariant.from_dict(builder.info.metadata["variant"])
    records = {source[i]["sample_id"].decode(): source[i] for i in range(len(source))}
    for clip in fake_composite()["clips"][:: 4]:  # one of each dataset, at least
        record = records.get(f"{clip['dataset']}/{clip['subject']}/{clip['clip']}")
        if record is None:
            continue
        paths = LAYOUTS[clip["dataset"]].frame_paths(RAW, _annotation(clip))
        frames = np.stack([read_frame(p) for p in paths])
        x, _ = materialize_frames(frames, int(record["apex"]) - clip["onset"], variant)
        assert x.shape == variant.shape and x.dtype == variant.dtype
        np.testing.assert_allclose(x, record["x"], rtol=0, atol=1e-5)
    with pytest.raises(ClipError, match="apex position 9 outside"):
        materialize_frames(frames[:3], 9, variant)
    with pytest.raises(ClipError, match="expected uint8 RGB"):
        materialize_frames(frames.astype(np.float32), 1, variant)


def test_stored_variants_survive_a_json_round_trip():
    for config in CONFIGS:
        assert StoredVariant.from_dict(config.variant.to_dict()) == config.variant
    with pytest.raises(ValueError, match="unknown StoredVariant field"):
        StoredVariant.from_dict({"kind": "flow", "size": [60, 60], "crop": "eq1"})
    with pytest.raises(ValueError, match="unknown flow method"):
        StoredVariant("flow", (60, 60), method="lucas_kanade")


def test_load_built_reads_without_tensorflow(built):
    code = (
        "import sys; from mer_jax.data import builds; "
        f"d = builds.load_built('megc2019/flow60', data_dir={str(built)!r}); "
        "print(d.num_samples, d.num_classes, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(clip_counts()["megc2019"]), "3", "False"]


def test_load_built_labels(built):
    megc = builds.load_built("megc2019/flow60", data_dir=built)
    assert megc.class_names == ("negative", "positive", "surprise")
    assert all(s.split("/")[0] == d for s, d in zip(megc.subject, megc.dataset, strict=True))
    strcn = builds.load_built("megc2019/flow60", data_dir=built, labels="strcn4")
    assert strcn.class_names == ("negative", "positive", "surprise", "other")
    # CASME II repression is negative in MEGC2019 and 'other' in STRCN's map.
    for sample, emotion_label in zip(strcn.sample_id, strcn.label, strict=True):
        clip = next(c for c in fake_composite()["clips"] if f"{c['dataset']}/{c['subject']}/{c['clip']}" == sample)
        if clip["emotion"].lower() == "repression":
            assert strcn.class_names[emotion_label] == "other"
    with pytest.raises(ValueError, match="labels must be one of"):
        builds.load_built("megc2019/flow60", data_dir=built, labels="ekman")
    with pytest.raises(FileNotFoundError, match="mer-jax build casme2 --builder_config strcn_a"):
        builds.load_built("casme2/strcn_a", data_dir=built)


def test_second_build_reuses_the_first(built):
    files = sorted((builds.built_dir("megc2019/flow60", built)).glob("*.array_record*"))
    stamps = [f.stat().st_mtime_ns for f in files]
    builder = build_lib.build("megc2019", builder_config="flow60", manual_dir=str(RAW), data_dir=str(built))
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert "clips written" in build_lib.format_summary(builder)


def test_missing_and_unreadable_frames_skip_the_clip_and_are_reported(tmp_path):
    casme = [c for c in fake_composite()["clips"] if c["dataset"] == "casme2"]
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    missing, broken = casme[0], casme[1]
    folder = raw / "CASME2_RAW_selected" / missing["subject"] / missing["clip"]
    (folder / f"img{missing['onset'] + 1}.jpg").unlink()
    folder = raw / "CASME2_RAW_selected" / broken["subject"] / broken["clip"]
    (folder / f"img{broken['onset']}.jpg").write_bytes(b"not a jpeg")
    builder = build_lib.build("casme2", builder_config="flow60", manual_dir=str(raw), data_dir=str(tmp_path / "out"))
    meta = builder.info.metadata
    assert meta["clips_written"] == len(casme) - 2
    summary = build_lib.format_summary(builder)
    assert f"first missing: frame number {missing['onset'] + 1}" in summary
    assert f"img{broken['onset']}.jpg: not a readable image" in summary
    assert f"{len(casme) - 2} of {len(casme)} clips written" in summary
    unreadable = folder / f"img{broken['onset']}.jpg"
    with pytest.raises(ClipError, match=re.escape(f"{unreadable}: not a readable image")):
        materialize(LAYOUTS["casme2"].frame_paths(raw, _annotation(broken)), 1, config_named("flow60").variant)


def test_missing_files_say_what_goes_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)SAMM_Micro_FACS_Codes_v2.xlsx.*SAMM/006/006_1_2/006_05562.jpg"):
        build_lib.build("samm", manual_dir=str(tmp_path), data_dir=str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="megc2019 needs --manual_dir"):
        build_lib.build("megc2019", manual_dir=None, data_dir=str(tmp_path / "out"))
    with pytest.raises(ValueError, match="unknown builder config 'flow90'"):
        build_lib.build("smic", builder_config="flow90", manual_dir=str(RAW))


def test_every_builder_is_registered_with_tfds():
    for name, builder_class in data_builders.BUILDERS.items():
        assert issubclass(builder_class, ClipDatasetBuilder)
        assert name in tfds.list_builders()
        assert [c.name for c in builder_class.BUILDER_CONFIGS] == [
            "flow60", "flow_strcn_g", "strcn_a", "flow_strcn_g_single", "strcn_a_single", "frames", "regions",
            "tim32", "tim64",
        ]


@pytest.mark.parametrize("name", sorted(data_builders.BUILDERS))
def test_builder_folders_are_laid_out_as_tfds_new_does(name):
    folder = BUILDERS_DIR / name
    for file in ("__init__.py", f"{name}_dataset_builder.py", f"{name}_dataset_builder_test.py", "README.md",
                 "CITATIONS.bib", "checksums.tsv"):
        assert (folder / file).is_file(), folder / file
    dummy = [p for p in (folder / "dummy_data").rglob("*") if p.is_file()]
    assert dummy and sum(p.stat().st_size for p in dummy) < 300_000
    # `tfds build data_builders/<name>` imports <name>.<name>_dataset_builder with data_builders/ on the path.
    with tfds.core.utils.add_sys_path(BUILDERS_DIR):
        found = tfds.core.community.builder_cls_from_module(f"{name}.{name}_dataset_builder")
    assert found.name == name and found.code_path == folder / f"{name}_dataset_builder.py"
    builder_class = data_builders.BUILDERS[name]
    assert builder_class.get_metadata().citation == (folder / "CITATIONS.bib").read_text()
    assert tfds.core.download.checksums.load_url_infos(folder / "checksums.tsv") == {}


def test_apex_spotting_on_aligned_faces_finds_the_true_apex_despite_head_motion():
    aligned, raw = [], []
    for clip in fake_composite()["clips"]:
        frames, names = read_frames(clip["folder"])  # onset..offset
        true = clip["apex"] - clip["onset"]
        aligned.append(abs(spot_apex(frames, names) - true))
        raw.append(abs(apex_lib.spot_apex(np.stack([f.mean(-1) for f in frames])) - true))
    # The composite's heads drift through every clip: on raw frames eq. 5 lands late.
    assert np.mean(np.array(aligned) <= 2) >= 0.6, aligned  # 6 of these 9 (87% of 60 clips of another seed)
    assert np.mean(aligned) < np.mean(raw) / 2, (aligned, raw)


@pytest.mark.slow
def test_strcn_a_build_is_masked_when_read_by_every_clips_heat_or_kept_as_frames_per_fold(tmp_path):
    """A strcn_a build read under data.mask=paper gives each clip the matrix of the heat map of every clip
    (Xia et al., TMM 2019, eq. 4, at alpha 8); under per_fold, the frames at data.alpha and each clip's heat
    term. About 100 s on 2 busy cores (the build)."""
    fake_composite()
    config = smaller_config("strcn_a", size=(24, 32), alphas=(8.0, 12.0), num_frames=6)
    builder = data_builders.BUILDERS["megc2019"](config=config, data_dir=str(tmp_path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(RAW)))
    source = builder.as_data_source(split="train")
    stored = {source[i]["sample_id"].decode(): source[i]["x"] for i in range(len(source))}
    name = "megc2019/strcn_a_small"
    def read(**keys):
        return strcn.load({"name": name, "data_dir": str(tmp_path), "labels": "strcn4", "alpha": 12.0, **keys})

    paper, frames = read(), read(mask="per_fold")
    mask = appearance.top_p_mask(appearance.difference_heat_map(x[0] for x in stored.values()), 0.3)
    assert paper.input_shape == (int(0.3 * 24 * 32), 6, 3) and paper.extra == {}
    for index, sample in enumerate(paper.sample_id):
        expected = appearance.appearance_matrix(stored[sample][1].astype(np.float32) / 255, mask, num_frames=6)
        np.testing.assert_allclose(paper.x[index] / np.float32(255), expected, atol=1e-6)  # uint8: STRCN scales
        np.testing.assert_array_equal(frames.x[index], stored[sample][1])
        heat = appearance.difference_heat_map([stored[sample][0]])  # alpha 8, whatever data.alpha
        np.testing.assert_allclose(frames.extra[heat_mask.HEAT][index], heat)
    assert frames.input_shape == (6, 24, 32, 3)
    with pytest.raises(ValueError, match="unknown data.mask 'fold'"):
        read(mask="fold")


@pytest.mark.slow
def test_smic_alone_has_three_strcn_classes(tmp_path):
    """SMIC annotates positive, negative and surprise only (Xia et al., TMM 2019, sec. IV-B): no empty 'other'."""
    fake_composite()
    build_lib.build("smic", builder_config="flow60", manual_dir=str(RAW), data_dir=str(tmp_path))
    smic = builds.load_built("smic/flow60", data_dir=tmp_path, labels="strcn4")
    assert smic.class_names == ("negative", "positive", "surprise")
    emotions = {c["clip"]: c["emotion"].lower() for c in fake_composite()["clips"] if c["dataset"] == "smic"}
    assert [smic.class_names[label] for label in smic.label] == [emotions[s.split("/")[-1]] for s in smic.sample_id]
