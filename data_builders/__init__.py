"""TFDS builders of the micro-expression datasets, one folder per dataset as `tfds new` lays them out (docs/data.md).

Importing this package registers ``casme2``, ``samm``, ``smic``, ``megc2019``
and ``synthetic_me`` with TFDS, so ``tfds.builder('megc2019/flow60')`` finds
them; ``BUILDERS`` maps each name to its class. The work they share (layouts,
per-clip preprocessing, the builder base class) is :mod:`mer_jax.data.clips`.
"""

from data_builders.casme2 import Casme2
from data_builders.megc2019 import Megc2019
from data_builders.samm import Samm
from data_builders.smic import Smic
from data_builders.synthetic_me import SyntheticMe

BUILDERS = {builder.name: builder for builder in (Casme2, Samm, Smic, Megc2019, SyntheticMe)}

__all__ = ["BUILDERS", "Casme2", "Megc2019", "Samm", "Smic", "SyntheticMe"]
