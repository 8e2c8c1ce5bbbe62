"""TFDS builders of the micro-expression datasets (docs/design.md, Layout: data_builders/).

Importing this package registers ``casme2``, ``samm``, ``smic``, ``megc2019``
and ``synthetic_me`` with TFDS, so ``tfds.builder('megc2019/flow60')`` and
``tfds build --imports mer_jax.data_builders megc2019`` find them.
"""

from mer_jax.data_builders.casme2 import Casme2
from mer_jax.data_builders.megc2019 import Megc2019
from mer_jax.data_builders.samm import Samm
from mer_jax.data_builders.smic import Smic
from mer_jax.data_builders.synthetic_me import SyntheticMe

BUILDERS = {builder.name: builder for builder in (Casme2, Samm, Smic, Megc2019, SyntheticMe)}
