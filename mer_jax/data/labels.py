"""Emotion label maps: the MEGC2019 3-class map and STRCN's 4-class map.

MEGC2019 (docs/design.md, Data; Xia et al., TIP 2020, sec. V-B): negative = disgust, repression
(CASME II) and Anger, Contempt, Disgust, Fear, Sadness (SAMM); positive =
happiness; surprise = surprise; SMIC keeps its own three classes. Every other
label (CASME II 'others', 'fear', 'sadness'; SAMM 'Other') is not part of the
composite and maps to None.

STRCN (docs/design.md, Data; Xia et al., TMM 2019, sec. IV-B): positive = happiness; negative =
disgust, sadness, fear, contempt, anger; surprise; other = tense, repression,
others. SMIC annotates only the first three, so a data set of SMIC alone has
three STRCN classes (:func:`strcn4_classes`).

Labels match case- and whitespace-insensitively ('Anger ', 'ANGER' and 'anger'
are the same label). An unknown label raises ValueError (docs/design.md, Conventions).
"""

from __future__ import annotations

MEGC2019_CLASSES = ("negative", "positive", "surprise")
STRCN4_CLASSES = ("negative", "positive", "surprise", "other")

# Every label each dataset's annotation uses, with its MEGC2019 class or None.
_MEGC2019 = {
    "casme2": {
        "disgust": "negative",
        "repression": "negative",
        "happiness": "positive",
        "surprise": "surprise",
        "fear": None,
        "sadness": None,
        "others": None,
    },
    "samm": {
        "anger": "negative",
        "contempt": "negative",
        "disgust": "negative",
        "fear": "negative",
        "sadness": "negative",
        "happiness": "positive",
        "surprise": "surprise",
        "other": None,
    },
    "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}

_STRCN4 = {
    "happiness": "positive",
    "disgust": "negative",
    "sadness": "negative",
    "fear": "negative",
    "contempt": "negative",
    "anger": "negative",
    "surprise": "surprise",
    "tense": "other",
    "repression": "other",
    "others": "other",
    # SAMM spells CASME II's 'others' as 'Other'.
    "other": "other",
    # SMIC's own classes (Xia et al., TMM 2019, sec. IV-B: SMIC uses only these three).
    "positive": "positive",
    "negative": "negative",
}


# The STRCN classes each data set annotates (Xia et al., TMM 2019, sec. IV-B: "In SMIC dataset, only the
# first three classes (i.e., positive, negative and surprise) are used").
_STRCN4_ANNOTATED = {
    "casme2": STRCN4_CLASSES,
    "samm": STRCN4_CLASSES,
    "smic": ("negative", "positive", "surprise"),
}


def _normalise(label: str) -> str:
    return " ".join(str(label).split()).lower()


def megc2019_class(dataset: str, emotion: str) -> str | None:
    """The MEGC2019 class of ``emotion`` as ``dataset`` labels it, or None if not in the composite.

    Args:
      dataset: 'casme2', 'samm' or 'smic'.
      emotion: the dataset's own label ('repression', 'Anger', 'negative', ...).

    Raises:
      ValueError: unknown dataset, or a label that dataset does not use.
    """
    if dataset not in _MEGC2019:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(_MEGC2019)}")
    labels = _MEGC2019[dataset]
    key = _normalise(emotion)
    if key not in labels:
        raise ValueError(
            f"{emotion!r} is not a known {dataset} emotion label; known: {', '.join(sorted(labels))}"
        )
    return labels[key]


def strcn4_class(emotion: str) -> str:
    """The STRCN 4-class label (Xia et al., TMM 2019, sec. IV-B) of a CASME II, SAMM or SMIC emotion.

    Raises:
      ValueError: a label the map does not know.
    """
    key = _normalise(emotion)
    if key not in _STRCN4:
        raise ValueError(
            f"{emotion!r} is not a known emotion label for the STRCN 4-class map; "
            f"known: {', '.join(sorted(_STRCN4))}"
        )
    return _STRCN4[key]


def strcn4_classes(datasets) -> tuple[str, ...]:
    """The STRCN classes that any of ``datasets`` annotates, in :data:`STRCN4_CLASSES` order.

    SMIC alone gives three (negative, positive, surprise); with CASME II or SAMM, four.

    Raises:
      ValueError: an unknown dataset name.
    """
    unknown = sorted(set(datasets) - set(_STRCN4_ANNOTATED))
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; known: {', '.join(_STRCN4_ANNOTATED)}")
    annotated = {name for dataset in datasets for name in _STRCN4_ANNOTATED[dataset]}
    return tuple(name for name in STRCN4_CLASSES if name in annotated)
