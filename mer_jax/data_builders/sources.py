"""Where each dataset's clips, annotations and frames lie on disk (docs/design.md, Data).

A :class:`Source` knows one dataset's layout as it ships, inside the folder a
user gives as ``--manual_dir``:

  casme2: CASME2-coding-20140508.xlsx and CASME2_RAW_selected/sub01/EP02_01f/img46.jpg
  samm:   SAMM_Micro_FACS_Codes_v2.xlsx and SAMM/006/006_1_2/006_05562.jpg
  smic:   HS/s1/micro/negative/s1_ne_01/image100.bmp (no sheet, no apex)

Frames are found by the number at the end of their file name, so CASME II's
``img46.jpg``, SAMM's ``006_05562.jpg`` and SMIC's ``image100.bmp`` are read
alike, and a clip's frames are those numbered onset..offset.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from mer_jax import annotations
from mer_jax.annotations import ClipAnnotation


class ClipError(ValueError):
    """A clip that cannot be built (missing frames, no face, ...): it is skipped and reported."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One dataset's on-disk layout.

    Attributes:
      name: 'casme2', 'samm' or 'smic'.
      required: paths (relative to the manual folder) that must exist.
      layout: one line per required path saying what goes there.
      read: manual folder -> (annotations, problems), the dataset's reader
        from :mod:`mer_jax.annotations`.
      clip_dir: (manual folder, annotation) -> the folder holding the clip's frames.
      suffix: frame file extension.
    """

    name: str
    required: tuple[str, ...]
    layout: str
    read: Callable[[Path], tuple[list[ClipAnnotation], list[str]]]
    clip_dir: Callable[[Path, ClipAnnotation], Path]
    suffix: str

    def check(self, manual_dir: str | Path) -> None:
        """Raises FileNotFoundError naming every missing path and what belongs there."""
        manual_dir = Path(manual_dir)
        missing = [manual_dir / path for path in self.required if not (manual_dir / path).exists()]
        if missing:
            raise FileNotFoundError(
                f"{self.name}: missing {', '.join(str(p) for p in missing)}. "
                f"Expected in {manual_dir}:\n{self.layout}"
            )

    def clips(self, manual_dir: str | Path) -> tuple[list[ClipAnnotation], list[str]]:
        """All annotated clips and the problems met reading the annotations."""
        self.check(manual_dir)
        return self.read(Path(manual_dir))

    def frame_paths(self, manual_dir: str | Path, clip: ClipAnnotation) -> list[Path]:
        """The clip's frame files, onset..offset in order.

        Raises:
          ClipError: the clip folder is missing, a frame in onset..offset is
            missing (the first missing file is named), or the apex lies outside.
        """
        folder = self.clip_dir(Path(manual_dir), clip)
        if not folder.is_dir():
            raise ClipError(f"{clip.source}: clip folder {folder} does not exist")
        numbered = {}
        for path in folder.iterdir():
            match = re.search(r"(\d+)$", path.stem)
            if path.suffix.lower() == self.suffix and match:
                numbered[int(match.group(1))] = path
        last = clip.offset if clip.offset is not None else max(numbered, default=clip.onset)
        if last < clip.onset:
            raise ClipError(f"{clip.source}: offset frame {last} is before onset frame {clip.onset}")
        missing = [n for n in range(clip.onset, last + 1) if n not in numbered]
        if missing:
            raise ClipError(
                f"{clip.source}: {len(missing)} of frames {clip.onset}..{last} missing in {folder} "
                f"(first missing: frame number {missing[0]})"
            )
        if clip.apex is not None and not clip.onset <= clip.apex <= last:
            raise ClipError(f"{clip.source}: apex frame {clip.apex} outside onset..offset {clip.onset}..{last}")
        return [numbered[n] for n in range(clip.onset, last + 1)]


CASME2 = Source(
    name="casme2",
    required=(annotations.CASME2_SHEET, "CASME2_RAW_selected"),
    layout=(
        f"  {annotations.CASME2_SHEET}   the coding sheet as shipped\n"
        "  CASME2_RAW_selected/sub01/EP02_01f/img46.jpg ...   the raw frames, one folder per clip"
    ),
    read=lambda root: annotations.read_casme2_sheet(root / annotations.CASME2_SHEET),
    clip_dir=lambda root, clip: root / "CASME2_RAW_selected" / clip.subject / clip.clip,
    suffix=".jpg",
)

SAMM = Source(
    name="samm",
    required=(annotations.SAMM_SHEET, "SAMM"),
    layout=(
        f"  {annotations.SAMM_SHEET}   the coding sheet as shipped (header in row 14)\n"
        "  SAMM/006/006_1_2/006_05562.jpg ...   the frames, one folder per clip"
    ),
    read=lambda root: annotations.read_samm_sheet(root / annotations.SAMM_SHEET),
    clip_dir=lambda root, clip: root / "SAMM" / clip.subject / clip.clip,
    suffix=".jpg",
)

SMIC = Source(
    name="smic",
    required=("HS",),
    layout="  HS/s1/micro/negative/s1_ne_01/image100.bmp ...   the high-speed clips by subject and class",
    read=annotations.scan_smic,
    clip_dir=lambda root, clip: root / "HS" / clip.subject / "micro" / clip.emotion / clip.clip,
    suffix=".bmp",
)

SOURCES = {source.name: source for source in (CASME2, SAMM, SMIC)}
