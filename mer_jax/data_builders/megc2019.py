"""The MEGC2019 composite (See et al., FG 2019): 442 clips of 68 subjects in 3 classes."""

from mer_jax.data_builders.clip_builder import ClipDatasetBuilder
from mer_jax.data_builders.sources import CASME2, SAMM, SMIC


class Megc2019(ClipDatasetBuilder):
    """SMIC-HS, CASME II and SAMM clips mapped to negative / positive / surprise (docs/design.md, Data)."""

    SOURCES = ("smic", "casme2", "samm")
    MEGC2019_ONLY = True
    DESCRIPTION = (
        "MEGC2019 cross-database composite: SMIC 70/51/43, CASME II 88/32/25, SAMM 92/26/15 "
        "negative/positive/surprise clips of 16 + 24 + 28 subjects (Xia et al., TIP 2020, sec. V-B)."
    )
    CITATION = "See et al., MEGC 2019 - the second facial micro-expressions grand challenge, FG 2019."
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "The composite reads the three licensed datasets from one folder. Unpack them so that "
        f"--manual_dir holds:\n{SMIC.layout}\n{CASME2.layout}\n{SAMM.layout}"
    )
