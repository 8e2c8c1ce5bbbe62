"""The 9-class expression label space of TLCNN's first transfer step and each data set's codes.

Wang et al., Neurocomputing 2018, sec. 4.1, eq. 11 defines the source label space

    Y_S = {Happy, Angry, Sad, Contempt, Disgust, Neutral, Fear, Surprise, Afraid}

and we follow it, in that order (:data:`EQ11_CLASSES`). The running text of the
same section lists "neutral, anger, disgust, fear, happy, sad, surprise, shame,
contempt" instead: a 'shame' class and no 'afraid'. No data set the paper names
(KDEF, MMI, Radboud, TFEID; Table 2) labels shame, while KDEF names its fear
expression 'afraid' and Radboud 'fearful', so we read eq. 11 as keeping each
data set's name: KDEF's afraid -> Afraid, Radboud's fearful -> Fear. That
splits one emotion across two classes, as eq. 11 prints it.

:data:`LABEL_MAP` is the one table of every data set's own code -> eq. 11 class.
"""

from __future__ import annotations

EQ11_CLASSES = ("Happy", "Angry", "Sad", "Contempt", "Disgust", "Neutral", "Fear", "Surprise", "Afraid")

# KDEF (Lundqvist et al., 1998): letters 5-6 of a file name, and what they stand for.
KDEF_EMOTIONS = {
    "AF": "afraid", "AN": "angry", "DI": "disgusted", "HA": "happy", "NE": "neutral", "SA": "sad", "SU": "surprised",
}
# KDEF's angles: the file name's last letters before the extension.
KDEF_ANGLES = {"FL": "full left profile", "HL": "half left profile", "S": "straight", "HR": "half right profile",
               "FR": "full right profile"}
KDEF_SESSIONS = {"A": "first photo session (series A)", "B": "second photo session (series B)"}
KDEF_GENDERS = {"F": "female", "M": "male"}

# Radboud Faces Database (Langner et al., Cognition and Emotion 2010): the emotion word of a file name.
RAFD_EMOTIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
RAFD_CAMERAS = {"000": "camera at 0 degrees (a profile)", "045": "camera at 45 degrees",
                "090": "frontal camera", "135": "camera at 135 degrees", "180": "camera at 180 degrees (a profile)"}
RAFD_GAZES = ("frontal", "left", "right")

# (data set, its own emotion code) -> eq. 11 class.
LABEL_MAP: dict[tuple[str, str], str] = {
    ("kdef", "AF"): "Afraid",
    ("kdef", "AN"): "Angry",
    ("kdef", "DI"): "Disgust",
    ("kdef", "HA"): "Happy",
    ("kdef", "NE"): "Neutral",
    ("kdef", "SA"): "Sad",
    ("kdef", "SU"): "Surprise",
    ("rafd", "angry"): "Angry",
    ("rafd", "contemptuous"): "Contempt",
    ("rafd", "disgusted"): "Disgust",
    ("rafd", "fearful"): "Fear",
    ("rafd", "happy"): "Happy",
    ("rafd", "neutral"): "Neutral",
    ("rafd", "sad"): "Sad",
    ("rafd", "surprised"): "Surprise",
}


def eq11_class(dataset: str, emotion: str) -> str:
    """The eq. 11 class of ``dataset``'s own emotion code (KeyError naming the valid codes)."""
    try:
        return LABEL_MAP[(dataset, emotion)]
    except KeyError:
        codes = sorted(code for name, code in LABEL_MAP if name == dataset)
        raise KeyError(f"{dataset}: no eq. 11 class for emotion {emotion!r}; codes: {', '.join(codes)}") from None
