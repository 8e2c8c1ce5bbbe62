"""TLCNN (configs/tlcnn.py) sized for a 2-core CPU, on the synthetic composite and synthetic expression images.

    mer-jax synth --out runs/synth --expression_scale 10
    mer-jax build megc2019 --builder_config tim32 --manual_dir runs/synth --data_dir runs/tfds
    mer-jax build kdef --builder_config all_angles --manual_dir runs/synth --data_dir runs/tfds
    mer-jax train --config configs/tlcnn_synthetic.py --workdir runs/tlcnn_synthetic

Expected (2 cores): builds 6.4 min, training 12.5 min alone (17.8 shared with other runs); UF1 0.786 on
the amplitude-10 composite, 0.241 (every clip "negative") without the expression; training accuracy
per stage 0.61 (prior 0.14), 0.80 (0.57), 0.91 (0.57) (benchmarks/amplitude.py).

`mer-jax synth` writes the expression images (in KDEF's layout) beside the composite. The layers
are the paper's at 1/16 of their width (`model.width`); what else changes (docs/models.md, "TLCNN"):
- frames at half their height and width (`data.shrink = 2`: 120 x 160, the
  expression images too) and a 113 x 113 crop, for 227 of 240 x 320;
- the MEGC2019 composite in its three classes, 5 folds of whole subjects
  (`subject_kfold`);
- stage a on the synthetic KDEF set at all three angles, 210 images (the
  frontal 70 leave 14 to validate on), batch 16, at most 60 epochs; stage b
  4 epochs; stage c 15 epochs, its learning rate divided by 10 after 10.
"""

from mer_jax.config import sibling_config

SHRINK = 2
WIDTH = 1 / 16
CROP = 113


def get_config():
    config = sibling_config(__file__, "tlcnn")
    config.data.name = "megc2019/tim32"
    config.data.data_dir = "runs/tfds"
    config.data.labels = "megc2019"
    config.data.num_classes = 3
    config.data.shrink = SHRINK
    config.data.input_shape = (32, 240 // SHRINK, 320 // SHRINK, 3)
    config.protocol.name = "subject_kfold"
    config.protocol.k = 5
    config.train.strategy = "loop"  # XLA:CPU runs vmap's grouped convolutions many times slower (and timing it costs GBs)
    config.train.optimizer = "adam"
    for stage in ("expressions", "frames", "clips"):
        config.stages[stage].model.width = WIDTH
        config.stages[stage].model.crop = CROP
        config.stages[stage].model.dropout = 0.0
        config.stages[stage].train.learning_rate = 1e-3
    config.stages.expressions.data = ("kdef/all_angles",)  # 210 images: 42 of one person to validate on
    config.stages.expressions.input_shape = (240 // SHRINK, 320 // SHRINK, 3)
    config.stages.expressions.train.update({"batch_size": 16, "epochs": 60})
    config.stages.frames.train.update({"epochs": 4, "lr_step_epochs": 3})
    config.stages.clips.train.update({"epochs": 15, "lr_step_epochs": 10})
    return config
