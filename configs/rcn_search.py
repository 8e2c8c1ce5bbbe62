"""The architecture search of Xia et al., TIP 2020 (sec. IV-C-4, eq. 8, Fig. 6) on the built-in synthetic flow maps.

`mer-jax search --config configs/rcn_search.py --workdir W` writes W/architecture.json and
W/derived_config.py (train it: `mer-jax train --config W/derived_config.py --workdir W2`);
docs/search.md describes the search. Small settings, under a minute on 2 CPU cores
(43 s measured, docs/search.md): the first 3 LOSO folds, 30 epochs. The model sizes and the weights' training are the quick
start's (configs/quickstart.py); the derived config trains with them.

The paper's setting, on the MEGC2019 composite (the paper gives no search schedule; the
alpha optimiser and split are those of DARTS, Liu et al., ICLR 2019, which sec. IV-C-4 follows):
  --config.data.name=megc2019/flow60 --config.search.num_folds=0 --config.search.epochs=50
  --config.search.alpha_learning_rate=3e-4 --config.model.dropout=0.5 --config.train.learning_rate=1e-4
  --config.train.loss=cross_entropy --config.train.epochs=500
"""

from mer_jax.config import sibling_config
from mer_jax.models import model_config
from mer_jax.search import default_search_config


def get_config():
    config = sibling_config(__file__, "quickstart")
    quickstart = config.model
    config.model = model_config("rcn_searched")  # the supernet's sizes; the search writes stem, recurrence, attention
    for key in ("features", "pool_size", "recurrent_steps", "dropout"):
        config.model[key] = quickstart[key]  # M = 16, K = 5, 3 recurrent steps (sec. V-A, V-C), dropout 0.25
    config.search = default_search_config()
    return config
