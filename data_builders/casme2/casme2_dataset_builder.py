"""CASME II (Yan et al., PLoS ONE 2014): 255 clips of 26 subjects at 200 fps (README.md)."""

from mer_jax.data.clips.builder import ClipDatasetBuilder, manual_instructions


class Casme2(ClipDatasetBuilder):
    """CASME II, every annotated clip, from the raw frames and the coding sheet."""

    DATASETS = ("casme2",)
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_instructions(
        "CASME II is licensed by its authors (Institute of Psychology, Chinese Academy of Sciences).", DATASETS
    )


Builder = Casme2  # the name `tfds new` gives a builder class
