"""CASME II (Yan et al., PLoS ONE 2014): 255 clips of 26 subjects at 200 fps."""

from mer_jax.data_builders.clip_builder import ClipDatasetBuilder
from mer_jax.data_builders.sources import CASME2


class Casme2(ClipDatasetBuilder):
    """CASME II, every annotated clip, from the raw frames and the coding sheet."""

    SOURCES = ("casme2",)
    DESCRIPTION = "CASME II spontaneous micro-expressions (every clip of the coding sheet)."
    CITATION = "Yan et al., CASME II: An improved spontaneous micro-expression database, PLoS ONE 9(1), 2014."
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "CASME II is licensed by its authors (Institute of Psychology, Chinese Academy of Sciences). "
        f"Unpack it so that --manual_dir holds:\n{CASME2.layout}"
    )
