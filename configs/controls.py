"""The quick start at a tenth of its cost: the test suite's learning check and its negative controls.

The quick start's training (configs/quickstart.py) on a smaller built-in synthetic set
(3 subjects per source data set, 12 clips each: 108 clips, 9 LOSO folds) for 20 epochs, drawn
with data seed 1: the quick start's values were chosen on seed 0, so this set is new to them.
The two controls are overrides of this config:

  --config.data.synthetic.motion_scale=0   the expression motion removed (head drift and noise stay)
  --config.data.shuffle_labels=True        the training labels permuted

`python benchmarks/controls.py` trains all three over several data seeds; docs/testing.md
has the spread and the thresholds tests/test_controls.py takes from it.
"""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "quickstart")
    config.data.synthetic.update(subjects_per_dataset=(3, 3, 3), clips_per_subject=12)
    config.data.seed = 1
    config.train.epochs = 20
    return config
