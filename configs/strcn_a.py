"""STRCN-A (Xia et al., TMM 2019): the selected pixels of 30 magnified frames, a d2 x T x 3 matrix.

Needs a built appearance data set: `mer-jax build casme2 --builder_config strcn_a --manual_dir DIR`.
The pixels are those of the paper's heat-map mask over every clip; `--config.data.mask=per_fold`
computes each fold's mask from its training clips only (mer_jax/heat_mask.py).
"""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "strcn_g")
    config.model.name = "strcn_a"
    config.data.name = "casme2/strcn_a"
    # 64 x 48 faces (sec. IV-A), top p = 30% of the pixels kept (921), T = 30 frames, 3 colour channels.
    config.data.input_shape = (921, 30, 3)
    config.data.augment = True  # x50 (sec. III-E): 100..60% of the frames kept before the normalisation to T = 30
    return config
