"""Aouayeb et al.'s six-region CNN+LSTM (configs/roi_cnn_lstm.py) sized for a 2-core CPU, on the synthetic composite.

The architecture is the paper's; what changes (docs/models.md, "Six regions,
CNN + LSTM", measured times and scores in README.md):
- 5 folds of whole subjects (`subject_kfold`) instead of 68 LOSO folds: each
  still never sees its held-out subjects, with 5 training runs instead of 68;
- 8 frames spread from onset to offset per clip instead of all of them;
- every region at half its height and width (`data.shrink = 2`);
- fewer epochs: 8 for the CNNs instead of 100, 40 for the LSTMs instead of 60;
- the LSTM batch at 64: 244 exceeds a fold's ~350 training clips' share.
Build first: mer-jax synth --out runs/synth && mer-jax build megc2019 --builder_config regions
--manual_dir runs/synth --data_dir runs/tfds.
"""

from mer_jax.config import sibling_config

SHRINK = 2


def get_config():
    config = sibling_config(__file__, "roi_cnn_lstm")
    config.data.data_dir = "runs/tfds"
    config.data.frames = 8
    config.data.shrink = SHRINK
    config.data.input_shape = (8, 6, 120 // SHRINK, 160 // SHRINK, 1)
    config.protocol.name = "subject_kfold"
    config.protocol.k = 5
    for stage in ("cnn", "lstm"):
        sizes = config.stages[stage].model.region_sizes
        config.stages[stage].model.region_sizes = tuple((h // SHRINK, w // SHRINK) for h, w in sizes)
    config.stages.cnn.train.epochs = 8
    config.stages.lstm.train.epochs = 40
    config.stages.lstm.train.batch_size = 64
    return config
