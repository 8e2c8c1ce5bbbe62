"""The method families, one package each: what is particular to a paper's method. `config.method` picks one.

- rcn: Xia et al., TIP 2020 (the shallow RCNs, their architecture search);
- strcn: Xia et al., TMM 2019 (STRCN-A and STRCN-G, the heat mask);
- six_regions: Aouayeb et al., MLSP 2019 (the six-region CNN+LSTM, its region labels, its two stages);
- tlcnn: Wang et al., Neurocomputing 2018 (TLCNN, its three transfer stages).

What a package hands the core, each part optional:

- ``MODEL_MODULES``: its model modules (mer_jax/models/ builds `config.model.name` from them);
- ``load(data_config) -> Dataset``: how it reads its builds (default :func:`mer_jax.data.builds.load`);
- ``training_inputs(config, dataset, folds) -> (inputs, folds, clip_of_row)``: what the folds train on
  (default the data set as loaded);
- a ``stages`` module, for a method trained in stages (`config.stages`): ``STAGES``,
  ``stage_input_shape(config, stage)``, ``stage_classes(config, stage)`` and
  ``train_stages(config, clips, folds, run)`` (`run`: a :class:`mer_jax.core.loop.FoldRun`; each stage runs as
  `run.stage(name)`), which may take options of its own (TLCNN's `images`).

A new method is a new package here; no core file changes. mer_jax/method.py hands the trainer the parts
of the method `config.method` names.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType


@functools.cache
def packages() -> dict[str, ModuleType]:
    """Method name -> its package."""
    return {info.name: importlib.import_module(f"{__name__}.{info.name}")
            for info in pkgutil.iter_modules(__path__) if info.ispkg}
