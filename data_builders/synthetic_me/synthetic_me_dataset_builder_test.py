"""synthetic_me built from dummy_data/.

The composite is already in its (mocked) download folder, dummy_data/synthetic_me_raw,
so nothing is generated; 9 of its 10 clips are in MEGC2019.
"""

import tensorflow_datasets as tfds

from data_builders.synthetic_me import synthetic_me_dataset_builder
from mer_jax.data.clips import testing


class SyntheticMeTest(testing.ClipBuilderTestCase):
    DATASET_CLASS = synthetic_me_dataset_builder.Builder
    SPLITS = {"train": 9}


if __name__ == "__main__":
    tfds.testing.test_main()
