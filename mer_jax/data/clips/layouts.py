"""Each data set's on-disk layout as it ships: the one description both its reader and the synthetic writer use.

Inside the folder a user gives as ``--manual_dir`` (docs/data.md):

  casme2: CASME2-coding-20140508.xlsx and CASME2_RAW_selected/sub01/EP02_01f/img46.jpg
          (colour JPEG, 200 fps; Yan et al., PLoS ONE 2014)
  samm:   SAMM_Micro_FACS_Codes_v2.xlsx and SAMM/006/006_1_2/006_05562.jpg
          (grayscale JPEG, 200 fps, subject in 3 digits, frame number in 5; Davison et al., IEEE TAC 2018)
  smic:   HS/s1/micro/negative/s1_ne_01/image000100.bmp (colour BMP, 100 fps,
          no sheet and no apex; Li et al., FG 2013)

A reader finds frames by the number that ends their file name, so every
dataset's frames are read alike and a clip's frames are those numbered
onset..offset; :meth:`DatasetLayout.frame_name` is how :mod:`mer_jax.data.synth`
names the frames it writes.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable
from pathlib import Path

from mer_jax.data import annotations
from mer_jax.data.annotations import ClipAnnotation
from mer_jax.data.clips.errors import ClipError

FRAME_NUMBER = re.compile(r"(\d+)$")  # the number ending a frame file's stem


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """One dataset's files as it ships.

    Attributes:
      name: 'casme2', 'samm' or 'smic' (as in :mod:`mer_jax.data.annotations`).
      folder: the top folder of the frame tree, relative to the manual folder.
      sheet: the coding sheet's file name, None for SMIC (it has none).
      sheet_note: what to say about the sheet in messages.
      suffix: frame file extension, lower case.
      fps: the camera's frame rate.
      colour: whether frames are RGB (else 8-bit grayscale).
      subjects: subject folder names in the dataset's own spelling, in order.
      read: manual folder -> (annotations, problems), the dataset's reader
        from :mod:`mer_jax.data.annotations`.
      example: (subject, clip, emotion, frame number) of the frame named in messages.
    """

    name: str
    folder: str
    sheet: str | None
    sheet_note: str
    suffix: str
    fps: int
    colour: bool
    subjects: tuple[str, ...]
    read: Callable[[Path], tuple[list[ClipAnnotation], list[str]]]
    example: tuple[str, str, str, int]

    def clip_dir(self, root: str | Path, subject: str, clip: str, emotion: str) -> Path:
        """The folder holding one clip's frames (SMIC sorts clips by class, the others do not)."""
        root = Path(root)
        if self.name == "smic":
            return root / self.folder / subject / "micro" / emotion / clip
        return root / self.folder / subject / clip

    def frame_name(self, subject: str, number: int) -> str:
        """The file name of frame number ``number``, as the dataset writes it."""
        if self.name == "casme2":
            return f"img{number}{self.suffix}"
        if self.name == "samm":
            return f"{subject}_{number:05d}{self.suffix}"
        return f"image{number:06d}{self.suffix}"

    @property
    def required(self) -> tuple[str, ...]:
        """Paths, relative to the manual folder, that must exist."""
        return (self.sheet, self.folder) if self.sheet else (self.folder,)

    @property
    def description(self) -> str:
        """One line per required path saying what goes there."""
        subject, clip, emotion, number = self.example
        frame = self.clip_dir(Path(), subject, clip, emotion) / self.frame_name(subject, number)
        lines = [f"  {self.sheet}   {self.sheet_note}"] if self.sheet else []
        grouping = "by subject and class" if self.name == "smic" else "by subject"
        lines.append(f"  {frame.as_posix()} ...   the frames, one folder per clip {grouping}")
        return "\n".join(lines)

    def check(self, manual_dir: str | Path) -> None:
        """Raises FileNotFoundError naming every missing path and what belongs there."""
        manual_dir = Path(manual_dir)
        missing = [manual_dir / path for path in self.required if not (manual_dir / path).exists()]
        if missing:
            raise FileNotFoundError(
                f"{self.name}: missing {', '.join(str(p) for p in missing)}. "
                f"Expected in {manual_dir}:\n{self.description}"
            )

    def clips(self, manual_dir: str | Path) -> tuple[list[ClipAnnotation], list[str]]:
        """All annotated clips and the problems met reading the annotations."""
        self.check(manual_dir)
        return self.read(Path(manual_dir))

    def frame_paths(self, manual_dir: str | Path, clip: ClipAnnotation) -> list[Path]:
        """The clip's frame files, onset..offset in order (extensions matched ignoring case).

        Raises:
          ClipError: the clip folder is missing, a frame in onset..offset is
            missing (the first missing file is named), or the apex lies outside;
            the message names the folder, the builder adds the sheet row
            (``clip.source``).
        """
        folder = self.clip_dir(manual_dir, clip.subject, clip.clip, clip.emotion)
        if not folder.is_dir():
            raise ClipError(f"clip folder {folder} does not exist", fault="missing clip folder")
        numbered = {}
        for path in folder.iterdir():
            match = FRAME_NUMBER.search(path.stem)
            if path.suffix.lower() == self.suffix and match:
                numbered[int(match.group(1))] = path
        last = clip.offset if clip.offset is not None else max(numbered, default=clip.onset)
        if last < clip.onset:
            raise ClipError(f"offset frame {last} is before onset frame {clip.onset}", fault="onset after offset")
        # Counted, not listed: a mistyped offset (2060206 for 2060) must not build a list of millions.
        missing = last - clip.onset + 1 - sum(clip.onset <= n <= last for n in numbered)
        if missing:
            first = next(n for n in itertools.count(clip.onset) if n not in numbered)
            raise ClipError(
                f"{missing} of frames {clip.onset}..{last} missing in {folder} (first missing: frame number {first})",
                fault="missing frame",
            )
        if clip.apex is not None and not clip.onset <= clip.apex <= last:
            raise ClipError(
                f"apex frame {clip.apex} outside onset..offset {clip.onset}..{last}", fault="apex outside clip"
            )
        return [numbered[n] for n in range(clip.onset, last + 1)]


def _read_casme2(root: Path) -> tuple[list[ClipAnnotation], list[str]]:
    return annotations.read_casme2_sheet(root / annotations.CASME2_SHEET)


def _read_samm(root: Path) -> tuple[list[ClipAnnotation], list[str]]:
    return annotations.read_samm_sheet(root / annotations.SAMM_SHEET)


CASME2 = DatasetLayout(
    name="casme2",
    folder="CASME2_RAW_selected",
    sheet=annotations.CASME2_SHEET,
    sheet_note="the coding sheet as shipped",
    suffix=".jpg",
    fps=200,
    colour=True,
    subjects=tuple(f"sub{n:02d}" for n in range(1, 27)),
    read=_read_casme2,
    example=("sub01", "EP02_01f", "", 46),
)

SAMM = DatasetLayout(
    name="samm",
    folder="SAMM",
    sheet=annotations.SAMM_SHEET,
    sheet_note="the coding sheet as shipped (header in row 14)",
    suffix=".jpg",
    fps=200,
    colour=False,
    # Subjects 006..037; there is no 008 and no 027.
    subjects=tuple(f"{n:03d}" for n in range(6, 38) if n not in (8, 27)),
    read=_read_samm,
    example=("006", "006_1_2", "", 5562),
)

SMIC = DatasetLayout(
    name="smic",
    folder="HS",
    sheet=None,
    sheet_note="",
    suffix=".bmp",
    fps=100,
    colour=True,
    # The 16 subjects of SMIC-HS.
    subjects=tuple(f"s{n}" for n in (1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 18, 19, 20)),
    read=annotations.scan_smic,
    example=("s1", "s1_ne_01", "negative", 100),
)

LAYOUTS = {layout.name: layout for layout in (CASME2, SAMM, SMIC)}
