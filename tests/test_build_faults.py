"""Builds of raw folders with one fault each, in each data set's real layout (docs/data.md, Faults).

A small composite (:mod:`mer_jax.data.synth`: real faces, 3 frames per clip) is
written once; each test copies one data set's files, injects one fault (a
truncated, empty, unreadable or resized frame; a repeated, blank, out-of-range
or unknown sheet cell or row; a missing column or subject folder; upper-case
extensions; non-ASCII and space characters in paths), builds flow60 and
checks that the build finishes, that the good clips are examples, and that the
faulty clip is named with its file (and sheet row) in the printed summary and
in the build's metadata.json. Then: a build killed by SIGKILL and started
again, and the checks that stop training on a damaged build or on classes the
data set lacks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest
from ml_collections import ConfigDict

from data_builders.synthetic_me.synthetic_me_dataset_builder import SyntheticMe
from mer_jax.data import builds
from mer_jax.data import annotations
from mer_jax.data.clips import build as build_lib
from mer_jax.data.clips import materialize as materialize_lib
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.config import base_config
from mer_jax.data.synth import write_synthetic_composite

# One subject of SAMM and SMIC, two of CASME II (so one can go missing), two clips each, 3 frames a clip.
SYNTH = {
    "seed": 0,
    "subjects": {"casme2": 2, "samm": 1, "smic": 1},
    "clips_per_subject": 2,
    "frame_size": {"casme2": (112, 84), "samm": (144, 76), "smic": (80, 64)},
    "fps": 15,
    "workers": 1,
    "progress": False,
}


@pytest.fixture(scope="module")
def composite(tmp_path_factory) -> dict:
    """The raw composite every test copies from, and its clips (``write_synthetic_composite``'s summary)."""
    return write_synthetic_composite(tmp_path_factory.mktemp("composite") / "raw", **SYNTH)


def raw_copy(composite: dict, dataset: str, folder: Path) -> Path:
    """``folder`` holding a copy of one data set's sheet and frames."""
    source = Path(composite["out_dir"])
    folder.mkdir(parents=True)
    for path in LAYOUTS[dataset].required:
        copy = shutil.copytree if (source / path).is_dir() else shutil.copy2
        copy(source / path, folder / path)
    return folder


def clips_of(composite: dict, dataset: str) -> list[dict]:
    """The composite's clips of ``dataset``, in the order written (by subject and clip)."""
    return [c for c in composite["clips"] if c["dataset"] == dataset]


def sample_id(clip: dict) -> str:
    return f"{clip['dataset']}/{clip['subject']}/{clip['clip']}"


def frame_path(raw: Path, clip: dict, number: int) -> Path:
    """The file of the clip's frame ``number`` under ``raw``, named as its data set names it."""
    layout = LAYOUTS[clip["dataset"]]
    return layout.clip_dir(raw, clip["subject"], clip["clip"], clip["emotion"]) / layout.frame_name(
        clip["subject"], number
    )


def source_of(raw: Path, clip: dict) -> str:
    """Where the clip's annotation comes from as messages name it: the sheet's file and row, or SMIC's folder."""
    found, _ = LAYOUTS[clip["dataset"]].read(raw)
    return next(a.source for a in found if (a.subject, a.clip) == (clip["subject"], clip["clip"]))


@dataclasses.dataclass(frozen=True)
class Built:
    """What a build wrote, printed and recorded."""

    examples: dict[str, dict]  # sample_id -> record
    summary: str  # what `mer-jax build` prints
    metadata: dict  # metadata.json as written

    def reported(self, key: str, *fragments: str) -> str:
        """The one message under ``key`` in metadata.json holding every fragment; it is printed too."""
        found = [m for m in self.metadata[key] if all(f in m for f in fragments)]
        assert len(found) == 1, (fragments, self.metadata[key])
        assert found[0] in self.summary
        return found[0]


def build(dataset: str, raw: Path, out: Path) -> Built:
    """``mer-jax build dataset --manual_dir raw --data_dir out`` (flow60), read back."""
    builder = build_lib.build(dataset, builder_config="flow60", manual_dir=str(raw), data_dir=str(out))
    source = builder.as_data_source(split="train")
    examples = {source[i]["sample_id"].decode(): source[i] for i in range(len(source))}
    metadata = json.loads((Path(os.fspath(builder.data_path)) / "metadata.json").read_text())
    return Built(examples, build_lib.format_summary(builder), metadata)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garble(path: Path) -> None:
    path.write_bytes(b"not an image at all")


def enlarge(path: Path) -> None:
    image = cv2.imread(str(path))
    assert cv2.imwrite(str(path), cv2.resize(image, (image.shape[1] + 8, image.shape[0] + 6)))


# dataset, fault, frame ('onset', 'apex' or 'middle': the frame after the onset), words in the message, fault count
FRAME_FAULTS = [
    ("casme2", truncate, "onset", "not a readable image: truncated JPEG", "truncated frame"),
    ("smic", truncate, "onset", "not a readable image: truncated BMP", "truncated frame"),
    ("samm", empty, "apex", "not a readable image: empty file (0 bytes)", "empty frame"),
    ("samm", garble, "onset", "not a readable image", "unreadable frame"),
    ("smic", enlarge, "middle", "88 x 70 pixels, unlike the clip's other frames read", "frame size"),
]


@pytest.mark.parametrize("dataset, fault, frame, words, kind", FRAME_FAULTS, ids=lambda v: getattr(v, "__name__", v))
def test_a_faulty_frame_skips_its_clip_and_names_the_file(composite, tmp_path, dataset, fault, frame, words, kind):
    clips = clips_of(composite, dataset)
    faulty = next(c for c in clips if c["apex_marked"] or frame != "apex")
    raw = raw_copy(composite, dataset, tmp_path / "raw")
    number = {"onset": faulty["onset"], "apex": faulty["apex"], "middle": faulty["onset"] + 1}[frame]
    fault(frame_path(raw, faulty, number))
    built = build(dataset, raw, tmp_path / "out")
    assert set(built.examples) == {sample_id(c) for c in clips if c is not faulty}
    built.reported("clips_skipped", source_of(raw, faulty), f"{frame_path(raw, faulty, number)}: {words}")
    assert built.metadata["clips_skipped_by_fault"] == {kind: 1}
    assert f"clips skipped (1: {kind} 1)" in built.summary


def test_a_fault_in_a_frame_the_config_does_not_read_keeps_the_clip(composite, tmp_path):
    """flow60 reads the onset and apex frames only (the apex is marked): the last frame of this clip is unused."""
    clips = clips_of(composite, "casme2")
    clip = next(c for c in clips if c["apex_marked"] and c["offset"] > c["apex"])
    raw = raw_copy(composite, "casme2", tmp_path / "raw")
    truncate(frame_path(raw, clip, clip["offset"]))
    built = build("casme2", raw, tmp_path / "out")
    assert set(built.examples) == {sample_id(c) for c in clips}
    assert built.metadata["clips_skipped"] == []


def test_truncated_jpeg_is_caught_though_opencv_decodes_it(composite, tmp_path):
    clip = clips_of(composite, "casme2")[0]
    path = frame_path(Path(composite["out_dir"]), clip, clip["onset"])
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[:-40])
    assert cv2.imread(str(cut)) is not None  # OpenCV fills the rest with grey
    with pytest.raises(materialize_lib.ClipError, match=re.escape(f"{cut}: not a readable image: truncated JPEG")):
        materialize_lib.read_frame(cut)
    padded = tmp_path / "padded.jpg"  # bytes after the end-of-image marker are allowed
    padded.write_bytes(path.read_bytes() + b"\x00" * 16 + b"trailer")
    np.testing.assert_array_equal(materialize_lib.read_frame(padded), materialize_lib.read_frame(path))


# --- coding sheets --------------------------------------------------------------------------------------------------


def edit_sheet(raw: Path, dataset: str, edit) -> None:
    """Opens the data set's sheet, calls ``edit(sheet, header_row, columns)`` (columns: key -> column number), saves."""
    path = raw / LAYOUTS[dataset].sheet
    workbook = openpyxl.load_workbook(path)
    sheet = workbook.worksheets[0]
    header = next(row for row in sheet.iter_rows() if any(cell.value == "Subject" for cell in row))
    columns = {re.sub(r"\s+", "", str(c.value)).lower(): c.column for c in header if c.value}
    edit(sheet, header[0].row, columns)
    workbook.save(path)


def row_of(sheet, header_row: int, columns: dict, clip: dict) -> int:
    return next(
        r for r in range(header_row + 1, sheet.max_row + 1) if sheet.cell(r, columns["filename"]).value == clip["clip"]
    )


def set_cell(column: str, value):
    """An edit writing ``value(clip)`` into the clip's ``column`` cell."""

    def edit(clip):
        def apply(sheet, header_row, columns):
            sheet.cell(row_of(sheet, header_row, columns, clip), columns[column]).value = value(clip)

        return apply

    return edit


# dataset, column, new value, what the build does with the clip ('row skipped', 'clip skipped' or 'kept'), message words
CELL_FAULTS = [
    ("casme2", "onsetframe", lambda c: None, "row skipped", "OnsetFrame is blank"),
    ("samm", "onsetframe", lambda c: "n/a", "row skipped", "Onset Frame 'n/a' is not a frame number"),
    ("casme2", "apexframe", lambda c: "abc", "row skipped", "ApexFrame 'abc' is not a frame number"),
    ("samm", "apexframe", lambda c: None, "kept", ""),  # blank apex: spotted (eq. 5)
    ("casme2", "offsetframe", lambda c: None, "kept", ""),  # blank offset: the folder's last frame
    ("casme2", "onsetframe", lambda c: c["onset"] - 5, "clip skipped", "5 of frames {onset}..{offset} missing"),
    ("samm", "offsetframe", lambda c: c["offset"] + 4, "clip skipped", "4 of frames {onset}..{offset} missing"),
    ("casme2", "offsetframe", lambda c: 10**12, "clip skipped", "of frames {onset}..{offset} missing"),  # a typo
    ("samm", "apexframe", lambda c: c["offset"] + 9, "clip skipped", "apex frame {apex} outside onset..offset"),
    ("casme2", "onsetframe", lambda c: c["offset"] + 1, "clip skipped", "offset frame {offset} is before onset"),
    ("samm", "estimatedemotion", lambda c: "Joy", "row skipped", "'Joy'"),
    ("casme2", "estimatedemotion", lambda c: "angry", "row skipped", "'angry'"),
]


@pytest.mark.parametrize("dataset, column, value, outcome, words", CELL_FAULTS)
def test_a_faulty_sheet_cell_is_named_with_its_row(composite, tmp_path, dataset, column, value, outcome, words):
    clips = clips_of(composite, dataset)
    faulty = next(c for c in clips if c["apex_marked"])
    raw = raw_copy(composite, dataset, tmp_path / "raw")
    edit_sheet(raw, dataset, set_cell(column, value)(faulty))
    written = {**faulty, column.removesuffix("frame"): value(faulty)}  # the values the message quotes
    built = build(dataset, raw, tmp_path / "out")
    row = f"{LAYOUTS[dataset].sheet} row "
    if outcome == "kept":
        assert set(built.examples) == {sample_id(c) for c in clips}
        record = built.examples[sample_id(faulty)]
        assert (int(record["onset"]), int(record["offset"])) == (faulty["onset"], faulty["offset"])
        assert bool(record["apex_spotted"]) == (column == "apexframe")
        return
    assert set(built.examples) == {sample_id(c) for c in clips if c is not faulty}
    key = "annotation_problems" if outcome == "row skipped" else "clips_skipped"
    message = built.reported(key, row, words.format(**written), outcome)
    source = message.split(":")[0]
    assert source.startswith(row) and source.removeprefix(row).isdigit()


def test_a_repeated_row_keeps_the_first_and_names_the_others(composite, tmp_path):
    """Merged by hand, the sheet holds one clip's row twice: TFDS used to stop at the end with 'Two examples share
    the same hashed key', every clip built lost."""
    clips = clips_of(composite, "casme2")
    raw = raw_copy(composite, "casme2", tmp_path / "raw")

    def repeat_first(sheet, header_row, columns):
        sheet.append([cell.value for cell in sheet[header_row + 1]])

    edit_sheet(raw, "casme2", repeat_first)
    built = build("casme2", raw, tmp_path / "out")
    assert set(built.examples) == {sample_id(c) for c in clips}
    last = 1 + len(clips) + 1
    first = sorted(clips, key=lambda c: (c["subject"], c["clip"]))[0]
    built.reported(
        "annotation_problems",
        f"{annotations.CASME2_SHEET} row {last}: {first['subject']} {first['clip']} again (the same as "
        f"{annotations.CASME2_SHEET} row 2, which is kept); row skipped",
    )
    assert built.metadata["clips_skipped"] == []


def test_a_smic_clip_in_two_class_folders_keeps_the_first(composite, tmp_path):
    clips = clips_of(composite, "smic")
    raw = raw_copy(composite, "smic", tmp_path / "raw")
    clip = clips[0]
    other = next(c["emotion"] for c in clips if c["emotion"] != clip["emotion"])
    copy = LAYOUTS["smic"].clip_dir(raw, clip["subject"], clip["clip"], other)
    shutil.copytree(LAYOUTS["smic"].clip_dir(raw, clip["subject"], clip["clip"], clip["emotion"]), copy)
    built = build("smic", raw, tmp_path / "out")
    assert set(built.examples) == {sample_id(c) for c in clips}
    kept, dropped = sorted([clip["emotion"], other])
    assert built.examples[sample_id(clip)]["emotion"].decode() == kept
    built.reported("annotation_problems", f"HS/{clip['subject']}/micro/{dropped}/{clip['clip']}: ", "clip skipped")


def blank_header(column: str):
    """An edit blanking the header cell of ``column``: the sheet no longer has it."""

    def apply(sheet, header_row, columns):
        sheet.cell(header_row, columns[column]).value = None

    return apply


def test_a_missing_optional_column_reads_as_blank(composite, tmp_path):
    """No Apex Frame column in SAMM's sheet: every apex is spotted, as for a blank cell, and the sheet is named."""
    clips = clips_of(composite, "samm")
    raw = raw_copy(composite, "samm", tmp_path / "raw")
    edit_sheet(raw, "samm", blank_header("apexframe"))
    built = build("samm", raw, tmp_path / "out")
    assert set(built.examples) == {sample_id(c) for c in clips}
    assert all(bool(record["apex_spotted"]) for record in built.examples.values())
    built.reported("annotation_problems", f"{annotations.SAMM_SHEET}: header row lacks column apexframe", "spotted")


def test_a_missing_required_column_stops_before_any_clip(composite, tmp_path):
    raw = raw_copy(composite, "casme2", tmp_path / "raw")
    edit_sheet(raw, "casme2", blank_header("filename"))
    lacks = f"{raw / annotations.CASME2_SHEET}: header row lacks column(s) filename"
    with pytest.raises(ValueError, match=re.escape(lacks)):
        build("casme2", raw, tmp_path / "out")
    assert not list((tmp_path / "out" / "casme2" / "flow60").glob("incomplete.*"))


def test_an_unknown_smic_class_folder_skips_its_clips(composite, tmp_path):
    clips = clips_of(composite, "smic")
    raw = raw_copy(composite, "smic", tmp_path / "raw")
    clip = clips[0]
    micro = raw / "HS" / clip["subject"] / "micro"
    (micro / clip["emotion"]).rename(micro / "happy")
    built = build("smic", raw, tmp_path / "out")
    assert set(built.examples) == {sample_id(c) for c in clips[1:]}
    built.reported("annotation_problems", f"HS/{clip['subject']}/micro/happy: ", "'happy'", "its clips are skipped")


# --- folders --------------------------------------------------------------------------------------------------------


def test_a_missing_subject_folder_skips_its_clips(composite, tmp_path):
    clips = clips_of(composite, "casme2")
    raw = raw_copy(composite, "casme2", tmp_path / "raw")
    gone = clips[0]["subject"]
    shutil.rmtree(raw / LAYOUTS["casme2"].folder / gone)
    built = build("casme2", raw, tmp_path / "out")
    assert set(built.examples) == {sample_id(c) for c in clips if c["subject"] != gone}
    for clip in clips:
        if clip["subject"] == gone:
            built.reported("clips_skipped", source_of(raw, clip), f"clip folder {raw / 'CASME2_RAW_selected' / gone}")
    assert built.metadata["clips_skipped_by_fault"] == {"missing clip folder": 2}


@pytest.mark.parametrize("dataset", ["casme2", "smic"])
def test_upper_case_file_names_are_read(composite, tmp_path, dataset):
    clips = clips_of(composite, dataset)
    raw = raw_copy(composite, dataset, tmp_path / "raw")
    clip = clips[0]
    for path in LAYOUTS[dataset].clip_dir(raw, clip["subject"], clip["clip"], clip["emotion"]).iterdir():
        path.rename(path.with_name(path.name.upper()))
    built = build(dataset, raw, tmp_path / "out")
    assert set(built.examples) == {sample_id(c) for c in clips}
    assert built.metadata["clips_skipped"] == [] and built.metadata["annotation_problems"] == []


@pytest.mark.parametrize("dataset", ["casme2", "smic"])
def test_non_ascii_and_spaces_in_paths(composite, tmp_path, dataset):
    """The manual folder and a clip folder (renamed in the sheet too) hold accents, CJK and spaces."""
    clips = clips_of(composite, dataset)
    raw = raw_copy(composite, dataset, tmp_path / "données brutes" / "微表情 data")
    clip = clips[0]
    renamed = f"{clip['clip']} é 表"
    layout = LAYOUTS[dataset]
    folder = layout.clip_dir(raw, clip["subject"], clip["clip"], clip["emotion"])
    folder.rename(folder.with_name(renamed))
    if layout.sheet:
        edit_sheet(raw, dataset, set_cell("filename", lambda c: renamed)(clip))
    built = build(dataset, raw, tmp_path / "out")
    expected = {sample_id(c) for c in clips[1:]} | {f"{dataset}/{clip['subject']}/{renamed}"}
    assert set(built.examples) == expected
    assert built.metadata["raw_dir"] == str(raw)


def test_a_build_with_no_clip_left_says_why(composite, tmp_path):
    raw = raw_copy(composite, "samm", tmp_path / "raw")
    for clip in clips_of(composite, "samm"):
        empty(frame_path(raw, clip, clip["onset"]))
    with pytest.raises(ValueError, match=r"samm: no clip of .* could be built \(2 annotated, empty frame 2"):
        build("samm", raw, tmp_path / "out")


# --- a build killed part-way ----------------------------------------------------------------------------------------

# Builds casme2/flow60 in a child process that reports each clip it finishes and stops after the second, to be killed.
KILLED_BUILD = """
import sys, time
from mer_jax.data.clips import build, builder

build_clip, done = builder._build_clip, []

def build_and_report(*args):
    result = build_clip(*args)
    done.append(result)
    print("clip built", flush=True)
    if len(done) == 2:
        time.sleep(600)
    return result

builder._build_clip = build_and_report
build.build("casme2", manual_dir=sys.argv[1], data_dir=sys.argv[2])
"""


def test_a_killed_build_started_again_is_complete(composite, tmp_path):
    raw = raw_copy(composite, "casme2", tmp_path / "raw")
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(raw), str(out)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        reported = (line for line in child.stdout if line == "clip built\n")  # TFDS prints to stdout too
        assert next(reported) and next(reported)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    config_dir = out / "casme2" / "flow60"
    assert [p.name[:11] for p in config_dir.glob("incomplete.*")] == ["incomplete."]  # TFDS's temporary folder
    assert not (config_dir / "1.0.0").exists()

    again = build("casme2", raw, out)
    whole = build("casme2", raw, tmp_path / "uninterrupted")
    assert sorted(p.name for p in config_dir.iterdir()) == [".build.lock", "1.0.0"]
    assert set(again.examples) == set(whole.examples) == {sample_id(c) for c in clips_of(composite, "casme2")}
    for key, record in whole.examples.items():
        np.testing.assert_array_equal(again.examples[key]["x"], record["x"])
    assert again.metadata == whole.metadata
    assert builds.load_built("casme2/flow60", data_dir=out).num_samples == len(whole.examples)


def test_a_synthetic_me_build_killed_while_writing_its_clips_writes_them_again(composite, tmp_path, monkeypatch):
    """synthetic_me writes its raw clips into a temporary folder renamed when done: a half-written one, left by a
    killed build, is written again, not built."""
    monkeypatch.setattr(SyntheticMe, "SYNTH_OPTIONS", SYNTH)  # the composite's clips
    downloads = tmp_path / "downloads"
    (downloads / "incomplete.synthetic_me_raw" / "HS" / "s1").mkdir(parents=True)  # killed while writing
    builder = SyntheticMe(config="flow60", data_dir=str(tmp_path / "out"))
    builder.download_and_prepare(download_dir=str(downloads))
    assert not (downloads / "incomplete.synthetic_me_raw").exists()
    assert sorted(p.name for p in (downloads / "synthetic_me_raw").iterdir()) == sorted(
        p.name for p in Path(composite["out_dir"]).iterdir()
    )
    assert builder.info.metadata["clips_written"] == len([c for c in composite["clips"] if c["megc2019"]])


# --- training on a build --------------------------------------------------------------------------------------------


def data_config(name: str, data_dir: Path, **changes) -> ConfigDict:
    """config.data for the build ``name`` under ``data_dir``."""
    return ConfigDict({"name": name, "data_dir": str(data_dir), "labels": "megc2019", "classes": (), **changes})


def test_a_build_with_non_finite_values_stops_training_naming_the_example(composite, tmp_path, monkeypatch):
    clips = clips_of(composite, "casme2")
    poisoned = sample_id(clips[1])
    materialize = materialize_lib.materialize

    def with_nan(paths, apex, variant, **options):
        x, fallbacks = materialize(paths, apex, variant, **options)
        x = x.copy()
        if Path(paths[0]).parent.name == clips[1]["clip"]:
            x[3, 4, 0] = np.nan
        return x, fallbacks

    monkeypatch.setattr(materialize_lib, "materialize", with_nan)
    build("casme2", raw_copy(composite, "casme2", tmp_path / "raw"), tmp_path / "out")
    damaged = f"casme2/flow60 under .*: example {poisoned} holds 1 non-finite value"
    with pytest.raises(ValueError, match=damaged):
        builds.load(data_config("casme2/flow60", tmp_path / "out"))

    from mer_jax import train  # imports JAX and Flax

    config = base_config()
    config.data.update(data_config("casme2/flow60", tmp_path / "out"))
    with pytest.raises(ValueError, match=damaged):
        train.train_and_evaluate(config, tmp_path / "run", progress=False)
    assert list((tmp_path / "run").iterdir()) == []  # no config, checkpoint or report written


def test_classes_the_build_lacks_stop_training_naming_the_data_set(composite, tmp_path):
    clips = clips_of(composite, "casme2")
    build("casme2", raw_copy(composite, "casme2", tmp_path / "raw"), tmp_path / "out")
    present = clips[0]["emotion"].lower()
    config = data_config("casme2/flow60", tmp_path / "out", labels="emotion", classes=(present, "joy"))
    with pytest.raises(ValueError, match=r"casme2/flow60 under .* has no example of class\(es\) \['joy'\]") as error:
        builds.load(config)
    first = re.search(r"the first example left out is (casme2/\S+/\S+) \((\w+)\)$", str(error.value))
    left_out = {sample_id(c): c["emotion"].lower() for c in clips if c["emotion"].lower() != present}
    assert left_out[first.group(1)] == first.group(2)
    assert builds.load(data_config("casme2/flow60", tmp_path / "out")).num_samples == len(
        [c for c in clips if c["megc2019"]]
    )
