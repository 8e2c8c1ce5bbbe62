"""megc2019 built from dummy_data/: the three datasets' 10 clips, of which 9 in the composite.

CASME II 'others' has no MEGC2019 class and is left out.
"""

import tensorflow_datasets as tfds

from data_builders.megc2019 import megc2019_dataset_builder
from mer_jax.data.clips import testing


class Megc2019Test(testing.ClipBuilderTestCase):
    DATASET_CLASS = megc2019_dataset_builder.Builder
    SPLITS = {"train": 9}


if __name__ == "__main__":
    tfds.testing.test_main()
