"""SMIC-HS (Li et al., FG 2013): 164 clips of 16 subjects at 100 fps; no apex annotated (README.md)."""

from mer_jax.data.clips.builder import ClipDatasetBuilder, manual_instructions


class Smic(ClipDatasetBuilder):
    """SMIC's high-speed (HS) micro-expression clips; apexes spotted by Xia et al., TMM 2019, eq. 5."""

    DATASETS = ("smic",)
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_instructions("SMIC is licensed by the University of Oulu.", DATASETS)


Builder = Smic  # the name `tfds new` gives a builder class
