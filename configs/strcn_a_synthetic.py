"""STRCN-A (configs/strcn_a.py) sized for a 2-core CPU, on the synthetic composite.

    mer-jax synth --out runs/synth --expression_scale 10
    mer-jax build megc2019 --builder_config strcn_a_single --manual_dir runs/synth --data_dir runs/tfds
    mer-jax train --config configs/strcn_a_synthetic.py --workdir runs/strcn_a_synthetic

Expected (2 cores): build 3 min alone (11 min beside other runs), training 13-15 min beside other runs;
UF1 0.717 on the amplitude-10 composite above, 0.327 without the expression (`--expression_scale 0`,
chance 0.33); training accuracy 0.94 against a class prior of 0.57 (benchmarks/amplitude.py).

The architecture is Table I's (Xia et al., TMM 2019: Conv1, RCL2..RCL5, pools 4x1, 4x1, 4x4, 2x2) on
the paper's 921 x 30 x 3 matrices (the top 30% of a 64 x 48 face's pixels, 30 frames); what changes
(docs/models.md, "Does each method learn?"), as configs/strcn_g_synthetic.py's:
- the `strcn_a_single` build: the clip magnified at alpha 8 (the paper's test alpha) only, no x50
  augmentation;
- M = 16 feature maps (Fig. 5 sweeps 16..128);
- the MEGC2019 composite in three classes, 5 folds of whole subjects (`subject_kfold`) instead of LOSO;
- Adam at a constant 1e-3 without weight decay instead of SGD at 1e-3 x 0.8 an epoch: without the x50 rows
  an epoch is a fiftieth of the paper's, and that schedule decays before the model fits.
"""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "strcn_g_synthetic")  # the CPU settings, on STRCN-A's input
    config.model.name = "strcn_a"
    config.data.name = "megc2019/strcn_a_single"
    config.data.input_shape = sibling_config(__file__, "strcn_a").data.input_shape  # 921 pixels x 30 frames x 3
    return config
