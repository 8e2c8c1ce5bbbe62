"""casme2 built from dummy_data/: 6 clips of 3 subjects, one apex written '/' (spotted), one 'others' clip."""

import tensorflow_datasets as tfds

from data_builders.casme2 import casme2_dataset_builder
from mer_jax.data.clips import testing


class Casme2Test(testing.ClipBuilderTestCase):
    DATASET_CLASS = casme2_dataset_builder.Builder
    SPLITS = {"train": 6}


if __name__ == "__main__":
    tfds.testing.test_main()
