"""Clip annotations read from the CASME II and SAMM coding sheets and the SMIC folder tree.

The files are read as the datasets ship them (docs/design.md, Data):
  - CASME II: ``CASME2-coding-20140508.xlsx``, header in row 1: Subject, Filename,
    (blank), OnsetFrame, ApexFrame, OffsetFrame, (blank), Action Units, Estimated
    Emotion; some apex cells are '/'.
  - SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx``, 13 rows of preamble, header in row 14:
    Subject, Filename, Inducement Code, Onset Frame, Apex Frame, Offset Frame,
    Duration, Micro, Action Units, Estimated Emotion, Objective Classes, Notes.
  - SMIC: ``HS/s1/micro/{negative,positive,surprise}/s1_ne_01/*.bmp``, no sheet, no apex.

Errors follow docs/design.md, Conventions: a missing file raises FileNotFoundError
saying what belongs there; a row or clip that cannot be read, or that repeats
an earlier one's subject and clip, is skipped and reported in the returned
``problems`` list, naming the file and row, never dropped silently
(docs/data.md, Faults and what a build does with them).
"""

from __future__ import annotations

import dataclasses
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from mer_jax.data.labels import megc2019_class

CASME2_SHEET = "CASME2-coding-20140508.xlsx"
SAMM_SHEET = "SAMM_Micro_FACS_Codes_v2.xlsx"

# (dataset, subject, clip) left out of MEGC2019 (docs/design.md, Data).
MEGC2019_EXCLUDED = frozenset(
    {
        ("casme2", "sub04", "EP12_01f"),
        ("casme2", "sub05", "EP09_05f"),
        ("casme2", "sub24", "EP02_07"),
    }
)

# Cell text meaning "not annotated" in apex/offset columns: CASME II writes '/', SAMM -1 or blank.
_NOT_ANNOTATED = frozenset({"", "/", "-1"})


@dataclasses.dataclass(frozen=True)
class ClipAnnotation:
    """One annotated clip.

    dataset: 'casme2', 'samm' or 'smic'.
    subject: 'sub01' (CASME II), '006' (SAMM), 's1' (SMIC).
    clip: the clip folder name ('EP02_01f', '006_1_2', 's1_ne_01').
    onset, apex, offset: frame numbers as in the frame file names; apex/offset None where not annotated.
    emotion: the dataset's own label as written ('repression', 'Anger', 'negative').
    action_units: FACS codes as written ('4+L10'), '' where none (SMIC).
    source: file and row (or clip folder) it came from, for messages.
    """

    dataset: str
    subject: str
    clip: str
    onset: int
    apex: int | None
    offset: int | None
    emotion: str
    action_units: str
    source: str


@dataclasses.dataclass(frozen=True)
class _SheetFormat:
    dataset: str
    description: str
    subject_prefix: str
    subject_digits: int


_CASME2 = _SheetFormat("casme2", f"the CASME II coding sheet {CASME2_SHEET}", "sub", 2)
_SAMM = _SheetFormat("samm", f"the SAMM coding sheet {SAMM_SHEET}", "", 3)

# Columns read, by header text with spaces removed and lower-cased (CASME II
# 'OnsetFrame' and SAMM 'Onset Frame' are both 'onsetframe').
_COLUMNS = (
    "subject", "filename", "onsetframe", "apexframe", "offsetframe", "actionunits", "estimatedemotion"
)
# Columns a sheet may lack, and what is done instead: every row reads as if the cell were blank.
_OPTIONAL_COLUMNS = {
    "apexframe": "every apex is spotted (Xia et al., TMM 2019, eq. 5), as for a '/' cell",
    "offsetframe": "every clip ends at the last frame in its folder",
    "actionunits": "action units are left empty",
}


class _RowError(ValueError):
    """A sheet row or SMIC clip that cannot be read; it is skipped and reported."""


def _text(value: object) -> str:
    """Cell value as stripped text; whole-number floats without '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _frame(value: object, header: str, optional: bool) -> int | None:
    text = _text(value)
    if optional and text in _NOT_ANNOTATED:
        return None
    if not text:
        raise _RowError(f"{header} is blank")
    if not (text.isascii() and text.isdigit()):
        raise _RowError(f"{header} {value!r} is not a frame number")
    return int(text)


def _subject(value: object, header: str, sheet: _SheetFormat) -> str:
    text = _text(value)
    if sheet.subject_prefix and text.lower().startswith(sheet.subject_prefix):
        text = text[len(sheet.subject_prefix) :]
    if not (text.isascii() and text.isdigit()):
        raise _RowError(f"{header} {value!r} is not a subject number")
    return f"{sheet.subject_prefix}{int(text):0{sheet.subject_digits}d}"


def _load_rows(path: Path, description: str) -> list[tuple]:
    if not path.is_file():
        raise FileNotFoundError(f"expected {description} at {path}")
    try:
        workbook = openpyxl.load_workbook(path, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as error:
        raise ValueError(f"{path} is not a readable .xlsx workbook ({description}): {error}") from error
    return list(workbook.worksheets[0].iter_rows(values_only=True))


def _header_columns(header: Sequence[object], path: Path) -> tuple[dict[str, tuple[int, str]], list[str]]:
    """(column key -> (index, header text), problems): optional columns missing are left out and
    reported; blank header cells are ignored.

    Raises:
      ValueError: a required column is missing, naming it and the header found.
    """
    found = {}
    for index, value in enumerate(header):
        text = _text(value)
        if text:
            found.setdefault(re.sub(r"\s+", "", text).lower(), (index, text))
    missing = [key for key in _COLUMNS if key not in found and key not in _OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(
            f"{path}: header row lacks column(s) {', '.join(missing)} "
            f"(matched ignoring case and spaces); found {[_text(v) for v in header if _text(v)]}"
        )
    problems = [
        f"{path.name}: header row lacks column {key} (matched ignoring case and spaces); {repair}"
        for key, repair in _OPTIONAL_COLUMNS.items()
        if key not in found
    ]
    return {key: found[key] for key in _COLUMNS if key in found}, problems


def _parse_row(
    row: Sequence[object], columns: dict[str, tuple[int, str]], sheet: _SheetFormat, source: str
) -> ClipAnnotation:
    def cell(key: str) -> tuple[object, str]:
        if key not in columns:  # an optional column the sheet lacks: read as blank
            return None, key
        index, header = columns[key]
        return row[index], header

    clip = _text(cell("filename")[0])
    if not clip:
        raise _RowError(f"{cell('filename')[1]} is empty")
    emotion = _text(cell("estimatedemotion")[0])
    try:
        megc2019_class(sheet.dataset, emotion)
    except ValueError as error:
        raise _RowError(str(error)) from error
    return ClipAnnotation(
        dataset=sheet.dataset,
        subject=_subject(*cell("subject"), sheet),
        clip=clip,
        onset=_frame(*cell("onsetframe"), optional=False),
        apex=_frame(*cell("apexframe"), optional=True),
        offset=_frame(*cell("offsetframe"), optional=True),
        emotion=emotion,
        action_units=_text(cell("actionunits")[0]),
        source=source,
    )


def _read_sheet(path: str | os.PathLike, sheet: _SheetFormat) -> tuple[list[ClipAnnotation], list[str]]:
    path = Path(path)
    rows = _load_rows(path, sheet.description)
    header_index = next(
        (i for i, row in enumerate(rows) if any(_text(value).lower() == "subject" for value in row)), None
    )
    if header_index is None:
        raise ValueError(f"{path}: no header row with a 'Subject' cell ({sheet.description})")
    columns, problems = _header_columns(rows[header_index], path)
    annotations = []
    for index in range(header_index + 1, len(rows)):
        row = rows[index]
        if all(_text(value) == "" for value in row):
            continue
        source = f"{path.name} row {index + 1}"
        try:
            annotations.append(_parse_row(row, columns, sheet, source))
        except _RowError as error:
            problems.append(f"{source}: {error}; row skipped")
    return _first_of_each(annotations, problems)


def _first_of_each(
    annotations: list[ClipAnnotation], problems: list[str]
) -> tuple[list[ClipAnnotation], list[str]]:
    """The first annotation of each subject and clip; every later one is dropped and named in ``problems``.

    Rows repeat when sheets are merged by hand; two examples of one clip would
    also stop TFDS (one key per example).
    """
    first: dict[tuple[str, str], ClipAnnotation] = {}
    problems = list(problems)
    for annotation in annotations:
        kept = first.setdefault((annotation.subject, annotation.clip), annotation)
        if kept is not annotation:
            same = dataclasses.replace(annotation, source="") == dataclasses.replace(kept, source="")
            problems.append(
                f"{annotation.source}: {annotation.subject} {annotation.clip} again "
                f"({'the same as' if same else 'differing from'} {kept.source}, which is kept); "
                f"{'clip' if annotation.dataset == 'smic' else 'row'} skipped"
            )
    return list(first.values()), problems


def read_casme2_sheet(path: str | os.PathLike) -> tuple[list[ClipAnnotation], list[str]]:
    """Read the CASME II coding sheet; returns (annotations, problems).

    The header row is the first with a cell 'Subject' (row 1 as shipped); columns
    are found by header name (blank header cells tolerated); Subject 1 or
    '01' becomes 'sub01'; apex '/' becomes None. Rows that cannot be read (a
    blank or non-numeric onset, an empty filename, an unknown emotion, ...)
    are skipped and described in ``problems`` with file and row number; so is
    a row repeating an earlier row's subject and clip (the first is kept).
    Without an ApexFrame, OffsetFrame or Action Units column every row reads
    as if that cell were blank, and ``problems`` says so; without another
    column the sheet cannot be read (ValueError naming it).
    """
    return _read_sheet(path, _CASME2)


def read_samm_sheet(path: str | os.PathLike) -> tuple[list[ClipAnnotation], list[str]]:
    """Read the SAMM coding sheet; returns (annotations, problems).

    The header row is the first with a cell 'Subject' (row 14 as shipped, after
    13 rows of preamble), so a different preamble still works. Subject 6 becomes '006'; apex -1 or blank becomes
    None. Unreadable rows are reported as in :func:`read_casme2_sheet`.
    """
    return _read_sheet(path, _SAMM)


def _natural_key(path: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def _subdirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=_natural_key)


def _scan_clip(clip_dir: Path, subject: str, emotion: str, root: Path) -> ClipAnnotation:
    source = clip_dir.relative_to(root).as_posix()
    frames = [p for p in clip_dir.iterdir() if p.is_file() and p.suffix.lower() == ".bmp"]
    if not frames:
        raise _RowError(f"{source}: clip folder holds no .bmp frames; clip skipped")
    numbers = []
    for frame in frames:
        match = re.search(r"(\d+)$", frame.stem)
        if match is None:
            raise _RowError(f"{source}: frame file {frame.name!r} has no frame number; clip skipped")
        numbers.append(int(match.group(1)))
    return ClipAnnotation(
        dataset="smic",
        subject=subject,
        clip=clip_dir.name,
        onset=min(numbers),
        apex=None,
        offset=max(numbers),
        emotion=emotion,
        action_units="",
        source=source,
    )


def scan_smic(root: str | os.PathLike) -> tuple[list[ClipAnnotation], list[str]]:
    """Scan SMIC's high-speed clips under ``root`` (the folder containing HS).

    Layout HS/<subject>/micro/<class>/<clip>/*.bmp. Onset and offset are the
    first and last frame numbers in the clip folder (numbers at the end of the
    file names, compared numerically); SMIC has no apex (None) and no action
    units (''). The emotion is the class folder name. Clip folders without
    frames and unknown class folders are skipped and reported in ``problems``;
    so is a clip folder of a subject's that another class folder already
    holds (the first, in class order, is kept).
    """
    root = Path(root)
    hs = root / "HS"
    if not hs.is_dir():
        raise FileNotFoundError(
            f"expected the SMIC high-speed folder HS (HS/s1/micro/negative/s1_ne_01/*.bmp) under {root}"
        )
    annotations, problems = [], []
    for subject_dir in _subdirs(hs):
        micro = subject_dir / "micro"
        if not micro.is_dir():
            continue
        for class_dir in _subdirs(micro):
            try:
                megc2019_class("smic", class_dir.name)
            except ValueError as error:
                problems.append(f"{class_dir.relative_to(root).as_posix()}: {error}; its clips are skipped")
                continue
            for clip_dir in _subdirs(class_dir):
                try:
                    annotations.append(_scan_clip(clip_dir, subject_dir.name, class_dir.name, root))
                except _RowError as error:
                    problems.append(str(error))
    return _first_of_each(annotations, problems)


def megc2019_members(annotations: Iterable[ClipAnnotation]) -> list[ClipAnnotation]:
    """The clips of the MEGC2019 composite (docs/design.md, Data; Xia et al., TIP 2020, sec. V-B), in input order.

    Keeps clips whose emotion has a MEGC2019 class (see :mod:`mer_jax.data.labels`)
    and that are not in ``MEGC2019_EXCLUDED``. On the real data the composite is
    442 clips from 68 subjects, negative/positive/surprise:
      SMIC 70/51/43 (16 subjects), CASME II 88/32/25 (24 subjects),
      SAMM 92/26/15 (28 subjects).
    The official MEGC2019 list file has 441 rows: SAMM 032_3_1 is missing from it
    but belongs to the composite.

    Raises:
      ValueError: an emotion its dataset does not use.
    """
    return [
        a
        for a in annotations
        if (a.dataset, a.subject, a.clip) not in MEGC2019_EXCLUDED
        and megc2019_class(a.dataset, a.emotion) is not None
    ]
