"""The keys every training configuration has, with their meaning and defaults.

Experiment files in configs/ start from `base_config()` and set what their paper
fixes, each number with its source. Any key can be overridden on the command
line: `--config.train.epochs=5`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import ml_collections

from mer_jax.models import method_of, model_config


def base_config(model: str = "rcn") -> ml_collections.ConfigDict:
    """Every key a run reads; `config.model` holds the keys of the model family `model` reads."""
    config = ml_collections.ConfigDict()

    # The method (mer_jax/methods/: rcn, strcn, six_regions, tlcnn): how its builds are read and, for a
    # config with `stages`, how it trains; '' for a model from outside mer-jax, trained as one model.
    config.method = method_of(model)
    # The model's own keys, with its defaults (each model module documents them; mer_jax/models/).
    config.model = model_config(model)

    config.data = ml_collections.ConfigDict()
    config.data.name = "toy_flow"
    config.data.shuffle_labels = False  # train on permuted labels (a sanity check: UF1 falls to chance)
    config.data.seed = 0
    config.data.input_shape = (60, 60, 3)  # one example's shape, any rank (H, W, C maps; T, H, W, C clips); checked; 0: any size
    config.data.num_classes = 3
    # Built TFDS data sets (name 'dataset/config', e.g. 'megc2019/flow60'):
    config.data.data_dir = ""  # where `mer-jax build` wrote them ('' = TFDS's default, ~/tensorflow_datasets)
    config.data.labels = "megc2019"  # megc2019 (3 classes) | strcn4 (4; 3 for SMIC alone) | emotion (the dataset's own)
    config.data.classes = ()  # labels=emotion: the emotions kept, in class order (others are left out)
    config.data.alpha = 8.0  # magnified variants: the factor whose inputs are used (Xia et al., TMM 2019, sec. IV-A tests at 8)
    # magnified builds: every stored variant of a clip (alphas x frame-keeping levels, Xia et al., TMM 2019,
    # sec. III-E: x50) is a training row of the folds that train on the clip; held out and scored: `alpha` only
    config.data.augment = False
    # strcn_a builds: the heat-map mask keeps the top_p of the pixels (Xia et al., TMM 2019, sec. IV-A: 30%), computed
    # from every clip ('paper', eq. 4 "on entire datasets") or from each fold's training clips ('per_fold';
    # one masked copy of the clips per fold: mer_jax/methods/strcn/heat_mask.py)
    config.data.mask = "paper"
    # regions and tim builds: decode once into <data_dir>/decoded/ and read x through a memory map, so the host
    # holds the pages in use, not the data set (with train.data_on_device=False; docs/data.md)
    config.data.memmap = False
    config.data.top_p = 0.30
    config.data.toy_flow = ml_collections.ConfigDict(
        {"subjects_per_dataset": (6, 6, 6), "clips_per_subject": 12, "size": 60, "motion_scale": 1.0, "num_frames": 0}
    )

    config.protocol = ml_collections.ConfigDict()
    config.protocol.name = "loso"  # loso | lovo | kfold | subject_kfold (k groups of whole subjects)
    config.protocol.seed = 0
    config.protocol.k = 5  # kfold, subject_kfold
    config.protocol.test_fraction = 0.05  # lovo: 5% of the videos held out per evaluation (Xia et al., TMM 2019, sec. IV-B)

    config.train = ml_collections.ConfigDict()
    config.train.strategy = "auto"  # auto | vmap | loop
    config.train.fold_chunk = 0  # vmap: folds per compiled call (0 = all), to bound device memory
    config.train.steps_per_call = 0  # optimisation steps per compiled call (0 = auto: 1 on CPU, the whole epoch elsewhere)
    # False: each call's batches are gathered on the host from data.x and sent with it, so a device holds
    # them and not the whole data set (mer_jax/core/runners.py; TLCNN's frames, docs/models.md). Same results.
    config.train.data_on_device = True
    config.train.concurrent_folds = 0  # folds (loop) or fold groups (vmap) run at once (0 = auto: CPU cores on CPU, else 1)
    config.train.epochs = 100
    config.train.batch_size = 64
    config.train.learning_rate = 1e-4
    config.train.momentum = 0.9
    config.train.weight_decay = 5e-4
    config.train.schedule = "constant"  # constant | exponential (x lr_decay after every epoch) | step (x lr_decay after every lr_step_epochs)
    config.train.lr_decay = 1.0
    config.train.lr_step_epochs = 0  # step: epochs between decays
    config.train.loss = "cross_entropy"  # cross_entropy | balanced | focal
    config.train.focal_gamma = 2.0  # focal loss: (1 - p_t)^gamma (Lin et al., ICCV 2017, their best value)
    config.train.class_weight = "none"  # none | inverse_frequency: focal alpha from each fold's training labels
    config.train.optimizer = "sgd"  # sgd (with train.momentum) | adam
    # A fold stops updating after the first epoch whose mean training loss is below this (0: never;
    # Xia et al., TIP 2020, sec. V-A: 0.5). Training data only: no held-out subject is looked at.
    config.train.stop_loss = 0.0
    config.train.seed = 0
    # Seeds train.seed .. train.seed + num_seeds - 1 of every fold, in the same run; the report gives each
    # seed's scores, their mean and spread and a bootstrap interval over subjects (mer_jax/core/seeds.py).
    config.train.num_seeds = 1
    config.train.checkpoint_every = 5  # epochs
    # Also train one model on every subject (a fold with nothing held out) and save it with the
    # data's preprocessing settings in workdir/final_model, for `mer-jax predict` on new clips.
    config.train.final_model = False
    return config


def sibling_config(config_file: str, name: str) -> ml_collections.ConfigDict:
    """`get_config()` of configs/<name>.py next to `config_file`, so experiments can build on each other."""
    path = Path(config_file).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"mer_jax_config_{name}", path)
    if spec is None or not path.exists():
        raise FileNotFoundError(f"config {path} not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def table_row(rows: dict, row: str | None, example: str) -> dict:
    """`rows[row]`: a table-row config file's spec of `row`; ValueError naming `example` and every row otherwise."""
    if row not in rows:
        raise ValueError(f"{example.split(':')[0]} needs a table row, e.g. {example}; got {row!r}; rows: {', '.join(rows)}")
    return rows[row]
