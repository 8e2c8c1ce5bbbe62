"""Synthetic composite -> megc2019/flow60 build -> LOSO training of the shallow RCN (issue 3's end-to-end check).

The default suite runs the whole path on a tiny composite (2 subjects per
dataset, 6 clips each, 6 folds, a few epochs): the real writer, the real
builder, the main job's config trained on every fold and on every subject,
the report, and `mer-jax predict`'s library call on new clips. Its scores mean
nothing; what it checks is that every step runs and hands the next what it
needs, and that predict preprocesses a clip exactly as the build did (a clip's
probabilities from its frame folder equal the final model's on its built maps).

The learning checks run under `pytest -m slow`: a small composite (4 subjects
per dataset, 12 clips each, 12 folds). On sets this small UF1 moved with the
seed (0.68 to 0.77 over seeds 0-2 while apexes were spotted on raw frames;
0.90 for seed 1 since they are spotted on the aligned faces), so its bar is
0.65, well above the 0.34 of the same clips with the expression motion
removed. The issue's bar, UF1 >= 0.7, is asserted on the full default
composite (68 folds; 0.90 measured).

The main job's config also trains a final model on every subject; in the slow
suite `mer-jax predict`'s library call then classifies the clips of another
composite (a different seed: other identities, motions and head drift), read
from their frame folders as a user would give them (the apex spotted), at
least 0.7 of them correctly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from mer_jax import method
from mer_jax.data.clips import build as build_lib
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.config import sibling_config
from mer_jax.predict import Predictor
from mer_jax.data.synth import write_synthetic_composite
from mer_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
SMALL = {"seed": 1, "subjects": 4, "clips_per_subject": 12}
TINY = {"seed": 1, "subjects": 2, "clips_per_subject": 6}


def synth_build_train(root: Path, expression_scale: float = 1.0, size: str = "small") -> dict:
    options = {"small": SMALL, "tiny": TINY, "full": {}}[size]
    write_synthetic_composite(root / "raw", progress=False, expression_scale=expression_scale, **options)
    build_lib.build("megc2019", builder_config="flow60", manual_dir=str(root / "raw"), data_dir=str(root / "tfds"))
    config = main_job_config(root)
    if size == "small":  # a quarter of the default composite's clips: the quickstart's schedule (half as large batches)
        config.train.epochs, config.train.batch_size = 40, 32
    if size == "tiny":  # every step, not learning: 3 epochs, one strategy (no timing of loop against vmap)
        config.train.epochs, config.train.batch_size, config.train.strategy = 3, 16, "loop"
    return train_and_evaluate(config, str(root / "run"), progress=False)


def main_job_config(root: Path):
    config = sibling_config(str(REPO / "configs" / "rcn_synth_megc2019.py"), "rcn_synth_megc2019")
    config.data.data_dir = str(root / "tfds")
    return config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return root, synth_build_train(root, size="tiny")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    return root, synth_build_train(root)


def test_tiny_composite_is_built_trained_and_reported(tiny_run):
    root, result = tiny_run
    assert result["num_folds"] == 6  # 2 subjects in each of the three datasets
    report = json.loads((root / "run" / "report.json").read_text())
    built = method.load(main_job_config(root))
    assert report["num_samples"] == built.num_samples == len(report["predictions"]) >= 20
    assert sorted(p["sample_id"] for p in report["predictions"]) == sorted(built.sample_id)  # each clip held out once
    assert {p["dataset"] for p in report["predictions"]} == {"casme2", "samm", "smic"}
    assert 0 <= result["uf1"] <= 1 and 0 <= result["accuracy"] <= 1
    for name in ("results.md", "confusion_matrix.png", "fold_curves.png"):
        assert (root / "run" / name).stat().st_size > 0, name


def test_predict_reads_a_clip_as_the_build_did(tiny_run):
    """A built clip's frame folder, with its sheet's apex: predict's probabilities are the final model's on its built maps."""
    root, _ = tiny_run
    config = main_job_config(root)
    built = method.load(config)
    predictor = Predictor(root / "run")
    casme2 = LAYOUTS["casme2"]
    annotations, _ = casme2.read(root / "raw")
    compared = 0
    for row in annotations:
        sample = np.flatnonzero(built.sample_id == f"casme2/{row.subject}/{row.clip}")
        if len(sample) != 1 or compared == 2:
            continue
        folder = casme2.clip_dir(root / "raw", row.subject, row.clip, row.emotion)
        prediction = predictor.predict(folder, apex=row.apex - row.onset)  # the folder starts at the onset
        expected = predictor.final.probabilities(built.x[sample])[0]
        assert list(prediction.probabilities) == list(built.class_names)
        np.testing.assert_allclose(list(prediction.probabilities.values()), expected, atol=1e-5)
        compared += 1
    assert compared == 2


def test_final_model_classifies_clips_from_their_frame_folders(tiny_run):
    """One clip of each data set as a user gives it, the apex spotted (Xia et al., TMM 2019, eq. 5)."""
    root, _ = tiny_run
    predictor = Predictor(root / "run")
    for name in ("casme2", "samm", "smic"):
        layout = LAYOUTS[name]
        row = layout.read(root / "raw")[0][0]
        folder = layout.clip_dir(root / "raw", row.subject, row.clip, row.emotion)
        frames = len(list(folder.iterdir()))
        prediction = predictor.predict(folder)
        assert sorted(prediction.probabilities) == ["negative", "positive", "surprise"]
        assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
        assert abs(sum(prediction.probabilities.values()) - 1) < 1e-5, prediction
        assert prediction.apex_spotted and 0 < prediction.apex < frames, (prediction, frames)


@pytest.mark.slow
def test_small_synthetic_composite_is_learned(small_run):
    _, result = small_run
    assert result["num_folds"] == 12  # 4 subjects in each of the three datasets
    assert result["uf1"] >= 0.65, result["uf1"]  # measured 0.90 (0.73-0.77 with apexes spotted on raw frames)


@pytest.mark.slow
def test_final_model_predicts_the_clips_of_another_composite(small_run, tmp_path):
    root, _ = small_run
    composite = write_synthetic_composite(tmp_path / "new", progress=False, seed=7, subjects=1, clips_per_subject=6)
    clips = [clip for clip in composite["clips"] if clip["megc2019"]]
    predictor = Predictor(root / "run")
    predicted = [predictor.predict(clip["folder"]).label for clip in clips]  # the apex spotted, as by default
    accuracy = sum(p == clip["megc2019"] for p, clip in zip(predicted, clips)) / len(clips)
    assert len(clips) >= 12
    assert accuracy >= 0.7, (accuracy, predicted)  # measured 1.0; chance 1/3; 0.89 on the full composite


@pytest.mark.slow
def test_without_the_expression_motion_nothing_is_learned(tmp_path):
    result = synth_build_train(tmp_path, expression_scale=0.0)
    assert result["uf1"] < 0.5, result["uf1"]  # measured 0.30-0.34; chance is 0.33


@pytest.mark.slow
def test_full_composite_main_job_reaches_uf1_0_7(tmp_path):
    result = synth_build_train(tmp_path, size="full")
    assert result["num_folds"] == 68
    assert result["uf1"] >= 0.7, result["uf1"]  # measured 0.90 (0.74-0.76 with apexes spotted on raw frames)


def test_predict_on_a_clip_without_a_face_names_the_frame(tiny_run, tmp_path):
    root, _ = tiny_run
    for number in range(3):
        cv2.imwrite(str(tmp_path / f"img{number}.jpg"), np.full((120, 160, 3), 128, np.uint8))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "img0.jpg"))):
        Predictor(root / "run").predict(tmp_path, apex=2)
