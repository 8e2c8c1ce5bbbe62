"""SAMM (Davison et al., IEEE TAC 2018): 159 clips of 32 subjects at 200 fps (README.md)."""

from mer_jax.data.clips.builder import ClipDatasetBuilder, manual_instructions


class Samm(ClipDatasetBuilder):
    """SAMM, every annotated clip, from the frames and the FACS coding sheet."""

    DATASETS = ("samm",)
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_instructions(
        "SAMM is licensed by Manchester Metropolitan University.", DATASETS
    )


Builder = Samm  # the name `tfds new` gives a builder class
