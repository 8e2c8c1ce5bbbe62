"""SAMM (Davison et al., IEEE TAC 2018): 159 clips of 32 subjects at 200 fps."""

from mer_jax.data_builders.clip_builder import ClipDatasetBuilder
from mer_jax.data_builders.sources import SAMM


class Samm(ClipDatasetBuilder):
    """SAMM, every annotated clip, from the frames and the FACS coding sheet."""

    SOURCES = ("samm",)
    DESCRIPTION = "SAMM spontaneous micro-facial movements (every clip of the coding sheet)."
    CITATION = "Davison et al., SAMM: A spontaneous micro-facial movement dataset, IEEE TAC 9(1), 2018."
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "SAMM is licensed by Manchester Metropolitan University. "
        f"Unpack it so that --manual_dir holds:\n{SAMM.layout}"
    )
