"""`mer-jax build`: prepare one builder config from a raw dataset folder (docs/data.md)."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from data_builders import BUILDERS as CLIP_BUILDERS
from data_builders.kdef import Kdef
from data_builders.rafd import Rafd
from mer_jax.data.clips.builder import ClipDatasetBuilder
from mer_jax.data.images import builder as image_builder

# The micro-expression builders and the expression-image ones (KDEF, Radboud; docs/data.md, Expression images).
BUILDERS = {**CLIP_BUILDERS, Kdef.name: Kdef, Rafd.name: Rafd}


def build(
    dataset: str, *, builder_config: str | None = None, manual_dir: str | None = None, data_dir: str | None = None
) -> ClipDatasetBuilder:
    """Build (or reuse, when already built) ``dataset/builder_config`` into ``data_dir``.

    Args:
      dataset: a name in :data:`BUILDERS`.
      builder_config: a builder config name (flow60, flow_strcn_g, strcn_a, flow_strcn_g_single, strcn_a_single,
        frames, regions, tim32, tim64; kdef and rafd:
        frontal, all_angles); None: the builder's first (flow60; frontal).
      manual_dir: the folder holding the unpacked raw dataset(s); synthetic_me needs none.
      data_dir: where TFDS writes (None = its default, ~/tensorflow_datasets).

    Returns:
      The prepared builder (``builder.info.metadata`` holds the build's summary
      and its ``variant``, :meth:`mer_jax.data.clips.materialize.StoredVariant.to_dict`).

    Raises:
      ValueError: unknown dataset or builder config.
      FileNotFoundError: the manual folder, or a file the dataset needs in it, is
        missing; the message says what goes where.
    """
    if dataset not in BUILDERS:
        raise ValueError(f"unknown dataset {dataset!r}; builders: {', '.join(BUILDERS)}")
    builder_class = BUILDERS[dataset]
    configs = [c.name for c in builder_class.BUILDER_CONFIGS]
    builder_config = builder_config or configs[0]
    if builder_config not in configs:
        raise ValueError(f"unknown builder config {builder_config!r} for {dataset}; configs: {', '.join(configs)}")
    if builder_class.MANUAL_DOWNLOAD_INSTRUCTIONS and not (manual_dir and Path(manual_dir).is_dir()):
        raise FileNotFoundError(
            f"{dataset} needs --manual_dir, the folder holding the raw data"
            f"{f' ({manual_dir} is not a folder)' if manual_dir else ''}. "
            f"{builder_class.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
    builder = builder_class(config=builder_config, data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


def format_summary(builder: ClipDatasetBuilder) -> str:
    """What the build wrote, skipped and why, and where it is, for a person."""
    if isinstance(builder, image_builder.ExpressionImageBuilder):
        return image_builder.format_summary(builder)
    meta = builder.info.metadata
    lines = [
        f"{builder.name}/{builder.builder_config.name}: {meta['clips_written']} of {meta['clips_annotated']} "
        f"clips written to {builder.data_dir}",
        f"  apexes spotted (Xia et al., TMM 2019, eq. 5): {meta['apexes_spotted']}; frames without a face that kept "
        f"the previous landmarks: {meta['landmark_fallback_frames']}",
    ]
    skipped, problems = meta.get("clips_skipped") or [], meta.get("annotation_problems") or []
    if skipped:
        by_fault = sorted((meta.get("clips_skipped_by_fault") or {}).items())
        counts = ": " + ", ".join(f"{fault} {count}" for fault, count in by_fault) if by_fault else ""
        lines.append(f"  clips skipped ({len(skipped)}{counts}):")
        lines += [f"    {message}" for message in skipped]
    if problems:
        lines.append(f"  annotation problems ({len(problems)}):")
        lines += [f"    {message}" for message in problems]
    return "\n".join(lines)
