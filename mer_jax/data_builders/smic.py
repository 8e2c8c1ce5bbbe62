"""SMIC-HS (Li et al., FG 2013): 164 clips of 16 subjects at 100 fps; no apex annotated."""

from mer_jax.data_builders.clip_builder import ClipDatasetBuilder
from mer_jax.data_builders.sources import SMIC


class Smic(ClipDatasetBuilder):
    """SMIC's high-speed (HS) micro-expression clips; apexes spotted by Xia et al., TMM 2019, eq. 5."""

    SOURCES = ("smic",)
    DESCRIPTION = "SMIC-HS spontaneous micro-expressions (negative, positive, surprise)."
    CITATION = "Li et al., A spontaneous micro-expression database: inducement, collection and baseline, FG 2013."
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "SMIC is licensed by the University of Oulu. "
        f"Unpack it so that --manual_dir holds:\n{SMIC.layout}"
    )
