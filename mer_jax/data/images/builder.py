"""The TFDS builder shared by the expression-image data sets (KDEF, Radboud; docs/data.md, Expression images).

A builder (``data_builders/kdef/``, ``data_builders/rafd/``) names its
layout (:data:`mer_jax.data.images.layouts.IMAGE_LAYOUTS`); the rest is here, on top
of :class:`mer_jax.data.clips.builder.ClipDatasetBuilder`, whose machinery it keeps:
array_record storage (read without TensorFlow), the lock that lets a build
killed part-way be run again, README.md / CITATIONS.bib as description and
citation, and the manual-folder check. Per image:

- configs: ``frontal`` (default), the paper's subset (KDEF's straight angle,
  Radboud's frontal camera 090; Wang et al., Neurocomputing 2018, sec. 4.1,
  Table 2: 980 = 70 x 7 x 2 KDEF images, 1608 = 67 x 8 x 3 Radboud images, our
  reading), and ``all_angles``;
- features: ``x`` the face crop, uint8 (240, 320, 3) (:mod:`mer_jax.data.images.crop`),
  ``label`` the eq. 11 class (:mod:`mer_jax.data.images.labels`), ``emotion`` (the
  data set's own code), ``subject`` ('kdef/F01', 'rafd/01'), ``dataset``,
  ``angle``, ``sample_id`` and ``file`` (the path under the manual folder);
- images are cropped in worker processes, one per usable core; an image that
  cannot be read (empty, truncated, not an image) or holds no face is skipped
  with a warning naming the file and counted by fault; a file whose name does
  not parse is skipped and listed (:meth:`mer_jax.data.images.layouts.ImageLayout.find`);
  images at the angles a config leaves out are counted. All of it is kept in
  the build's metadata (:func:`format_summary` prints it).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import multiprocessing
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from mer_jax.data.clips.builder import CLIPS_PER_WORKER, ClipDatasetBuilder
from mer_jax.data.clips.errors import ClipError
from mer_jax.data.clips.materialize import read_frame
from mer_jax.speed.cores import usable_cores
from mer_jax.data.images import crop, labels
from mer_jax.data.images.layouts import IMAGE_LAYOUTS, ImageFile
from mer_jax.data.preprocess.faces import FaceNotFoundError

NO_FACE = "no face"


@dataclasses.dataclass(eq=False)
class ImageConfig(tfds.core.BuilderConfig):
    """A builder config: which angles are kept (None: every angle)."""

    angles: tuple[str, ...] | None = None


def image_configs(dataset: str) -> list[ImageConfig]:
    """The ``frontal`` (default) and ``all_angles`` configs of ``dataset``."""
    layout = IMAGE_LAYOUTS[dataset]
    subset = {
        "kdef": "KDEF's straight angle (S), both sessions: 980 images of 70 subjects x 7 expressions x 2 sessions",
        "rafd": "Radboud's frontal camera (090), all three gazes: 1608 images of 67 models x 8 expressions x 3 gazes",
    }[dataset]
    crop_text = "face crops (the 68 points' box widened to 4:3) at 240 x 320 (H x W)"
    return [
        ImageConfig(
            name="frontal",
            description=f"{subset} (our reading of Wang et al., Neurocomputing 2018, sec. 4.1, Table 2); {crop_text}.",
            angles=(layout.frontal,),
        ),
        ImageConfig(name="all_angles", description=f"Every angle; {crop_text}.", angles=None),
    ]


def image_features() -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict(
        {
            "x": tfds.features.Tensor(
                shape=(crop.SIZE[1], crop.SIZE[0], 3), dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB
            ),
            "label": tfds.features.ClassLabel(names=labels.EQ11_CLASSES),
            "emotion": tfds.features.Text(doc="the data set's own emotion code (KDEF 'AF', Radboud 'fearful')"),
            "subject": tfds.features.Text(doc="dataset/subject, unique across data sets ('kdef/F01', 'rafd/01')"),
            "dataset": tfds.features.Text(doc="kdef or rafd"),
            "angle": tfds.features.Text(doc="KDEF FL, HL, S, HR, FR; Radboud camera 000, 045, 090, 135, 180"),
            "sample_id": tfds.features.Text(doc="dataset/subject/file stem, unique"),
            "file": tfds.features.Text(doc="the image's path under the manual folder"),
        }
    )


@dataclasses.dataclass(frozen=True)
class _Cropped:
    image: ImageFile
    x: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Skipped:
    fault: str
    message: str


def _crop_file(image: ImageFile) -> _Cropped | _Skipped:
    """One image's face crop, in a worker; an unreadable file or no face comes back as a fault naming the file."""
    try:
        return _Cropped(image, crop.crop_face(read_frame(image.path), name=str(image.path)))
    except ClipError as error:
        return _Skipped(error.fault, f"{error}; image skipped")
    except FaceNotFoundError as error:
        return _Skipped(NO_FACE, f"{error}; image skipped")


def crop_files(images: list[ImageFile], workers: int | None = None):
    """Yields :func:`_crop_file` results in order, over one worker process per usable core."""
    workers = min(workers or usable_cores(), len(images) // CLIPS_PER_WORKER)
    if workers < 2:
        yield from map(_crop_file, images)
        return
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_crop_file, images, chunksize=4)


class ExpressionImageBuilder(ClipDatasetBuilder, skip_registration=True):
    """Base of the expression-image builders; a subclass sets ``LAYOUT`` ('kdef' or 'rafd') and its configs."""

    LAYOUT = ""

    def _info(self) -> tfds.core.DatasetInfo:
        metadata = self.get_metadata()
        description = (metadata.description or self.DESCRIPTION).strip()
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{description}\n\nConfig {self.builder_config.name}: {self.builder_config.description}",
            features=image_features(),
            metadata=tfds.core.MetadataDict(),
            citation=(metadata.citation or self.CITATION).strip(),
        )

    def _raw_root_from(self, root: Path) -> Path:
        IMAGE_LAYOUTS[self.LAYOUT].check(root)
        return root

    def _generate_examples(self, root: Path):
        found, problems = IMAGE_LAYOUTS[self.LAYOUT].find(root)
        for problem in problems:
            logging.warning("%s", problem)
        angles = self.builder_config.angles
        kept = [image for image in found if angles is None or image.angle in angles]
        skipped = []
        for result in crop_files(kept):
            if isinstance(result, _Skipped):
                logging.warning("%s", result.message)
                skipped.append(result)
                continue
            image = result.image
            yield image.sample_id, {
                "x": result.x,
                "label": image.label,
                "emotion": image.emotion,
                "subject": f"{image.dataset}/{image.subject}",
                "dataset": image.dataset,
                "angle": image.angle,
                "sample_id": image.sample_id,
                "file": image.path.relative_to(root).as_posix(),
            }
        if len(skipped) == len(kept):
            lines = [
                f"{self.name}/{self.builder_config.name}: no image of {root} could be built ({len(found)} files "
                f"found, {len(kept)} at angles {angles or 'all'}, {len(skipped)} skipped, {len(problems)} file names "
                "that do not parse)",
                *(s.message for s in skipped[:5]), *problems[:5],
            ]
            raise ValueError("\n  ".join(lines))
        self.info.metadata.update(
            {
                "raw_dir": str(root),
                "files_found": len(found),
                "angles": list(angles) if angles else "all",
                "files_at_other_angles": len(found) - len(kept),
                "images_written": len(kept) - len(skipped),
                "images_skipped": [s.message for s in skipped],
                "images_skipped_by_fault": dict(collections.Counter(s.fault for s in skipped)),
                "file_name_problems": problems,
                "size": list(crop.SIZE),
            }
        )


def format_summary(builder: ExpressionImageBuilder) -> str:
    """What an image build wrote, skipped and why, and where it is, for a person."""
    meta = builder.info.metadata
    lines = [
        f"{builder.name}/{builder.builder_config.name}: {meta['images_written']} of {meta['files_found']} images "
        f"written to {builder.data_dir} ({meta['files_at_other_angles']} at angles other than {meta['angles']})",
    ]
    skipped, problems = meta.get("images_skipped") or [], meta.get("file_name_problems") or []
    if skipped:
        faults = ", ".join(f"{fault} {count}" for fault, count in sorted(meta["images_skipped_by_fault"].items()))
        lines.append(f"  images skipped ({len(skipped)}: {faults}):")
        lines += [f"    {message}" for message in skipped]
    if problems:
        lines.append(f"  files skipped, names that do not parse ({len(problems)}):")
        lines += [f"    {message}" for message in problems]
    return "\n".join(lines)
