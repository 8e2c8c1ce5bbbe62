"""The MEGC2019 composite (See et al., FG 2019): 442 clips of 68 subjects in 3 classes (README.md)."""

from mer_jax.data.clips.builder import ClipDatasetBuilder, manual_instructions


class Megc2019(ClipDatasetBuilder):
    """SMIC-HS, CASME II and SAMM clips mapped to negative / positive / surprise (Xia et al., TIP 2020, sec. V-B)."""

    DATASETS = ("smic", "casme2", "samm")
    MEGC2019_ONLY = True
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_instructions(
        "The composite reads the three licensed datasets (SMIC, CASME II, SAMM; see their builders' README.md) "
        "from one folder.",
        DATASETS,
    )


Builder = Megc2019  # the name `tfds new` gives a builder class
