"""KDEF's and Radboud's file layouts as they ship: the file-name parsers the builders and the synthetic writer share.

Inside the folder a user gives as ``--manual_dir`` (docs/data.md, Expression images):

  kdef: KDEF/AF01/AF01AFS.JPG: one folder per session and subject, file =
        folder name + expression (2 letters) + angle (1-2 letters) + .JPG
        (Lundqvist et al., 1998; :data:`mer_jax.data.images.labels.KDEF_EMOTIONS`, ``KDEF_ANGLES``);
  rafd: RaFD/Rafd090_01_Caucasian_female_angry_frontal.jpg: camera angle,
        model number, ethnicity, gender, emotion, gaze, joined by '_'
        (Langner et al., Cognition and Emotion 2010), in any sub-folder of RaFD/.

A file whose name does not parse is skipped and reported (:meth:`ImageLayout.find`
returns it as a problem the build keeps in its metadata): the clip builders treat
an unreadable coding-sheet row alike, and one stray file (a copy, a renamed
picture) should not stop a build of thousands; a build that finds no file at all
stops. Hidden files (names starting with '.', e.g. .DS_Store) are not images and
are passed over without a report.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mer_jax.data.images import labels


class ImageNameError(ValueError):
    """A file whose name does not follow its data set's naming scheme; the message names the file."""


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """One parsed image file.

    path: the file. dataset: 'kdef' or 'rafd'. subject: the person, unique
    within the data set ('F01': KDEF's gender + number, the same in sessions A
    and B; '01': Radboud's model number). emotion: the data set's own code
    ('AF', 'fearful'). angle: 'S', 'HL', ... (KDEF) or '000' ... '180' (Radboud's
    camera). detail: KDEF's session letter, Radboud's gaze. name: the file
    name without extension, unique within the data set.
    """

    path: Path
    dataset: str
    subject: str
    emotion: str
    angle: str
    detail: str
    name: str

    @property
    def sample_id(self) -> str:
        """'<dataset>/<subject>/<file stem>', unique across data sets."""
        return f"{self.dataset}/{self.subject}/{self.name}"

    @property
    def label(self) -> str:
        """The eq. 11 class (Wang et al., Neurocomputing 2018, sec. 4.1, eq. 11)."""
        return labels.eq11_class(self.dataset, self.emotion)


_KDEF = re.compile(
    r"(?P<id>(?P<session>[AB])(?P<gender>[FM])(?P<number>\d{2}))"
    rf"(?P<emotion>{'|'.join(labels.KDEF_EMOTIONS)})(?P<angle>{'|'.join(labels.KDEF_ANGLES)})\.jpg",
    re.IGNORECASE,
)
_RAFD = re.compile(
    rf"Rafd(?P<camera>{'|'.join(labels.RAFD_CAMERAS)})_(?P<number>\d{{2}})_(?P<ethnicity>[A-Za-z]+)_"
    rf"(?P<gender>female|male)_(?P<emotion>{'|'.join(labels.RAFD_EMOTIONS)})_(?P<gaze>{'|'.join(labels.RAFD_GAZES)})"
    r"\.jpg",
    re.IGNORECASE,
)


def parse_kdef(path: str | Path) -> ImageFile:
    """KDEF's ``<ID>/<ID><EXPR><ANGLE>.JPG`` (ImageNameError naming the file if it does not parse)."""
    path = Path(path)
    match = _KDEF.fullmatch(path.name)
    if not match:
        raise ImageNameError(
            f"{path}: not a KDEF file name <session A|B><gender F|M><2 digits><expression "
            f"{'|'.join(labels.KDEF_EMOTIONS)}><angle {'|'.join(labels.KDEF_ANGLES)}>.JPG (e.g. AF01AFS.JPG)"
        )
    ident = match["id"].upper()
    if path.parent.name.upper() != ident:
        raise ImageNameError(f"{path}: a file of {ident} in folder {path.parent.name!r} (KDEF keeps it in {ident}/)")
    return ImageFile(
        path, "kdef", ident[1:], match["emotion"].upper(), match["angle"].upper(), ident[0], path.stem.upper()
    )


def parse_rafd(path: str | Path) -> ImageFile:
    """Radboud's ``Rafd<camera>_<model>_<ethnicity>_<gender>_<emotion>_<gaze>.jpg`` (ImageNameError naming the
    file if it does not parse)."""
    path = Path(path)
    match = _RAFD.fullmatch(path.name)
    if not match:
        raise ImageNameError(
            f"{path}: not a Radboud file name Rafd<camera {'|'.join(labels.RAFD_CAMERAS)}>_<model, 2 digits>_"
            f"<ethnicity>_<female|male>_<emotion {'|'.join(labels.RAFD_EMOTIONS)}>_<gaze "
            f"{'|'.join(labels.RAFD_GAZES)}>.jpg (e.g. Rafd090_01_Caucasian_female_angry_frontal.jpg)"
        )
    return ImageFile(
        path, "rafd", match["number"], match["emotion"].lower(), match["camera"], match["gaze"].lower(), path.stem
    )


@dataclasses.dataclass(frozen=True)
class ImageLayout:
    """One data set's files as it ships.

    name: 'kdef' or 'rafd'. folder: the top folder under the manual folder.
    frontal: the angle code of the paper's subset (KDEF's straight 'S',
    Radboud's frontal camera '090'). example: a file's path under ``folder``.
    """

    name: str
    folder: str
    frontal: str
    example: str

    def parse(self, path: str | Path) -> ImageFile:
        return parse_kdef(path) if self.name == "kdef" else parse_rafd(path)

    @property
    def description(self) -> str:
        return f"  {self.folder}/{self.example} ...   the images"

    def check(self, manual_dir: str | Path) -> Path:
        """The data set's top folder (FileNotFoundError saying what goes where if it is missing)."""
        folder = Path(manual_dir) / self.folder
        if not folder.is_dir():
            raise FileNotFoundError(f"{self.name}: missing {folder}. Expected in {manual_dir}:\n{self.description}")
        return folder

    def find(self, manual_dir: str | Path) -> tuple[list[ImageFile], list[str]]:
        """Every image under the top folder, sorted, and one problem per file skipped (name, duplicate)."""
        found, problems, seen = [], [], {}
        for path in sorted(self.check(manual_dir).rglob("*")):
            if path.name.startswith(".") or not path.is_file():
                continue
            try:
                image = self.parse(path)
            except ImageNameError as error:
                problems.append(f"{error}; file skipped")
                continue
            if image.sample_id in seen:
                problems.append(f"{path}: the same picture as {seen[image.sample_id]}; file skipped")
                continue
            seen[image.sample_id] = path
            found.append(image)
        return found, problems


IMAGE_LAYOUTS = {
    "kdef": ImageLayout("kdef", "KDEF", "S", "AF01/AF01AFS.JPG"),
    "rafd": ImageLayout("rafd", "RaFD", "090", "Rafd090_01_Caucasian_female_angry_frontal.jpg"),
}
