import pytest

from mer_jax.data.labels import MEGC2019_CLASSES, STRCN4_CLASSES, megc2019_class, strcn4_class, strcn4_classes


@pytest.mark.parametrize(
    "dataset, emotion, expected",
    [
        ("casme2", "disgust", "negative"),
        ("casme2", "repression", "negative"),
        ("casme2", "happiness", "positive"),
        ("casme2", "surprise", "surprise"),
        ("casme2", "others", None),
        ("casme2", "fear", None),
        ("casme2", "sadness", None),
        ("samm", "Anger", "negative"),
        ("samm", "Contempt", "negative"),
        ("samm", "Disgust", "negative"),
        ("samm", "Fear", "negative"),
        ("samm", "Sadness", "negative"),
        ("samm", "Happiness", "positive"),
        ("samm", "Surprise", "surprise"),
        ("samm", "Other", None),
        ("smic", "negative", "negative"),
        ("smic", "positive", "positive"),
        ("smic", "surprise", "surprise"),
    ],
)
def test_megc2019_map(dataset, emotion, expected):
    assert megc2019_class(dataset, emotion) == expected


def test_megc2019_classes_cover_the_map_values():
    assert MEGC2019_CLASSES == ("negative", "positive", "surprise")
    assert megc2019_class("samm", "Happiness") in MEGC2019_CLASSES


@pytest.mark.parametrize("emotion", ["REPRESSION", " Repression ", "repression\t", "rePression"])
def test_megc2019_ignores_case_and_whitespace(emotion):
    assert megc2019_class("casme2", emotion) == "negative"


def test_megc2019_labels_are_per_dataset():
    # 'Anger' is a SAMM label only; CASME II has no anger class.
    with pytest.raises(ValueError, match=r"'Anger'.*casme2.*known: disgust"):
        megc2019_class("casme2", "Anger")
    # SMIC's classes are not CASME II labels.
    with pytest.raises(ValueError, match="casme2"):
        megc2019_class("casme2", "negative")
    with pytest.raises(ValueError, match=r"'happiness'.*smic.*negative, positive, surprise"):
        megc2019_class("smic", "happiness")


def test_megc2019_unknown_dataset():
    with pytest.raises(ValueError, match="'casme'.*casme2, samm, smic"):
        megc2019_class("casme", "disgust")


@pytest.mark.parametrize(
    "emotion, expected",
    [
        ("happiness", "positive"),
        ("disgust", "negative"),
        ("sadness", "negative"),
        ("fear", "negative"),
        ("contempt", "negative"),
        ("anger", "negative"),
        ("surprise", "surprise"),
        ("tense", "other"),
        ("repression", "other"),
        ("others", "other"),
        ("Other", "other"),
        ("Anger ", "negative"),
        ("HAPPINESS", "positive"),
        ("negative", "negative"),
    ],
)
def test_strcn4_map(emotion, expected):
    assert strcn4_class(emotion) == expected
    assert expected in STRCN4_CLASSES


def test_strcn4_repression_differs_from_megc2019():
    assert strcn4_class("repression") == "other"
    assert megc2019_class("casme2", "repression") == "negative"


def test_strcn4_unknown_label():
    with pytest.raises(ValueError, match="'joy'"):
        strcn4_class("joy")


def test_strcn_classes_are_three_for_smic_alone_and_four_with_casme2_or_samm():
    """Xia et al., TMM 2019, sec. IV-B: SMIC uses only positive, negative and surprise."""
    assert strcn4_classes(["smic"]) == ("negative", "positive", "surprise")
    assert strcn4_classes(["smic", "casme2"]) == strcn4_classes(["samm"]) == STRCN4_CLASSES
    with pytest.raises(ValueError, match="'casme'"):
        strcn4_classes(["casme"])
