"""STRCN-A (Xia et al., TMM 2019): the selected pixels of 30 magnified frames, a d2 x T x 3 matrix.

    mer-jax build casme2 --builder_config strcn_a --manual_dir DIR --data_dir runs/tfds
    mer-jax train --config configs/strcn_a.py --config.data.data_dir=runs/tfds --workdir runs/strcn_a

DIR: the unpacked data sets (docs/data.md). Expected time: the build about 11.6 s of CPU a clip
(docs/benchmarks.md); the training not measured. Expected result: not run; this is the row
configs/strcn_tmm2019.py:table2_casme2_strcn_a, whose paper accuracy is 0.560, F1-score 0.542 (Xia et
al., TMM 2019, Table II).

The pixels are those of the paper's heat-map mask over every clip. `--config.data.mask=per_fold`
computes each fold's mask from its training clips only (mer_jax/methods/strcn/heat_mask.py).
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
