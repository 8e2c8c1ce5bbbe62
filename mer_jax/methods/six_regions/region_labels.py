"""The "not me" labels of Aouayeb et al.'s six regions (MLSP 2019, sec. 3.2; docs/data.md, regions).

The regions themselves (names, order, sizes): mer_jax/data/region_geometry.py.

"Not me" labels (sec. 3.2): each region's CNN is trained on its own label
vector, the clip's class where the region takes part in the expression and an
extra class, "not me" (index ``num_classes``), where it does not. The paper
takes which regions answer for which emotion from its Fig. 3, which its text
does not give; here they come from what the data sets carry:

- CASME II and SAMM code the action units (AUs) of every clip: a region takes
  part when one of the clip's AUs moves the face inside it
  (:data:`ACTION_UNIT_REGIONS`, from the appearance changes that the FACS
  manual describes for each AU: Ekman, Friesen & Hager, Facial Action Coding
  System, 2002).
- SMIC codes no AUs: a region takes part when the clip's emotion's prototype
  AUs move it (:data:`EMOTION_ACTION_UNITS`, the EMFACS prototypes of the FACS
  Investigator's Guide, Ekman, Friesen & Hager 2002; :data:`EMOTION_REGIONS`
  is their union through the AU table). A CASME II or SAMM clip whose AU cell
  is blank, or holds no AU of the table, falls back to this table as well, and
  the loader warns once, naming a few.

Both tables can be overridden from ``config.data.region_tables``
(:func:`tables`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from mer_jax.data.region_geometry import REGION_NAMES


_EYES = ("left_eye_brow", "right_eye_brow")
_CHEEKS = ("left_cheek", "right_cheek")
_NOSE = ("nose",)
_MOUTH = ("mouth",)

# AU number -> the regions whose box it moves, both sides (FACS manual, Ekman, Friesen & Hager 2002:
# each AU's appearance changes). Head (51-58) and other non-facial codes are not in the table: they
# place a clip in no region.
ACTION_UNIT_REGIONS: dict[str, tuple[str, ...]] = {
    "1": _EYES,  # inner brow raiser
    "2": _EYES,  # outer brow raiser
    "4": _EYES,  # brow lowerer
    "5": _EYES,  # upper lid raiser
    "6": _EYES + _CHEEKS,  # cheek raiser: crow's feet and lower-lid bulge; infraorbital triangle raised
    "7": _EYES,  # lid tightener
    "9": _EYES + _NOSE,  # nose wrinkler: wrinkles beside the nose; medial brows pulled down
    "10": _NOSE + _MOUTH,  # upper lip raiser: upper lip raised; nostril wings widened and raised
    "11": _CHEEKS + _MOUTH,  # nasolabial furrow deepener
    "12": _CHEEKS + _MOUTH,  # lip corner puller: corners up and back; nasolabial furrow deepened
    "13": _CHEEKS + _MOUTH,  # sharp lip puller: cheeks puffed
    "14": _CHEEKS + _MOUTH,  # dimpler: dimple in the cheek beside the lip corner
    "15": _MOUTH,  # lip corner depressor
    "16": _MOUTH,  # lower lip depressor
    "17": _MOUTH,  # chin raiser: lower lip pushed up
    "18": _MOUTH,  # lip pucker
    "20": _MOUTH,  # lip stretcher
    "22": _MOUTH,  # lip funneler
    "23": _MOUTH,  # lip tightener
    "24": _MOUTH,  # lip pressor
    "25": _MOUTH,  # lips part
    "26": _MOUTH,  # jaw drop
    "27": _MOUTH,  # mouth stretch
    "28": _MOUTH,  # lip suck
    "38": _NOSE,  # nostril dilator
    "39": _NOSE,  # nostril compressor
    "41": _EYES,  # lid droop
    "42": _EYES,  # slit
    "43": _EYES,  # eyes closed
    "44": _EYES,  # squint
    "45": _EYES,  # blink
    "46": _EYES,  # wink
    "61": _EYES,  # eyes turn left
    "62": _EYES,  # eyes turn right
    "63": _EYES,  # eyes up
    "64": _EYES,  # eyes down
}

# A unilateral code's side is the subject's (FACS): L12 is the subject's left lip corner, which is on the
# image's right in an unmirrored frame, so it drops the image-left regions.
_DROPPED_BY_SIDE = {"L": "left_", "R": "right_"}

_SADNESS = ("1", "4", "15")
_FEAR = ("1", "2", "4", "5", "20", "26")
_DISGUST = ("9", "10", "16")
_ANGER = ("4", "5", "7", "23")
_HAPPINESS = ("6", "12")
# Emotion (lower case, as the data sets write it) -> prototype AUs: the EMFACS prototypes of the FACS
# Investigator's Guide (Ekman, Friesen & Hager 2002), main variant of each; contempt R12A+R14A without its
# side (an emotion label does not say which); CASME II's repression from the AUs its authors coded it by
# (Yan et al., PLoS ONE 2014: AU14, 15, 17, 24); SMIC's classes from the emotions their stimuli induced
# (Li et al., FG 2013: negative = sad, fear, disgust; anger added, which moves no other region).
EMOTION_ACTION_UNITS: dict[str, tuple[str, ...]] = {
    "happiness": _HAPPINESS,
    "positive": _HAPPINESS,
    "surprise": ("1", "2", "5", "26"),
    "sadness": _SADNESS,
    "fear": _FEAR,
    "disgust": _DISGUST,
    "anger": _ANGER,
    "contempt": ("12", "14"),
    "repression": ("14", "15", "17", "24"),
    "negative": tuple(dict.fromkeys(_SADNESS + _FEAR + _DISGUST + _ANGER)),
}
# Labels that name no emotion (CASME II 'others', SAMM 'Other'): any region may move.
_EVERY_REGION_LABELS = ("others", "other")
# Data sets that code no AUs: their blank AU cells are expected, not warned about.
DATASETS_WITHOUT_ACTION_UNITS = ("smic",)

# One AU as the sheets write it: an optional 'AU', an optional side or part prefix (L/R: the subject's
# left/right; T/B: top/bottom; U: unilateral, side not given), the number, an optional intensity A-E.
_CODE = re.compile(r"(?:AU)?([LRTBU]?)(?:AU)?(\d+)[A-E]?")
_SEPARATORS = re.compile(r"[+,;]")


def parse_action_units(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The AUs of an AU cell as (side, number) pairs, and the parts that are not AU codes.

    Reads the forms CASME II and SAMM write: '4+L10', 'L12+R14', 'AU4+AU7',
    '12B' (intensity), 'R20B', with '+', ',' or ';' between codes, any case and
    spacing; brackets and question marks (uncertain codes) are ignored. side is
    'L' or 'R' for a unilateral code of the subject's left or right, '' otherwise.
    """
    pairs, unparsed = [], []
    for part in _SEPARATORS.split(text or ""):
        token = re.sub(r"[\s()?]", "", part).upper()
        if not token:
            continue
        match = _CODE.fullmatch(token)
        if match is None:
            unparsed.append(part.strip())
            continue
        side, number = match.groups()
        pairs.append((side if side in _DROPPED_BY_SIDE else "", str(int(number))))
    return pairs, unparsed


def _regions_of(pairs: Sequence[tuple[str, str]], table: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The regions (REGION_NAMES order) that the (side, number) AUs ``pairs`` move through ``table``.

    A unilateral code moves only its side's eye and cheek region (the
    subject's left is the image's right), and the nose and mouth.
    """
    found = set()
    for side, number in pairs:
        dropped = _DROPPED_BY_SIDE.get(side)
        found.update(r for r in table.get(number, ()) if dropped is None or not r.startswith(dropped))
    return tuple(r for r in REGION_NAMES if r in found)


def action_unit_regions(text: str, table: Mapping[str, Sequence[str]] = ACTION_UNIT_REGIONS) -> tuple[str, ...]:
    """The regions that the AUs of the cell ``text`` move (REGION_NAMES order); () when none is in ``table``."""
    return _regions_of(parse_action_units(text)[0], table)


EMOTION_REGIONS: dict[str, tuple[str, ...]] = {
    **{e: _regions_of([("", c) for c in codes], ACTION_UNIT_REGIONS) for e, codes in EMOTION_ACTION_UNITS.items()},
    **dict.fromkeys(_EVERY_REGION_LABELS, REGION_NAMES),
}


@dataclasses.dataclass(frozen=True)
class RegionTables:
    """The two tables: AU number -> regions, emotion (lower case) -> regions."""

    action_units: Mapping[str, tuple[str, ...]]
    emotions: Mapping[str, tuple[str, ...]]


def tables(overrides: Mapping[str, Any] | None = None) -> RegionTables:
    """The default tables with ``overrides`` applied (``config.data.region_tables``).

    overrides: {'action_units': {'12': ['mouth'], ...}, 'emotions': {'surprise':
      ['left_eye_brow', 'right_eye_brow'], ...}}; each entry given replaces
      the default's entry of that AU or emotion ([] for none), the others stay.

    Raises:
      ValueError: an unknown key, a region not in REGION_NAMES, an AU key that
        is not a number (naming it).
    """
    overrides = dict(overrides.to_dict() if hasattr(overrides, "to_dict") else overrides or {})
    unknown = set(overrides) - {"action_units", "emotions"}
    if unknown:
        raise ValueError(
            f"config.data.region_tables has unknown key(s) {sorted(unknown)}; valid: action_units, emotions"
        )
    action_units = dict(ACTION_UNIT_REGIONS)
    emotions = dict(EMOTION_REGIONS)
    for table_name, table in (("action_units", action_units), ("emotions", emotions)):
        for key, regions in dict(overrides.get(table_name, {})).items():
            key = str(key).strip().lower()
            if table_name == "action_units" and not key.isdigit():
                raise ValueError(f"config.data.region_tables.action_units: key {key!r} is not an AU number")
            bad = [r for r in regions if r not in REGION_NAMES]
            if bad:
                raise ValueError(
                    f"config.data.region_tables.{table_name}[{key!r}]: unknown region(s) {bad}; regions: {REGION_NAMES}"
                )
            table[str(int(key)) if table_name == "action_units" else key] = tuple(regions)
    return RegionTables(action_units, emotions)


def region_labels(
    label: np.ndarray,
    num_classes: int,
    action_units: Sequence[str],
    emotions: Sequence[str],
    datasets: Sequence[str],
    sample_ids: Sequence[str],
    region_tables: RegionTables | None = None,
) -> np.ndarray:
    """(N, 6) int32 region labels: ``label`` where region r takes part in clip n's expression, else
    ``num_classes`` ("not me"; Aouayeb et al., MLSP 2019, sec. 3.2).

    A clip's regions are those its AU cell moves (:func:`action_unit_regions`),
    else, when the cell places it in no region (SMIC, blank or unreadable
    cells), those of its emotion (``emotions[n]``, the data set's own label).
    Clips of a data set that codes AUs taking the second way are counted and
    named in one warning; cells with parts that are not AU codes (ignored) in
    another.

    Raises:
      ValueError: an emotion that the emotion table lacks (naming the clip).
    """
    region_tables = region_tables or tables()
    members = np.zeros((len(label), len(REGION_NAMES)), bool)
    fallbacks, unreadable = [], []
    clips = zip(action_units, emotions, datasets, sample_ids, strict=True)
    for n, (text, emotion, dataset, sample_id) in enumerate(clips):
        pairs, ignored = parse_action_units(text)
        regions = _regions_of(pairs, region_tables.action_units)
        if ignored:
            unreadable.append(f"{sample_id} ({text!r})")
        if not regions:
            key = emotion.strip().lower()
            if key not in region_tables.emotions:
                raise ValueError(
                    f"{sample_id}: emotion {emotion!r} is not in the emotion -> region table "
                    f"({sorted(region_tables.emotions)}) and its action units {text!r} place it in no region; "
                    "add it to config.data.region_tables.emotions"
                )
            regions = region_tables.emotions[key]
            if dataset not in DATASETS_WITHOUT_ACTION_UNITS:
                fallbacks.append(f"{sample_id} ({text!r})")
        members[n] = [r in regions for r in REGION_NAMES]
    _warn(unreadable, "have action unit cells with parts that are not AU codes, ignored")
    _warn(fallbacks, "have blank action units or none in the AU -> region table; their regions come from the "
          "emotion table")
    return np.where(members, np.asarray(label, np.int32)[:, None], np.int32(num_classes)).astype(np.int32)


def _warn(clips: list[str], what: str) -> None:
    if clips:
        logging.warning("%d clips %s: %s", len(clips), what, ", ".join(clips[:5]) + (" ..." if len(clips) > 5 else ""))
