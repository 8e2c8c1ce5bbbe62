"""STRCN-G (configs/strcn_g.py) sized for a 2-core CPU, on the synthetic composite.

    mer-jax synth --out runs/synth --expression_scale 10
    mer-jax build megc2019 --builder_config flow_strcn_g_single --manual_dir runs/synth --data_dir runs/tfds
    mer-jax train --config configs/strcn_g_synthetic.py --workdir runs/strcn_g_synthetic

Expected (2 cores, shared with other runs): build 2.4 min, training 6.7 min; UF1 0.876 on the
amplitude-10 composite above, 0.365 without the expression (`--expression_scale 0`, chance 0.33);
training accuracy 0.98 against a class prior of 0.57 (benchmarks/amplitude.py).

The architecture is Table I's (Xia et al., TMM 2019: Conv1, RCL2..RCL5, pools 4, 4, 4, 2); what
changes (docs/models.md, "Does each method learn?"):
- the `flow_strcn_g_single` build: one flow per clip, at alpha 8 (the paper's test alpha), 168 x 136
  instead of 300 x 245, no x50 augmentation (its 50 flows a clip cost 41 s of CPU each);
- M = 16 feature maps (Fig. 5 sweeps 16..128);
- the MEGC2019 composite in three classes, 5 folds of whole subjects (`subject_kfold`) instead of LOSO;
- Adam at a constant 1e-3 without weight decay instead of SGD at 1e-3 x 0.8 an epoch: without the x50 rows
  an epoch is a fiftieth of the paper's, and that schedule decays before the model fits.
"""

from mer_jax.data.clips.builder import STRCN_G_SINGLE_SIZE
from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "strcn_g")
    config.model.features = 16
    config.data.name = "megc2019/flow_strcn_g_single"
    config.data.data_dir = "runs/tfds"
    config.data.input_shape = (*STRCN_G_SINGLE_SIZE, 2)
    config.data.labels = "megc2019"
    config.data.num_classes = 3
    config.data.augment = False
    config.protocol.name = "subject_kfold"
    config.protocol.k = 5
    # Adam at a constant 1e-3 instead of SGD at 1e-3 x 0.8 an epoch (docstring; docs/models.md, "Does each
    # method learn?")
    config.train.optimizer = "adam"
    config.train.schedule = "constant"
    config.train.weight_decay = 0.0
    config.train.strategy = "loop"  # XLA:CPU runs vmap's grouped convolutions many times slower
    return config
