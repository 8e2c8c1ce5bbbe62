"""The final model (a fold of every subject) and `mer-jax predict`'s reading of clips and its errors.

Predictions of a model trained by the main job on the clips of another
synthetic composite are checked in tests/test_end_to_end.py.
"""

import json

import cv2
import numpy as np
import pytest

from mer_jax.data import builds
from mer_jax.core import final_model, protocols
from mer_jax.config import sibling_config
from mer_jax.predict import Predictor, read_frames
from mer_jax.core.loop import FoldRun, train_folds
from mer_jax.train import train_and_evaluate

CONFIGS = "configs/quickstart.py"


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A short quickstart run with a final model, on the built-in synthetic maps."""
    config = sibling_config(CONFIGS, "quickstart")
    config.data.toy_flow.update(subjects_per_dataset=(2, 2, 2), clips_per_subject=8, size=24)
    config.data.input_shape = (24, 24, 3)
    config.model.pool_size = 3
    config.train.update(epochs=2, batch_size=8, final_model=True)
    workdir = tmp_path_factory.mktemp("run")
    return config, workdir, train_and_evaluate(config, workdir, progress=False)


def test_the_final_fold_is_saved_and_left_out_of_the_report(synthetic_run):
    config, workdir, report = synthetic_run
    assert report["num_folds"] == 6  # the 6 held-out subjects, not the final fold
    dataset = builds.load(config.data)
    held_out = sorted(record["sample_id"] for record in report["predictions"])
    assert held_out == sorted(dataset.sample_id.tolist())  # every clip once, by the fold of its own subject
    assert all(report["fold_names"][r["fold"]] == r["subject"] for r in report["predictions"])
    assert final_model.FOLD_NAME not in json.dumps(report)
    loaded = final_model.load(workdir)
    assert loaded.class_names == ("negative", "positive", "surprise")
    assert loaded.input_shape == (24, 24, 3)
    assert loaded.variant is None  # synthetic maps are not built from clips
    x = np.random.default_rng(0).normal(size=(5, 24, 24, 3)).astype(np.float32)
    probabilities = loaded.probabilities(x)
    assert probabilities.shape == (5, 3) and np.allclose(probabilities.sum(1), 1, atol=1e-5)


def test_the_final_model_equals_the_fold_trained_on_everything(synthetic_run, tmp_path):
    config, workdir, _ = synthetic_run

    dataset = builds.load(config.data)
    everything = protocols.Folds(np.zeros((1, dataset.num_samples), bool), (final_model.FOLD_NAME,))
    alone = train_folds(config, dataset, everything, FoldRun(fold_ids=np.array([6]), progress=False))
    loaded = final_model.load(workdir)
    kernel = loaded.model.classifier.kernel[...]
    np.testing.assert_allclose(kernel, alone.state["params"]["classifier"]["kernel"][0], rtol=1e-4, atol=1e-5)


def test_predict_needs_a_model_trained_on_a_build(synthetic_run, tmp_path):
    _, workdir, _ = synthetic_run
    with pytest.raises(ValueError, match="trained on 'toy_flow', which is not built from clips"):
        Predictor(workdir)
    with pytest.raises(FileNotFoundError, match=r"no final model in .*train with --config.train.final_model=True"):
        Predictor(tmp_path)


def test_frames_are_read_in_frame_number_order(tmp_path):
    for number in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"img{number}.jpg"), np.full((8, 8, 3), number * 10, np.uint8))
    (tmp_path / "notes.txt").write_text("not a frame")
    frames, names = read_frames(tmp_path)
    assert [n.rsplit("/", 1)[-1] for n in names] == ["img1.jpg", "img2.jpg", "img10.jpg"]
    assert [int(round(f.mean())) for f in frames] == [10, 20, 100]


def test_a_video_is_read_frame_by_frame(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (32, 24))
    for level in (0, 80, 160, 240):
        writer.write(np.full((24, 32, 3), level, np.uint8))
    writer.release()
    frames, names = read_frames(path)
    assert len(frames) == 4 and frames[0].shape == (24, 32, 3)
    assert np.allclose([f.mean() for f in frames], [0, 80, 160, 240], atol=3)
    assert names[3] == f"{path} frame 3"


def test_bad_clips_are_one_clear_error_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing: no such folder of frames or video file"):
        read_frames(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"no frame images"):
        read_frames(tmp_path)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"broken.mp4: not a folder of frames nor a video"):
        read_frames(broken)
    (tmp_path / "img1.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match=r"img1.jpg: not a readable image"):
        read_frames(tmp_path)


def test_onset_and_apex_are_checked_before_any_work(tmp_path):
    for number in range(4):
        cv2.imwrite(str(tmp_path / f"img{number}.jpg"), np.zeros((8, 8, 3), np.uint8))
    predictor = Predictor.__new__(Predictor)  # the checks come before the model is used
    with pytest.raises(ValueError, match=r"the apex \(1\) must come after the onset \(2\) within its 4 frames"):
        predictor.predict(tmp_path, onset=2, apex=1)
    with pytest.raises(ValueError, match=r"onset 3 leaves fewer than 2 of its 4 frames"):
        predictor.predict(tmp_path, onset=3)
