"""The model registry: a model added as one file plus one config trains with `mer-jax train`, on data of any rank."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flax import nnx

from mer_jax import models
from mer_jax.config import base_config

REPO = Path(__file__).resolve().parents[1]

# A model a user writes in a file of their own: per-pixel features of every frame, averaged over
# time and space, then a linear classifier. It takes (T, H, W, C) clips, which no packaged model does.
SEQUENCE_MEAN = '''
"""Mean of per-pixel features over a clip (a test model)."""
import ml_collections
from flax import nnx


def default_config():
    return ml_collections.ConfigDict({"name": "tiny_lab.sequence_mean", "hidden": 8})


class SequenceMean(nnx.Module):
    def __init__(self, channels, hidden, num_classes, rngs):
        self.pixel = nnx.Linear(channels, hidden, rngs=rngs)
        self.classifier = nnx.Linear(hidden, num_classes, rngs=rngs)

    def __call__(self, x, *, train=False, rngs=None):
        return self.classifier(nnx.relu(self.pixel(x)).mean(axis=(1, 2, 3)))


def create(config, *, num_classes, input_shape, rngs):
    if len(input_shape) != 4:
        raise ValueError(f"sequence_mean takes (T, H, W, C) clips, got {input_shape}")
    return SequenceMean(input_shape[-1], config.hidden, num_classes, rngs)
'''

CONFIG = '''
from mer_jax.config import base_config


def get_config():
    config = base_config("tiny_lab.sequence_mean")
    config.model.hidden = 8
    config.data.toy_flow.update(subjects_per_dataset=(2, 2, 2), clips_per_subject=6, size=16, num_frames=4)
    config.data.input_shape = (4, 16, 16, 3)
    config.train.update(epochs=3, batch_size=8, learning_rate=0.1, checkpoint_every=3)
    return config
'''


@pytest.fixture
def user_model(tmp_path):
    package = tmp_path / "tiny_lab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sequence_mean.py").write_text(textwrap.dedent(SEQUENCE_MEAN))
    (tmp_path / "sequence_mean_config.py").write_text(textwrap.dedent(CONFIG))
    return tmp_path


def mer_jax(*args, pythonpath):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "mer_jax.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600
    )


def test_a_model_in_its_own_file_trains_on_clips_with_mer_jax_train(user_model):
    config = str(user_model / "sequence_mean_config.py")
    described = mer_jax("describe", "--config", config, pythonpath=user_model)
    assert described.returncode == 0, described.stderr
    assert "params: 59" in described.stdout.splitlines()  # (3 * 8 + 8) + (8 * 3 + 3)
    workdir = user_model / "run"
    trained = mer_jax("train", "--config", config, "--workdir", str(workdir), "--no-progress", pythonpath=user_model)
    assert trained.returncode == 0, trained.stderr
    report = json.loads((workdir / "report.json").read_text())
    assert report["model"] == "tiny_lab.sequence_mean"
    assert report["num_folds"] == 6  # LOSO over 3 data sets x 2 subjects
    ids = [p["sample_id"] for p in report["predictions"]]
    assert len(ids) == len(set(ids)) == 36  # every clip predicted once, by the fold that held it out


def test_every_packaged_family_is_found_by_name():
    names = models.model_names()
    assert {"rcn", "rcn_w", "rcn_s", "rcn_a", "rcn_c", "rcn_f", "rcn_p", "strcn_a", "strcn_g"} <= set(names)
    assert models.model_module("rcn_f").__name__ == "mer_jax.methods.rcn.rcn"
    assert models.model_module("strcn_a").__name__ == "mer_jax.methods.strcn.strcn"


def test_each_family_documents_and_reads_its_own_keys():
    assert set(base_config("rcn").model) == {"name", "variant", "features", "pool_size", "recurrent_steps", "dropout"}
    assert set(base_config("strcn_g").model) == {"name", "variant", "features", "num_rcls", "recurrent_steps", "dropout"}
    with pytest.raises(ValueError, match=r"model 'strcn_g' does not read model.pool_size; it reads: .*num_rcls"):
        models.create_model(
            {"name": "strcn_g", "pool_size": 5}, num_classes=3, input_shape=(60, 60, 2), rngs=nnx.Rngs(0)
        )
    with pytest.raises(ValueError, match=r"rcn takes \(H, W, C\) maps; the data have examples of shape \(4, 16, 16, 3\)"):
        models.create_model({"name": "rcn"}, num_classes=3, input_shape=(4, 16, 16, 3), rngs=nnx.Rngs(0))


def test_a_dotted_name_that_is_not_a_model_says_why():
    with pytest.raises(ValueError, match=r"model.name 'json.decoder': the module defines no default_config\(\) or create\(\)"):
        models.model_module("json.decoder")
    with pytest.raises(ValueError, match=r"model.name 'no_such_lab.model': cannot import that module"):
        models.model_module("no_such_lab.model")
