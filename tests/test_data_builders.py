"""TFDS builders on a small synthetic composite written in the real datasets' layouts.

Every builder and config goes through tfds.testing.DatasetBuilderTestCase;
the pytest tests below check what the builds hold, the error paths (missing
files, unreadable frames), reuse of a finished build, and reading a build
back without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mer_jax import data, data_builders
from mer_jax.data_builders import build as build_lib
from mer_jax.data_builders.clip_builder import CONFIGS, ClipConfig, ClipDatasetBuilder
from mer_jax.synth import write_synthetic_composite

ROOT = Path(tempfile.mkdtemp(prefix="mer_jax_builders_"))
RAW = ROOT / "synthetic_me_raw"  # where SyntheticMe looks for its raw clips under the (mocked) download dir
SYNTH = {"seed": 3, "subjects": 1, "clips_per_subject": 3}
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


def small(name: str, **changes) -> ClipConfig:
    """A shipped config with fewer alphas, smaller maps and fewer frames: the same code, in seconds."""
    config = next(c for c in CONFIGS if c.name == name)
    return dataclasses.replace(
        config, name=f"{name}_small", spec=dataclasses.replace(config.spec, **changes), top_p=config.top_p
    )


# Every config's code path (materialize.py) is the same for every dataset, so
# one builder (SMIC: no apex, so spotting too) runs all of them, in smaller
# form; every builder runs flow60 as shipped.
SMALL_CONFIGS = [
    "flow60",
    small("flow_strcn_g", size=(49, 60), alphas=(8.0, 12.0)),
    small("strcn_a", size=(24, 32), alphas=(8.0,), num_frames=6),
    small("frames", size=(61, 75), num_frames=8),
]


class _BuilderTest(tfds.testing.DatasetBuilderTestCase):
    MOCK_OUT_FORBIDDEN_OS_FUNCTIONS = False  # OpenCV and openpyxl read the files themselves
    SKIP_CHECKSUMS = True
    EXAMPLE_DIR = str(RAW)
    BUILDER_CONFIG_NAMES_TO_TEST = ["flow60"]

    @classmethod
    def setUpClass(cls):
        cls.SPLITS = {"train": clip_counts()[cls.DATASET_CLASS.name]}
        super().setUpClass()

    def _make_builder(self, config=None):
        # TFDS's checks read through tf.data, which array_record (the default) does not offer;
        # the pytest tests below read array_record.
        return self.dataset_class(data_dir=self.tmp_dir, config=config, file_format="tfrecord")


class Casme2Test(_BuilderTest):
    DATASET_CLASS = data_builders.Casme2


class SammTest(_BuilderTest):
    DATASET_CLASS = data_builders.Samm


class SmicTest(_BuilderTest):
    DATASET_CLASS = data_builders.Smic
    BUILDER_CONFIG_NAMES_TO_TEST = SMALL_CONFIGS


class Megc2019Test(_BuilderTest):
    DATASET_CLASS = data_builders.Megc2019


class SyntheticMeTest(_BuilderTest):
    DATASET_CLASS = data_builders.SyntheticMe
    EXAMPLE_DIR = str(ROOT)  # the mocked download dir; the raw clips are already in it


# Pytest collects unittest classes by name; the shared base is not a test.
del _BuilderTest


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """megc2019/flow60 built once from the fake composite."""
    fake_composite()
    out = tmp_path_factory.mktemp("built")
    build_lib.build("megc2019", config="flow60", manual_dir=str(RAW), data_dir=str(out))
    return out


def test_flow60_holds_the_clips_with_their_annotations(built):
    builder = tfds.builder_from_directory(str(data.built_dir("megc2019/flow60", built)))
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


def test_load_built_reads_without_tensorflow(built):
    code = (
        "import sys; from mer_jax import data; "
        f"d = data.load_built('megc2019/flow60', data_dir={str(built)!r}); "
        "print(d.num_samples, d.num_classes, 'tensorflow' in sys.modules)"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(clip_counts()["megc2019"]), "3", "False"]


def test_load_built_labels(built):
    megc = data.load_built("megc2019/flow60", data_dir=built)
    assert megc.class_names == ("negative", "positive", "surprise")
    assert all(s.split("/")[0] == d for s, d in zip(megc.subject, megc.dataset, strict=True))
    strcn = data.load_built("megc2019/flow60", data_dir=built, labels="strcn4")
    assert strcn.class_names == ("negative", "positive", "surprise", "other")
    # CASME II repression is negative in MEGC2019 and 'other' in STRCN's map.
    for sample, emotion_label in zip(strcn.sample_id, strcn.label, strict=True):
        clip = next(c for c in fake_composite()["clips"] if f"{c['dataset']}/{c['subject']}/{c['clip']}" == sample)
        if clip["emotion"].lower() == "repression":
            assert strcn.class_names[emotion_label] == "other"
    with pytest.raises(ValueError, match="labels must be one of"):
        data.load_built("megc2019/flow60", data_dir=built, labels="ekman")
    with pytest.raises(FileNotFoundError, match="mer-jax build casme2 --config strcn_a"):
        data.load_built("casme2/strcn_a", data_dir=built)


def test_second_build_reuses_the_first(built):
    files = sorted((data.built_dir("megc2019/flow60", built)).glob("*.array_record*"))
    stamps = [f.stat().st_mtime_ns for f in files]
    builder = build_lib.build("megc2019", config="flow60", manual_dir=str(RAW), data_dir=str(built))
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert "clips written" in build_lib.format_summary(builder)


def test_missing_and_unreadable_frames_skip_the_clip_and_are_reported(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    casme = [c for c in fake_composite()["clips"] if c["dataset"] == "casme2"]
    missing, broken = casme[0], casme[1]
    folder = raw / "CASME2_RAW_selected" / missing["subject"] / missing["clip"]
    (folder / f"img{missing['onset'] + 1}.jpg").unlink()
    folder = raw / "CASME2_RAW_selected" / broken["subject"] / broken["clip"]
    (folder / f"img{broken['onset']}.jpg").write_bytes(b"not a jpeg")
    builder = build_lib.build("casme2", config="flow60", manual_dir=str(raw), data_dir=str(tmp_path / "out"))
    meta = builder.info.metadata
    assert meta["clips_written"] == len(casme) - 2
    summary = build_lib.format_summary(builder)
    assert f"first missing: frame number {missing['onset'] + 1}" in summary
    assert f"img{broken['onset']}.jpg: not a readable image" in summary
    assert f"{len(casme) - 2} of {len(casme)} clips written" in summary


def test_missing_files_say_what_goes_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)SAMM_Micro_FACS_Codes_v2.xlsx.*SAMM/006/006_1_2/006_05562.jpg"):
        build_lib.build("samm", manual_dir=str(tmp_path), data_dir=str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="megc2019 needs --manual_dir"):
        build_lib.build("megc2019", manual_dir=None, data_dir=str(tmp_path / "out"))
    with pytest.raises(ValueError, match="unknown config 'flow90'"):
        build_lib.build("smic", config="flow90", manual_dir=str(RAW))


def test_every_builder_is_registered_with_tfds():
    for name, builder_class in data_builders.BUILDERS.items():
        assert issubclass(builder_class, ClipDatasetBuilder)
        assert name in tfds.list_builders()
        assert [c.name for c in builder_class.BUILDER_CONFIGS] == ["flow60", "flow_strcn_g", "strcn_a", "frames"]
