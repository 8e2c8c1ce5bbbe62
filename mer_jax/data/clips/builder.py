"""The TFDS builder shared by every micro-expression dataset (docs/data.md).

A dataset builder (``data_builders/<name>/<name>_dataset_builder.py``) names the
raw datasets it reads (casme2, samm, smic: :mod:`mer_jax.data.clips.layouts`) and
whether it keeps only the MEGC2019 composite's clips; everything else is here:

- BuilderConfigs, one per stored variant (``CONFIGS``): ``flow60``,
  ``flow_strcn_g``, ``strcn_a``, their single-variant ``flow_strcn_g_single`` and
  ``strcn_a_single``, ``frames``, ``regions``, ``tim32`` and
  ``tim64``; each holds a :class:`~mer_jax.data.clips.materialize.StoredVariant`.
- Features: the variant's array ``x`` plus sample_id, subject, dataset, clip,
  onset / apex / offset frame numbers (and whether the apex was spotted by
  Xia et al., TMM 2019, eq. 5), the dataset's own emotion and action units,
  and the MEGC2019 3-class and STRCN 4-class labels.
- One split, ``train``: protocols (LOSO, ...) cut folds at training time.
- Clips are processed in worker processes, one per usable core, and stream:
  at most ``IN_FLIGHT_PER_WORKER`` clips per worker are being built or wait
  to be written at any time (TFDS then buffers up to 1 GB of encoded
  examples before it spills them to disk). A clip that
  cannot be built (missing, empty, truncated or unreadable frames, frames of
  another size, no face in its first frame, ...) is skipped with a warning
  naming the sheet row and the file, and counted by fault; the build's
  summary (clips written, skipped with reasons, annotation problems, landmark
  fallbacks, spotted apexes) and the stored variant are kept in the dataset's
  metadata (:func:`mer_jax.data.clips.build.format_summary` prints it). docs/data.md,
  Faults, lists every fault and what a build does with it.
- A build killed part-way is started again by running it again: the
  temporary folder it left is removed first (:meth:`ClipDatasetBuilder.download_and_prepare`).
- Description and citation come from the builder folder's README.md and
  CITATIONS.bib, as for any builder ``tfds new`` lays out.
- Stored as array_record, so training reads it without TensorFlow
  (:func:`mer_jax.data.builds.load`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import multiprocessing
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from tensorflow_datasets.core import constants as tfds_constants

from mer_jax.data import annotations, labels
from mer_jax.data.clips import materialize as materialize_lib
from mer_jax.data.clips.errors import ClipError
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.clips.materialize import StoredVariant
from mer_jax.speed.cores import usable_cores
from mer_jax.data.preprocess.temporal import KEEP_FRACTIONS
from mer_jax.data.region_geometry import CANVAS

# Xia et al., TMM 2019, sec. III-E: training magnifies every clip by alpha = 5..14 (x10), each of five
# frame-keeping levels (x5, KEEP_FRACTIONS); sec. IV-A: testing uses alpha = 8 (config.data.alpha), every frame.
ALPHAS = tuple(float(alpha) for alpha in range(5, 15))
TEST_ALPHA = 8.0
# flow_strcn_g_single's H x W: near the paper's aspect (245 x 300) and just above the smallest size that Conv1
# (5 x 5, valid) and Table I's pools 4, 4, 4, 2 leave at least 1 x 1 (132), so a CPU trains it in minutes.
STRCN_G_SINGLE_SIZE = (136, 168)
# STRCN-G's TV-L1 stopping threshold: 50 flows a clip at 300 x 245; 3.5x as fast as OpenCV's 0.01 at the
# same accuracy (docs/benchmarks.md, Builds).
STRCN_G_TVL1_EPSILON = 0.03
# Fewer clips than this per worker are built in this process: starting worker
# processes (each imports JAX, OpenCV and dlib) costs more than it saves.
CLIPS_PER_WORKER = 8
# Clips submitted to the pool and not yet handed to TFDS, per worker: bounds a build's memory (a tim64 clip
# is 14.7 MB) whatever order the workers finish in.
IN_FLIGHT_PER_WORKER = 2
# TLCNN's frames, H x W: "A 3-channels image (RGB) of size 240x320" (Wang et al., Neurocomputing 2018, sec. 3.4).
TLCNN_SIZE = (240, 320)
NO_MEGC2019_CLASS = "none"


@dataclasses.dataclass(eq=False)
class ClipConfig(tfds.core.BuilderConfig):
    """A builder config: one stored variant of every clip.

    variant: what :func:`mer_jax.data.clips.materialize.materialize` makes of each clip.
    """

    variant: StoredVariant | None = None


CONFIGS = (
    ClipConfig(
        name="flow60",
        description=(
            "u, v and optical strain (Xia et al., TIP 2020, eq. 2) of the onset->apex TV-L1 flow between "
            "aligned face crops, resized to 60 x 60 (Xia et al., TIP 2020, sec. IV-A): the shallow RCN's input."
        ),
        variant=StoredVariant("flow", (60, 60), strain=True),
    ),
    ClipConfig(
        name="flow_strcn_g",
        description=(
            "STRCN-G input (Xia et al., TMM 2019, sec. III-C-2): onset->apex TV-L1 flow (u, v) of the face crop "
            "at 300 x 245 (W x H), magnified by EVM with alpha = 5..14, of the clip with 100, 90, 80, 70 and 60% "
            "of its onset..apex frames kept (sec. III-E); x is (50, 245, 300, 2), level-major."
        ),
        variant=StoredVariant(
            "flow", (245, 300), alphas=ALPHAS, keep_fractions=KEEP_FRACTIONS, tvl1_epsilon=STRCN_G_TVL1_EPSILON
        ),
    ),
    ClipConfig(
        name="strcn_a",
        description=(
            "STRCN-A input (Xia et al., TMM 2019, sec. III-C-1): face crops at 64 x 48 with 100, 90, 80, 70 and 60% "
            "of their frames kept, magnified with alpha = 5..14 (sec. III-E), normalised to 30 frames; x is "
            "(50, 30, 48, 64, 3) uint8, level-major. Training selects the top-p pixels of "
            "the eq. 4 heat map (config.data.mask, data.top_p) when it reads the build (mer_jax.methods.strcn.heat_mask)."
        ),
        variant=StoredVariant("appearance", (48, 64), alphas=ALPHAS, num_frames=30, keep_fractions=KEEP_FRACTIONS),
    ),
    ClipConfig(
        name="flow_strcn_g_single",
        description=(
            "STRCN-G input at a CPU's size: one onset->apex TV-L1 flow (u, v) per clip, of the face crop at "
            f"{STRCN_G_SINGLE_SIZE[1]} x {STRCN_G_SINGLE_SIZE[0]} (W x H), magnified by EVM with the test alpha 8 "
            "only (Xia et al., TMM 2019, sec. IV-A), every frame kept: no x50 augmentation; x is "
            f"(1, {STRCN_G_SINGLE_SIZE[0]}, {STRCN_G_SINGLE_SIZE[1]}, 2)."
        ),
        variant=StoredVariant("flow", STRCN_G_SINGLE_SIZE, alphas=(TEST_ALPHA,), tvl1_epsilon=STRCN_G_TVL1_EPSILON),
    ),
    ClipConfig(
        name="strcn_a_single",
        description=(
            "STRCN-A input without the x50 augmentation: the face crops at 64 x 48 magnified by the test alpha "
            "8 only (Xia et al., TMM 2019, sec. IV-A), every frame kept, normalised to 30 frames; x is "
            "(1, 30, 48, 64, 3) uint8. Training selects the eq. 4 heat map's top-p pixels as for strcn_a."
        ),
        variant=StoredVariant("appearance", (48, 64), alphas=(TEST_ALPHA,), num_frames=30),
    ),
    ClipConfig(
        name="frames",
        description=(
            "Aligned face crops (Xia et al., TMM 2019, eq. 1) at 150 x 122 (W x H), temporally normalised to 32 "
            "frames (Wang et al., Neurocomputing 2018, sec. 3), for the sequence models; x is (32, 122, 150, 3) uint8."
        ),
        variant=StoredVariant("frames", (122, 150), num_frames=32),
    ),
    ClipConfig(
        name="regions",
        description=(
            "The six regions of Aouayeb et al., MLSP 2019 (sec. 3.1, 4.1.2): left and right eye + eyebrow, nose, "
            "left and right cheek, mouth, boxes from the first frame's 68 landmarks held for the whole clip, every "
            "frame onset..offset unaligned, grayscale, each on a black canvas of the paper's size (H x W 80 x 100, "
            "80 x 100, 120 x 80, 60 x 60, 60 x 60, 60 x 160; shrunk only where larger) at the top-left of a common "
            "120 x 160 canvas; x is (T, 6, 120, 160, 1) uint8, T the clip's frame count."
        ),
        variant=StoredVariant("regions", CANVAS),
    ),
    *(
        ClipConfig(
            name=f"tim{frames}",
            description=(
                f"TLCNN's TIM{frames} input (Wang et al., Neurocomputing 2018, sec. 3.4, 4.2): every frame "
                "onset..offset cut, unaligned, by the rectangle around the first frame's 68 landmarks (the paper: "
                "DRMF's 66), resized to 240 x 320 (H x W), RGB, brought to "
                f"{frames} frames by the temporal interpolation model (Zhou et al., CVPR 2011; Pfister et al., "
                f"ICCV 2011); x is ({frames}, 240, 320, 3) uint8."
            ),
            variant=StoredVariant("tim", TLCNN_SIZE, num_frames=frames),
        )
        for frames in (32, 64)
    ),
)


def _x_feature(config: ClipConfig) -> tfds.features.Tensor:
    variant = config.variant
    if variant.kind == "flow":
        # Several magnified flows at 300 x 245 are stored as float16 (1e-3 px steps) to halve the disk.
        dtype = np.float16 if variant.alphas else np.float32
        return tfds.features.Tensor(shape=variant.shape, dtype=dtype)
    return tfds.features.Tensor(shape=variant.shape, dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB)


def clip_features(config: ClipConfig) -> tfds.features.FeaturesDict:
    """The features of every builder for ``config``."""
    return tfds.features.FeaturesDict(
        {
            "x": _x_feature(config),
            "sample_id": tfds.features.Text(doc="dataset/subject/clip, unique"),
            "subject": tfds.features.Text(doc="dataset/subject, unique across datasets"),
            "dataset": tfds.features.Text(doc="casme2, samm or smic"),
            "clip": tfds.features.Text(doc="the clip folder name"),
            "onset": tfds.features.Scalar(np.int32, doc="onset frame number"),
            "apex": tfds.features.Scalar(np.int32, doc="apex frame number used"),
            "offset": tfds.features.Scalar(np.int32, doc="last frame number used"),
            "apex_spotted": tfds.features.Scalar(
                np.bool_, doc="apex found by Xia et al., TMM 2019, eq. 5 (not annotated)"
            ),
            "emotion": tfds.features.Text(doc="the dataset's own label as written"),
            "action_units": tfds.features.Text(),
            "megc2019_label": tfds.features.ClassLabel(names=(*labels.MEGC2019_CLASSES, NO_MEGC2019_CLASS)),
            "strcn4_label": tfds.features.ClassLabel(names=labels.STRCN4_CLASSES),
        }
    )


def manual_instructions(licence: str, datasets: tuple[str, ...]) -> str:
    """MANUAL_DOWNLOAD_INSTRUCTIONS: who licenses the data, then what goes where in the manual folder."""
    layouts = "\n".join(LAYOUTS[name].description for name in datasets)
    pronoun = "it" if len(datasets) == 1 else "them"
    return f"{licence} Unpack {pronoun} so that --manual_dir holds:\n{layouts}\n(See docs/data.md.)"


@dataclasses.dataclass(frozen=True)
class _Built:
    clip: annotations.ClipAnnotation
    x: np.ndarray
    apex: int
    spotted: bool
    last: int
    fallbacks: int


@dataclasses.dataclass(frozen=True)
class _Skipped:
    """A clip a build skips: its ClipError's ``fault`` and the message naming its sheet row and file."""

    fault: str
    message: str


def _build_clip(root: str, clip: annotations.ClipAnnotation, variant: StoredVariant) -> _Built | _Skipped:
    """Builds one clip in a worker; a ClipError comes back as its fault and message, naming the sheet row."""
    try:
        paths = LAYOUTS[clip.dataset].frame_paths(root, clip)
        apex, spotted = materialize_lib.find_apex(paths, clip.apex, clip.onset)
        x, fallbacks = materialize_lib.materialize(paths, apex, variant, seed=zlib.crc32(_sample_id(clip).encode()))
    except ClipError as error:
        return _Skipped(error.fault, f"{clip.source}: {error}; clip skipped")
    return _Built(clip, x, clip.onset + apex, spotted, clip.onset + len(paths) - 1, fallbacks)


def build_clips(
    root: Path, clips: list[annotations.ClipAnnotation], variant: StoredVariant, workers: int | None = None
):
    """Yields :func:`_build_clip` results in order, over one worker process per usable core.

    At most ``IN_FLIGHT_PER_WORKER`` clips per worker are submitted and not yet yielded (Executor.map
    would submit every clip at once and keep every finished one until its turn: all of a build's arrays,
    if the consumer is slower than the workers).
    """
    workers = min(workers or usable_cores(), len(clips) // CLIPS_PER_WORKER)
    if workers < 2:
        yield from (_build_clip(str(root), clip, variant) for clip in clips)
        return
    # spawn, not fork: the parent may hold JAX's threads.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: collections.deque[concurrent.futures.Future] = collections.deque()
        try:
            for clip in clips:
                if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                    yield pending.popleft().result()
                pending.append(pool.submit(_build_clip, str(root), clip, variant))
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # a consumer that stopped early: do not build the rest
                future.cancel()


def _example(built: _Built, x: np.ndarray, dtype: np.dtype) -> dict:
    clip = built.clip
    megc = labels.megc2019_class(clip.dataset, clip.emotion)
    return {
        "x": x.astype(dtype),
        "sample_id": _sample_id(clip),
        "subject": f"{clip.dataset}/{clip.subject}",
        "dataset": clip.dataset,
        "clip": clip.clip,
        "onset": clip.onset,
        "apex": built.apex,
        "offset": built.last,
        "apex_spotted": built.spotted,
        "emotion": clip.emotion,
        "action_units": clip.action_units,
        "megc2019_label": megc or NO_MEGC2019_CLASS,
        "strcn4_label": labels.strcn4_class(clip.emotion),
    }


class ClipDatasetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the dataset builders; subclasses set ``DATASETS`` and ``MEGC2019_ONLY``.

    DATASETS: the raw datasets read, names in :data:`mer_jax.data.clips.layouts.LAYOUTS`.
    MEGC2019_ONLY: keep only the clips of the MEGC2019 composite
      (:func:`mer_jax.data.annotations.megc2019_members`).
    DESCRIPTION, CITATION: used where the builder's folder has no README.md,
      CITATIONS.bib (a subclass defined outside ``data_builders/``).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = list(CONFIGS)
    DATASETS: tuple[str, ...] = ()
    MEGC2019_ONLY = False
    DESCRIPTION = ""
    CITATION = ""

    def __init__(self, *, file_format: str | None = None, **kwargs):
        # array_record by default: random access, read without TensorFlow.
        super().__init__(file_format=file_format or "array_record", **kwargs)

    def download_and_prepare(self, **kwargs) -> None:
        """TFDS's, after removing the temporary folders that a killed build of this config left behind.

        TFDS writes into ``<config>/incomplete.XXXXXX_<version>/`` and renames
        it when done; a build killed part-way leaves that folder, which TFDS
        never removes. A lock on the config's folder, held for the whole
        build and dropped by the system when its process dies (even by
        SIGKILL), tells a dead build's folder from a running one's.
        """
        if self.data_path.exists():  # reused: nothing is written (the folder may be read-only)
            super().download_and_prepare(**kwargs)
            return
        folder = Path(os.fspath(self.data_path.parent))
        with exclusive_lock(folder):
            _remove_leftovers(folder)
            if self.data_path.exists():  # built by another process while this one waited
                self.info.read_from_directory(self.data_path)
            super().download_and_prepare(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        metadata = self.get_metadata()  # README.md and CITATIONS.bib beside the builder's module
        description = (metadata.description or self.DESCRIPTION).strip()
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{description}\n\nConfig {self.builder_config.name}: {self.builder_config.description}",
            features=clip_features(self.builder_config),
            metadata=tfds.core.MetadataDict(),
            citation=(metadata.citation or self.CITATION).strip(),
        )

    def _raw_root(self, dl_manager: tfds.download.DownloadManager) -> Path:
        """The folder holding the raw datasets: the manual folder."""
        return self._raw_root_from(Path(dl_manager.manual_dir))

    def _raw_root_from(self, root: Path) -> Path:
        """``root`` once every dataset's files are found in it (FileNotFoundError naming those missing)."""
        for name in self.DATASETS:
            LAYOUTS[name].check(root)
        return root

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        return {"train": self._generate_examples(self._raw_root(dl_manager))}

    def _clips(self, root: Path) -> tuple[list[annotations.ClipAnnotation], list[str]]:
        clips, problems = [], []
        for name in self.DATASETS:
            found, issues = LAYOUTS[name].clips(root)
            clips += found
            problems += issues
        if self.MEGC2019_ONLY:
            clips = annotations.megc2019_members(clips)
        return clips, problems

    def _generate_examples(self, root: Path):
        clips, problems = self._clips(root)
        config = self.builder_config
        dtype = self.info.features["x"].np_dtype
        skipped, fallbacks, spotted = [], 0, 0
        for result in build_clips(root, clips, config.variant):
            if isinstance(result, _Skipped):
                logging.warning("%s", result.message)
                skipped.append(result)
                continue
            fallbacks += result.fallbacks
            spotted += result.spotted
            yield _key(result), _example(result, result.x, dtype)
        if len(skipped) == len(clips):
            raise ValueError(_nothing_built(self.name, root, clips, skipped, problems))
        written = len(clips) - len(skipped)
        self.info.metadata.update(
            {
                "raw_dir": str(root),
                "clips_annotated": len(clips),
                "clips_written": written,
                "clips_skipped": [s.message for s in skipped],
                "clips_skipped_by_fault": dict(collections.Counter(s.fault for s in skipped)),
                "annotation_problems": problems,
                "landmark_fallback_frames": fallbacks,
                "apexes_spotted": spotted,
                "alphas": list(config.variant.alphas),
                "variant": config.variant.to_dict(),
            }
        )


@contextlib.contextmanager
def exclusive_lock(folder: Path):
    """Holds an exclusive lock on ``folder/.build.lock`` (created with the folder), waiting for any other holder.

    The system drops the lock when its holder dies, even by SIGKILL: whoever
    holds it knows that temporary files in ``folder`` belong to no live build.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.warning("%s: another build is writing here; waiting for it to finish", folder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _remove_leftovers(folder: Path) -> None:
    """Removes TFDS's temporary folders in ``folder``: called under its lock, so no live build owns them."""
    for leftover in folder.glob(f"{tfds_constants.INCOMPLETE_PREFIX}*"):
        logging.warning("removing %s, left by a build that did not finish", leftover)
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()


def _nothing_built(
    name: str, root: Path, clips: list[annotations.ClipAnnotation], skipped: list[_Skipped], problems: list[str]
) -> str:
    """Why a build found no clip to write, for the error that stops it."""
    faults = collections.Counter(s.fault for s in skipped)
    lines = [
        f"{name}: no clip of {root} could be built ({len(clips)} annotated"
        + "".join(f", {fault} {count}" for fault, count in sorted(faults.items()))
        + f"; {len(problems)} annotation problems)",
        *(s.message for s in skipped[:5]),
        *problems[:5],
    ]
    return "\n  ".join(lines)


def _sample_id(clip: annotations.ClipAnnotation) -> str:
    return f"{clip.dataset}/{clip.subject}/{clip.clip}"


def _key(built: _Built) -> str:
    return _sample_id(built.clip)


def config_named(name: str) -> ClipConfig:
    """The shipped builder config ``name`` (ValueError naming the valid ones)."""
    for config in CONFIGS:
        if config.name == name:
            return config
    raise ValueError(f"unknown builder config {name!r}; configs: {', '.join(c.name for c in CONFIGS)}")
