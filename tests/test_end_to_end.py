"""Synthetic composite -> megc2019/flow60 build -> LOSO training of the shallow RCN (issue 3's end-to-end check).

The default suite runs a small composite (4 subjects per dataset, 12 clips
each, 12 folds). On sets this small UF1 moved with the seed (0.68 to 0.77
over seeds 0-2 while apexes were spotted on raw frames; 0.90 for seed 1 since
they are spotted on the aligned faces), so its bar is 0.65, well above the
0.34 of the same clips with the expression motion removed. The issue's bar,
UF1 >= 0.7, is asserted on the full default composite (68 folds; 0.90
measured), which with the control runs under `pytest -m slow`.

The main job's config also trains a final model on every subject; `mer-jax
predict`'s library call then classifies the clips of another composite (a
different seed: other identities, motions and head drift), read from their
frame folders as a user would give them (the apex spotted).
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from mer_jax.data.clips import build as build_lib
from mer_jax.config import sibling_config
from mer_jax.predict import Predictor
from mer_jax.data.synth import write_synthetic_composite
from mer_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
SMALL = {"seed": 1, "subjects": 4, "clips_per_subject": 12}


def synth_build_train(root: Path, expression_scale: float = 1.0, small: bool = True) -> dict:
    options = SMALL if small else {}
    write_synthetic_composite(root / "raw", progress=False, expression_scale=expression_scale, **options)
    build_lib.build("megc2019", builder_config="flow60", manual_dir=str(root / "raw"), data_dir=str(root / "tfds"))
    config = sibling_config(str(REPO / "configs" / "rcn_synth_megc2019.py"), "rcn_synth_megc2019")
    config.data.data_dir = str(root / "tfds")
    if small:  # a quarter of the default composite's clips: the quickstart's schedule (half as large batches)
        config.train.epochs, config.train.batch_size = 40, 32
    return train_and_evaluate(config, str(root / "run"), progress=False)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    return root, synth_build_train(root)


def test_small_synthetic_composite_is_learned(small_run):
    _, result = small_run
    assert result["num_folds"] == 12  # 4 subjects in each of the three datasets
    assert result["uf1"] >= 0.65, result["uf1"]  # measured 0.90 (0.73-0.77 with apexes spotted on raw frames)


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
    result = synth_build_train(tmp_path, small=False)
    assert result["num_folds"] == 68
    assert result["uf1"] >= 0.7, result["uf1"]  # measured 0.90 (0.74-0.76 with apexes spotted on raw frames)


def test_predict_on_a_clip_without_a_face_names_the_frame(small_run, tmp_path):
    root, _ = small_run
    for number in range(3):
        cv2.imwrite(str(tmp_path / f"img{number}.jpg"), np.full((120, 160, 3), 128, np.uint8))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "img0.jpg"))):
        Predictor(root / "run").predict(tmp_path, apex=2)
