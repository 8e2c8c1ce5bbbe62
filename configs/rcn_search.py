"""The architecture search of Xia et al., TIP 2020 (sec. IV-C-4, eq. 8, Fig. 6) on the built-in synthetic flow maps.

    mer-jax search --config configs/rcn_search.py --workdir runs/search
    mer-jax train --config runs/search/derived_config.py --workdir runs/searched

Expected (2 cores shared with other jobs): the search 43 s (59 s under more load, the same choice):
a wide stem, the plain recurrence, attention on states 1-3 and the output. The derived config's
training: 179 s, UF1 0.849, UAR 0.848 (docs/search.md).

The search writes runs/search/architecture.json and runs/search/derived_config.py; docs/search.md
describes it. Small settings: the first 3 LOSO folds, 30 epochs. The model sizes and the weights'
training are the quick start's (configs/quickstart.py); the derived config trains with them.

The paper's setting, on the MEGC2019 composite (DIR: the unpacked data sets, docs/data.md):

    mer-jax build megc2019 --manual_dir DIR --data_dir runs/tfds
    mer-jax search --config configs/rcn_search.py --workdir runs/search_megc2019 \
        --config.data.name=megc2019/flow60 --config.data.data_dir=runs/tfds \
        --config.search.num_folds=0 --config.search.epochs=50 --config.search.alpha_learning_rate=3e-4 \
        --config.model.dropout=0.5 --config.train.learning_rate=1e-4 \
        --config.train.loss=cross_entropy --config.train.epochs=500

Its time: not measured. Its result: not run; the paper's top three were RCN-C, RCN-F and RCN-P
(sec. V-C-4). The paper gives no search schedule. The alpha optimiser and split are those of
DARTS (Liu et al., ICLR 2019), which sec. IV-C-4 follows.
"""

from mer_jax.config import sibling_config
from mer_jax.models import model_config
from mer_jax.methods.rcn.search import default_search_config


def get_config():
    config = sibling_config(__file__, "quickstart")
    quickstart = config.model
    config.model = model_config("rcn_searched")  # the supernet's sizes; the search writes stem, recurrence, attention
    for key in ("features", "pool_size", "recurrent_steps", "dropout"):
        config.model[key] = quickstart[key]  # M = 16, K = 5, 3 recurrent steps (sec. V-A, V-C), dropout 0.25
    config.search = default_search_config()
    return config
