"""Write the whole synthetic composite: plan, render subjects in parallel, write the sheets."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from tqdm.auto import tqdm

from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.speed.cores import usable_cores
from mer_jax.data.synth.cameras import CAMERAS
from mer_jax.data.synth.plan import PlannedClip, make_plan
from mer_jax.data.synth.render import GROUND_TRUTH, RenderTask, render_subject
from mer_jax.data.synth.sheets import write_casme2_sheet, write_samm_sheet

MIN_FRAME_SIDE = 64


def _subject_counts(subjects: int | Mapping[str, int] | None) -> dict[str, int] | None:
    if subjects is None:
        return None
    counts = dict.fromkeys(LAYOUTS, subjects) if isinstance(subjects, int) else dict(subjects)
    for name, count in counts.items():
        if name not in LAYOUTS:
            raise ValueError(f"unknown dataset {name!r} in subjects; known: {', '.join(LAYOUTS)}")
        available = len(LAYOUTS[name].subjects)
        if not isinstance(count, int) or not 0 <= count <= available:
            raise ValueError(f"subjects[{name!r}] must be an int from 0 to {available}; got {count!r}")
    return counts


def _frame_sizes(frame_size: tuple[int, int] | Mapping[str, tuple[int, int]] | None) -> dict[str, tuple[int, int]]:
    sizes = {name: camera.frame_size for name, camera in CAMERAS.items()}
    if frame_size is not None:
        given = frame_size if isinstance(frame_size, Mapping) else dict.fromkeys(LAYOUTS, frame_size)
        unknown = set(given) - set(LAYOUTS)
        if unknown:
            raise ValueError(f"unknown dataset(s) {sorted(unknown)} in frame_size; known: {', '.join(LAYOUTS)}")
        sizes.update({name: tuple(int(v) for v in size) for name, size in given.items()})
    for name, size in sizes.items():
        if len(size) != 2 or min(size) < MIN_FRAME_SIDE:
            raise ValueError(
                f"frame_size for {name} must be (width, height), both >= {MIN_FRAME_SIDE}; got {size!r}"
            )
    return sizes


def _frame_rates(fps: int | Mapping[str, int] | None) -> dict[str, int]:
    rates = {name: layout.fps for name, layout in LAYOUTS.items()}
    given = {} if fps is None else fps if isinstance(fps, Mapping) else dict.fromkeys(LAYOUTS, fps)
    unknown = set(given) - set(LAYOUTS)
    if unknown:
        raise ValueError(f"unknown dataset(s) {sorted(unknown)} in fps; known: {', '.join(LAYOUTS)}")
    for name, rate in given.items():
        if not isinstance(rate, int) or rate < 1:
            raise ValueError(f"fps for {name} must be a positive int; got {rate!r}")
    rates.update(given)
    return rates


def _check_empty(out: Path) -> None:
    names = [n for layout in LAYOUTS.values() for n in (layout.folder, layout.sheet) if n] + [GROUND_TRUTH]
    taken = [n for n in names if (out / n).exists()]
    if taken:
        raise FileExistsError(f"{out} already holds {', '.join(taken)}; remove them or choose another folder")


def _render_all(tasks: list[RenderTask], workers: int, progress: bool) -> tuple[list[dict], int]:
    """Render every subject, ``workers`` processes at once; returns (clip records, identity redraws)."""
    records, redraws = [], 0
    total = sum(len(t.subject.clips) for t in tasks)
    with tqdm(total=total, unit="clip", desc="synthetic clips", disable=not progress) as bar:

        def collect(results: Iterable[tuple[list[dict], int]]) -> None:
            nonlocal redraws
            for clip_records, subject_redraws in results:
                records.extend(clip_records)
                redraws += subject_redraws
                bar.update(len(clip_records))

        if workers == 1:
            collect(map(render_subject, tasks))
        else:
            # 'spawn': a forked copy of a parent running JAX's threads can deadlock.
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                collect(pool.imap_unordered(render_subject, tasks))
    return records, redraws


def _pixels(task: RenderTask) -> int:
    width, height = task.frame_size
    return width * height * sum(c.offset - c.onset + 1 for c in task.subject.clips)


def _dataset_summary(
    name: str,
    out: Path,
    sheet: Path | None,
    size: tuple[int, int],
    fps: int,
    clips: list[PlannedClip],
    records: list[dict],
) -> dict:
    rows = [r for r in records if r["dataset"] == name]
    return {
        "folder": str(out / LAYOUTS[name].folder),
        "sheet": None if sheet is None else str(sheet),
        "subjects": len({c.subject for c in clips}),
        "clips": len(clips),
        "frames": sum(r["frames"] for r in rows),
        "fps": fps,
        "frame_size": size,
        "emotions": dict(Counter(c.emotion for c in clips)),
        "megc2019": dict(Counter(r["megc2019"] for r in rows if r["megc2019"])),
    }


def _disk_bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        for folder, _, files in os.walk(path):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def write_synthetic_composite(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    subjects: int | Mapping[str, int] | None = None,
    clips_per_subject: int | None = None,
    frame_size: tuple[int, int] | Mapping[str, tuple[int, int]] | None = None,
    workers: int | None = None,
    progress: bool = True,
    expression_scale: float = 1.0,
    fps: int | Mapping[str, int] | None = None,
) -> dict:
    """Write a synthetic CASME II + SAMM + SMIC composite in the real datasets' layouts.

    Under ``out_dir``: ``CASME2_RAW_selected/`` and ``CASME2-coding-20140508.xlsx``,
    ``SAMM/`` and ``SAMM_Micro_FACS_Codes_v2.xlsx``, ``HS/`` (SMIC), and
    ``ground_truth/<dataset>/<subject>/<clip>.npz`` (see :mod:`mer_jax.data.synth.render`).
    A dataset with no subjects gets no folder and no sheet.

    Args:
      out_dir: the output folder (created); it must not already hold any of those.
      seed: everything written is a function of the seed and the other
        arguments (not of ``workers``): frame files are identical byte for byte;
        the .xlsx and .npz files (zip archives) also hold their save time.
      subjects: subjects per dataset, one int for all or a mapping
        {'casme2': n, 'samm': n, 'smic': n} (left-out datasets get none).
      clips_per_subject: clips per subject.
        With ``subjects`` and ``clips_per_subject`` both None (the default) the
        output is the full composite: 72 subjects, 476 clips, of which the
        MEGC2019 composite's 442 from 68 subjects with its class counts
        (:mod:`mer_jax.data.synth.plan`); otherwise a small set (3 clips per subject
        unless given) cycling through every emotion label.
      frame_size: (width, height) for all datasets or a mapping per dataset;
        default CASME II 320 x 240, SAMM 336 x 176, SMIC 144 x 108 (see
        :data:`mer_jax.data.synth.cameras.CAMERAS`). Faces and motions scale with it.
      workers: processes rendering subjects at once; default one per CPU core.
        More than one starts processes with multiprocessing's 'spawn' method,
        so a script calling this must do so under ``if __name__ == "__main__":``.
      progress: show a tqdm progress bar over clips.
      expression_scale: factor on every clip's expression amplitude; 0 writes
        the same clips with the expression motion removed (head drift and
        sensor noise kept), the control that shows a model learns the motion.
      fps: frame rate for all datasets or a mapping per dataset; default each
        dataset's own (CASME II and SAMM 200, SMIC 100). Clips last as long,
        so a lower rate writes fewer frames (at least 3 per clip): small
        fixtures such as the builders' dummy_data/.

    Returns:
      A summary dict: ``out_dir``, ``seed``, ``seconds`` (wall time), ``bytes``
      (disk size of everything written), ``frames``, ``identity_redraws``
      (identity draws rejected because no face was detected), ``ground_truth``
      (its folder), ``datasets`` {name: {``folder`` (the dataset's frame tree:
      .../CASME2_RAW_selected, .../SAMM, .../HS), ``sheet`` (path, None for
      SMIC), ``subjects``, ``clips``, ``frames``, ``fps``, ``frame_size``,
      ``emotions`` {label: clips}, ``megc2019`` {class: clips}}}, and ``clips``:
      one dict per clip (datasets, subjects and clip names in order) with
      ``dataset``, ``subject``, ``clip``, ``emotion``, ``megc2019`` (its class
      in the MEGC2019 composite, '' for clips outside it), ``onset``, ``apex``
      (the true apex), ``apex_marked`` (False where the sheet writes '/'),
      ``offset``, ``fps``, ``frames``, ``action_units``, ``motion``,
      ``amplitude`` (peak expression displacement, pixels), ``source`` (the
      photograph), ``folder`` and ``ground_truth`` paths.
    """
    start = time.perf_counter()
    if clips_per_subject is not None and (not isinstance(clips_per_subject, int) or clips_per_subject < 1):
        raise ValueError(f"clips_per_subject must be a positive int or None; got {clips_per_subject!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive int or None; got {workers!r}")
    counts = _subject_counts(subjects)
    sizes = _frame_sizes(frame_size)
    rates = _frame_rates(fps)
    if not expression_scale >= 0:
        raise ValueError(f"expression_scale must be >= 0; got {expression_scale!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_empty(out)

    plan = make_plan(seed, counts, clips_per_subject, rates)
    tasks = [
        RenderTask(subject, out, sizes[subject.dataset], seed, float(expression_scale), rates[subject.dataset])
        for subject in plan
    ]
    # Most pixels first, so that no process is left with a long subject at the end.
    tasks.sort(key=lambda t: -_pixels(t))
    records, redraws = _render_all(tasks, min(workers or usable_cores(), max(len(tasks), 1)), progress)
    clips = [c for spec in plan for c in spec.clips]
    by_clip = {(r["dataset"], r["subject"], r["clip"]): r for r in records}
    records = [by_clip[c.dataset, c.subject, c.clip] for c in clips]

    datasets = {}
    for name in LAYOUTS:
        mine = [c for c in clips if c.dataset == name]
        if mine:
            sheet = None
            if name == "casme2":
                sheet = write_casme2_sheet(out, mine)
            elif name == "samm":
                sheet = write_samm_sheet(out, mine, seed)
            datasets[name] = _dataset_summary(name, out, sheet, sizes[name], rates[name], mine, records)
    written = [Path(d[k]) for d in datasets.values() for k in ("folder", "sheet") if d[k]]
    return {
        "out_dir": str(out),
        "seed": seed,
        "seconds": time.perf_counter() - start,
        "bytes": _disk_bytes([*written, out / GROUND_TRUTH]),
        "frames": sum(r["frames"] for r in records),
        "identity_redraws": redraws,
        "ground_truth": str(out / GROUND_TRUTH),
        "datasets": datasets,
        "clips": records,
    }
