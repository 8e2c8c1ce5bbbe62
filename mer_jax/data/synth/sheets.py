"""The CASME II and SAMM coding sheets, written as the datasets ship them (docs/design.md, Data).

  - CASME II ``CASME2-coding-20140508.xlsx``: header in row 1, Subject,
    Filename, (blank), OnsetFrame, ApexFrame, OffsetFrame, (blank), Action
    Units, Estimated Emotion; subjects as numbers (1 for sub01); '/' in the
    apex cell of clips whose apex is not marked.
  - SAMM ``SAMM_Micro_FACS_Codes_v2.xlsx``: 13 rows of preamble, header in
    row 14: Subject, Filename, Inducement Code, Onset Frame, Apex Frame,
    Offset Frame, Duration, Micro, Action Units, Estimated Emotion, Objective
    Classes, Notes. Duration is the clip's frame count; the objective class
    follows the emotion (Davison et al., IEEE TAC 2018: I happiness ... VII others).

Rows are sorted by subject and clip.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import openpyxl

from mer_jax.data.annotations import CASME2_SHEET, SAMM_SHEET
from mer_jax.data.synth.plan import PlannedClip

CASME2_HEADER = (
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units", "Estimated Emotion",
)
SAMM_HEADER = (
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Micro",
    "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
)
SAMM_PREAMBLE_ROWS = 13
_OBJECTIVE_CLASS = {
    "happiness": 1, "surprise": 2, "anger": 3, "disgust": 4, "sadness": 5, "fear": 6, "contempt": 7, "other": 7,
}


def _save(path: Path, rows: Iterable[Iterable[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


def _sorted(clips: Iterable[PlannedClip]) -> list[PlannedClip]:
    return sorted(clips, key=lambda c: (c.subject, c.clip))


def write_casme2_sheet(folder: Path, clips: Iterable[PlannedClip]) -> Path:
    """Write ``folder / CASME2-coding-20140508.xlsx`` for the CASME II ``clips``; returns its path."""
    rows = [CASME2_HEADER] + [
        (
            int(c.subject.removeprefix("sub")), c.clip, None, c.onset, c.apex if c.apex_marked else "/", c.offset,
            None, "+".join(c.action_units), c.emotion,
        )
        for c in _sorted(clips)
    ]
    return _save(folder / CASME2_SHEET, rows)


def write_samm_sheet(folder: Path, clips: Iterable[PlannedClip], seed: int) -> Path:
    """Write ``folder / SAMM_Micro_FACS_Codes_v2.xlsx`` for the SAMM ``clips``; returns its path."""
    preamble = [
        ("SAMM Micro-Facial Movement Dataset: FACS codes (synthetic stand-in)",),
        (f"Written by mer_jax.data.synth with seed {seed}: animated photographs, not the real SAMM data.",),
        ("Frames are numbered as in the clip folders; Duration is the number of frames from onset to offset.",),
        ("Objective classes: I happiness, II surprise, III anger, IV disgust, V sadness, VI fear, VII other.",),
    ]
    preamble += [()] * (SAMM_PREAMBLE_ROWS - len(preamble))
    rows = preamble + [SAMM_HEADER] + [
        (
            c.subject, c.clip, int(c.clip.split("_")[1]), c.onset, c.apex, c.offset, c.offset - c.onset + 1,
            "Micro - 1/2", "+".join(c.action_units), c.emotion, _OBJECTIVE_CLASS[c.emotion.lower()], None,
        )
        for c in _sorted(clips)
    ]
    return _save(folder / SAMM_SHEET, rows)
