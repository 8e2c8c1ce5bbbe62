import dataclasses

import cv2
import numpy as np
import openpyxl
import pytest

from mer_jax.data.annotations import (
    CASME2_SHEET,
    MEGC2019_EXCLUDED,
    SAMM_SHEET,
    ClipAnnotation,
    megc2019_members,
    read_casme2_sheet,
    read_samm_sheet,
    scan_smic,
)

CASME2_HEADER = [
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units", "Estimated Emotion"
]
SAMM_HEADER = [
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Micro",
    "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
]


def _write_xlsx(path, rows):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    # A second sheet that must not be read.
    workbook.create_sheet("other").append(["Subject", "Filename"])
    workbook.save(path)
    return path


def _casme2_rows():
    return [
        CASME2_HEADER,
        [1, "EP02_01f", None, 46, 59, 86, None, "12", "happiness"],  # row 2
        ["02", "EP03_02", None, 21, "/", 61, None, "4+L10", " Repression "],  # row 3: '/' apex
        [3, "EP01_01", None, "abc", 10, 20, None, "4", "disgust"],  # row 4: bad onset
        [],  # row 5: blank, ignored
        [4, None, None, 1, 2, 3, None, "4", "disgust"],  # row 6: missing filename
        [5, "EP09_05f", None, 100.0, 120, 140, None, 14, "angry"],  # row 7: unknown emotion
        [26, "EP16_04", None, "5", "7", "9", None, "R12", "others"],  # row 8
    ]


def _samm_rows(preamble=13):
    rows = [["SAMM micro-expression FACS codes"]] + [[None]] * (preamble - 2) + [["Version 2", None, "notes"]]
    return rows + [
        SAMM_HEADER,
        [6, "006_1_2", 1, 1024, 1040, 1060, 37, "Micro - 1/2", "4+7", "Anger", 3, None],
        ["007", "007_3_1", 3, 2000, -1, 2050, 51, "Micro - 1/2", "12", "Happiness", 1, None],
        [11, "011_2_5", 2, 300, None, 330, 31, "Micro - 1/2", "1+2", "Surprise", 4, "apex unclear"],
        [16, "016_7_2", 7, "n/a", 50, 60, 11, "Micro - 1/2", "14", "Contempt", 2, None],
        ["x", "018_3_1", 3, 10, 20, 30, 21, "Micro - 1/2", "9", "Disgust", 5, None],
        [32, "032_3_1", 3, 5, 6, 7.0, 3, "Micro - 1/2", "L12", "Other", 7, None],
    ]


def test_casme2_sheet(tmp_path):
    path = _write_xlsx(tmp_path / CASME2_SHEET, _casme2_rows())
    annotations, problems = read_casme2_sheet(path)

    assert [(a.subject, a.clip) for a in annotations] == [
        ("sub01", "EP02_01f"), ("sub02", "EP03_02"), ("sub26", "EP16_04")
    ]
    first, second, third = annotations
    assert first == ClipAnnotation(
        "casme2", "sub01", "EP02_01f", 46, 59, 86, "happiness", "12", f"{CASME2_SHEET} row 2"
    )
    assert (second.onset, second.apex, second.offset) == (21, None, 61)
    assert second.emotion == "Repression" and second.action_units == "4+L10"
    assert (third.onset, third.apex, third.offset, third.action_units) == (5, 7, 9, "R12")

    assert len(problems) == 3
    assert f"{CASME2_SHEET} row 4" in problems[0] and "OnsetFrame 'abc'" in problems[0]
    assert f"{CASME2_SHEET} row 6" in problems[1] and "Filename" in problems[1]
    assert f"{CASME2_SHEET} row 7" in problems[2] and "'angry'" in problems[2]


def test_casme2_columns_found_by_name_not_position(tmp_path):
    rows = _casme2_rows()
    order = [8, 7, 5, 6, 4, 3, 2, 1, 0]  # reversed: blank columns move too
    shuffled = [[row[i] if i < len(row) else None for i in order] for row in rows]
    expected, expected_problems = read_casme2_sheet(_write_xlsx(tmp_path / "a.xlsx", rows))
    got, got_problems = read_casme2_sheet(_write_xlsx(tmp_path / "b.xlsx", shuffled))
    assert [dataclasses.replace(a, source="") for a in got] == [
        dataclasses.replace(a, source="") for a in expected
    ]
    assert len(got_problems) == len(expected_problems) == 3


def test_casme2_missing_column(tmp_path):
    rows = _casme2_rows()
    rows[0] = [None if h == "OnsetFrame" else h for h in rows[0]]
    with pytest.raises(ValueError, match=f"{CASME2_SHEET}: header row lacks column.s. onsetframe"):
        read_casme2_sheet(_write_xlsx(tmp_path / CASME2_SHEET, rows))


def test_casme2_missing_optional_column_reads_as_blank(tmp_path):
    rows = _casme2_rows()
    rows[0] = [None if h in ("ApexFrame", "Action Units") else h for h in rows[0]]
    expected, expected_problems = read_casme2_sheet(_write_xlsx(tmp_path / CASME2_SHEET, _casme2_rows()))
    got, problems = read_casme2_sheet(_write_xlsx(tmp_path / CASME2_SHEET, rows))
    assert got == [dataclasses.replace(a, apex=None, action_units="") for a in expected]
    assert problems[:2] == [
        f"{CASME2_SHEET}: header row lacks column apexframe (matched ignoring case and spaces); "
        "every apex is spotted (Xia et al., TMM 2019, eq. 5), as for a '/' cell",
        f"{CASME2_SHEET}: header row lacks column actionunits (matched ignoring case and spaces); "
        "action units are left empty",
    ]
    assert len(problems) == 2 + len(expected_problems)


def test_repeated_rows_keep_the_first_and_name_the_others(tmp_path):
    rows = _casme2_rows()
    changed = rows[2][:3] + [22] + rows[2][4:]  # row 3's clip, another onset
    rows += [rows[1], ["01", "EP02_01f", None, 46, 59, 86, None, "12", "happiness"], changed]  # rows 9, 10, 11
    annotations, problems = read_casme2_sheet(_write_xlsx(tmp_path / CASME2_SHEET, rows))
    assert [(a.subject, a.clip, a.source) for a in annotations] == [
        ("sub01", "EP02_01f", f"{CASME2_SHEET} row 2"),
        ("sub02", "EP03_02", f"{CASME2_SHEET} row 3"),
        ("sub26", "EP16_04", f"{CASME2_SHEET} row 8"),
    ]
    assert problems[3:] == [
        f"{CASME2_SHEET} row 9: sub01 EP02_01f again (the same as {CASME2_SHEET} row 2, which is kept); row skipped",
        f"{CASME2_SHEET} row 10: sub01 EP02_01f again (the same as {CASME2_SHEET} row 2, which is kept); row skipped",
        f"{CASME2_SHEET} row 11: sub02 EP03_02 again (differing from {CASME2_SHEET} row 3, which is kept); "
        "row skipped",
    ]


def test_blank_onset_is_named(tmp_path):
    rows = _casme2_rows()
    rows[1][3] = None
    _, problems = read_casme2_sheet(_write_xlsx(tmp_path / CASME2_SHEET, rows))
    assert problems[0] == f"{CASME2_SHEET} row 2: OnsetFrame is blank; row skipped"


def test_samm_sheet(tmp_path):
    path = _write_xlsx(tmp_path / SAMM_SHEET, _samm_rows())
    annotations, problems = read_samm_sheet(path)

    assert [(a.subject, a.clip, a.onset, a.apex, a.offset, a.emotion) for a in annotations] == [
        ("006", "006_1_2", 1024, 1040, 1060, "Anger"),
        ("007", "007_3_1", 2000, None, 2050, "Happiness"),
        ("011", "011_2_5", 300, None, 330, "Surprise"),
        ("032", "032_3_1", 5, 6, 7, "Other"),
    ]
    assert annotations[0].source == f"{SAMM_SHEET} row 15"
    assert annotations[0].action_units == "4+7"
    assert all(a.dataset == "samm" for a in annotations)

    assert len(problems) == 2
    assert f"{SAMM_SHEET} row 18" in problems[0] and "Onset Frame 'n/a'" in problems[0]
    assert f"{SAMM_SHEET} row 19" in problems[1] and "Subject 'x'" in problems[1]


def test_samm_header_row_is_searched(tmp_path):
    annotations, problems = read_samm_sheet(_write_xlsx(tmp_path / "short.xlsx", _samm_rows(preamble=9)))
    assert len(annotations) == 4 and len(problems) == 2
    assert annotations[0].source == "short.xlsx row 11"


def test_samm_without_header_row(tmp_path):
    rows = [r for r in _samm_rows() if r and r[0] != "Subject"]
    with pytest.raises(ValueError, match="'Subject'"):
        read_samm_sheet(_write_xlsx(tmp_path / SAMM_SHEET, rows))


def test_missing_sheets_name_what_belongs_there(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"CASME II coding sheet {CASME2_SHEET} at .*{tmp_path.name}"):
        read_casme2_sheet(tmp_path / CASME2_SHEET)
    with pytest.raises(FileNotFoundError, match=f"SAMM coding sheet {SAMM_SHEET}"):
        read_samm_sheet(tmp_path / SAMM_SHEET)


def test_unreadable_workbook(tmp_path):
    path = tmp_path / CASME2_SHEET
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .xlsx workbook"):
        read_casme2_sheet(path)


def _write_frames(folder, numbers):
    folder.mkdir(parents=True)
    for number in numbers:
        assert cv2.imwrite(str(folder / f"image{number}.bmp"), np.full((4, 4, 3), number % 256, np.uint8))


def test_scan_smic(tmp_path):
    hs = tmp_path / "HS"
    _write_frames(hs / "s1" / "micro" / "negative" / "s1_ne_01", [998, 1002, 1000, 999])
    _write_frames(hs / "s1" / "micro" / "positive" / "s1_po_01", [7, 8, 9])
    _write_frames(hs / "s1" / "non_micro" / "s1_no_01", [1, 2])  # not a micro-expression
    _write_frames(hs / "s10" / "micro" / "surprise" / "s10_sur_02", [50, 51])
    (hs / "s10" / "micro" / "surprise" / "s10_sur_02" / "Thumbs.db").write_bytes(b"x")
    (hs / "s2" / "micro" / "negative" / "s2_ne_03").mkdir(parents=True)  # no frames
    _write_frames(hs / "s2" / "micro" / "happy" / "s2_ha_01", [1])  # not a SMIC class
    (hs / "s3").mkdir()  # a subject without micro-expressions
    _write_frames(hs / "s1" / "micro" / "surprise" / "s1_ne_01", [5, 6])  # s1_ne_01 again, in another class

    annotations, problems = scan_smic(tmp_path)

    assert [(a.subject, a.clip, a.onset, a.apex, a.offset, a.emotion) for a in annotations] == [
        ("s1", "s1_ne_01", 998, None, 1002, "negative"),
        ("s1", "s1_po_01", 7, None, 9, "positive"),
        ("s10", "s10_sur_02", 50, None, 51, "surprise"),
    ]
    assert annotations[0].source == "HS/s1/micro/negative/s1_ne_01"
    assert all(a.dataset == "smic" and a.action_units == "" for a in annotations)
    assert len(problems) == 3
    assert "HS/s2/micro/happy" in problems[0] and "'happy'" in problems[0]
    assert "HS/s2/micro/negative/s2_ne_03" in problems[1] and "no .bmp frames" in problems[1]
    assert problems[2] == (
        "HS/s1/micro/surprise/s1_ne_01: s1 s1_ne_01 again (differing from HS/s1/micro/negative/s1_ne_01, "
        "which is kept); clip skipped"
    )


def test_scan_smic_missing_hs(tmp_path):
    with pytest.raises(FileNotFoundError, match="SMIC high-speed folder HS"):
        scan_smic(tmp_path)


def _clip(dataset, subject, clip, emotion):
    return ClipAnnotation(dataset, subject, clip, 1, None, 5, emotion, "", "test")


def test_megc2019_members():
    kept = [
        _clip("casme2", "sub01", "EP02_01f", "happiness"),
        _clip("casme2", "sub02", "EP03_02", "repression"),
        _clip("samm", "006", "006_1_2", "Anger"),
        _clip("samm", "032", "032_3_1", "Contempt"),
        _clip("smic", "s1", "s1_ne_01", "negative"),
        _clip("casme2", "sub04", "EP12_01", "disgust"),  # excluded is EP12_01f, not this
    ]
    dropped = [
        _clip("casme2", "sub04", "EP12_01f", "disgust"),
        _clip("casme2", "sub05", "EP09_05f", "happiness"),
        _clip("casme2", "sub24", "EP02_07", "surprise"),
        _clip("casme2", "sub03", "EP01_01", "others"),
        _clip("casme2", "sub03", "EP01_02", "fear"),
        _clip("samm", "007", "007_3_1", "Other"),
    ]
    clips = [c for pair in zip(dropped, kept, strict=True) for c in pair]
    assert megc2019_members(clips) == kept
    assert {(c.dataset, c.subject, c.clip) for c in dropped[:3]} == MEGC2019_EXCLUDED


def test_megc2019_members_rejects_unknown_labels():
    with pytest.raises(ValueError, match="'joy'"):
        megc2019_members([_clip("samm", "006", "006_1_2", "joy")])
