"""Which clips to write: subjects, emotions, clip names, frame numbers and action units.

Two kinds of plan (:func:`make_plan`):

  - the full composite (no ``subjects`` and no ``clips_per_subject``): every
    subject of every dataset, with exactly the MEGC2019 composite's class
    counts (docs/design.md, Data: SMIC 70/51/43 over 16 subjects, CASME II 88/32/25
    over 24, SAMM 92/26/15 over 28), each dataset's own emotion labels in
    roughly the real proportions, uneven clip counts per subject, plus clips
    outside the composite: CASME II 'others', 'fear' and 'sadness', SAMM
    'Other', two subjects each in CASME II and SAMM with only such clips, and
    the three CASME II clips MEGC2019 excludes (sub04/EP12_01f,
    sub05/EP09_05f, sub24/EP02_07);
  - a small plan for tests: the first n subjects of each dataset, k clips
    each, emotions cycling through each dataset's labels so that few clips
    cover every class.

Everything here is drawn from the seed alone; the motion's finer details
(amplitude, jitter, drift, noise) are drawn when the clip is rendered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from mer_jax.data.annotations import MEGC2019_EXCLUDED
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.synth.cameras import CAMERAS
from mer_jax.data.synth.motion import EMOTION_ACTION_UNITS

# The composite's clips per emotion label (docs/design.md class counts; labels split
# roughly as in the real datasets).
COMPOSITE_EMOTIONS = {
    "casme2": {"disgust": 61, "repression": 27, "happiness": 32, "surprise": 25},
    "samm": {
        "Anger": 57, "Contempt": 12, "Disgust": 9, "Fear": 8, "Sadness": 6, "Happiness": 26, "Surprise": 15,
    },
    "smic": {"negative": 70, "positive": 51, "surprise": 43},
}
# Clips outside the composite, and how many subjects have only such clips.
EXTRA_EMOTIONS = {"casme2": {"others": 14, "fear": 2, "sadness": 3}, "samm": {"Other": 12}, "smic": {}}
EXTRA_ONLY_SUBJECTS = {"casme2": 2, "samm": 2, "smic": 0}
# The excluded CASME II clips get composite labels, so only the exclusion keeps them out.
_EXCLUDED_EMOTIONS = {"EP12_01f": "disgust", "EP09_05f": "happiness", "EP02_07": "repression"}
# Small plans cycle through these.
CYCLE_EMOTIONS = {
    "casme2": ("happiness", "disgust", "surprise", "repression", "others"),
    "samm": ("Happiness", "Anger", "Surprise", "Contempt", "Other", "Disgust", "Fear", "Sadness"),
    "smic": ("positive", "negative", "surprise"),
}
_SMIC_ABBREVIATIONS = {"negative": "ne", "positive": "po", "surprise": "sur"}
_FIRST_FRAME = {"casme2": (1, 300), "samm": (100, 9000), "smic": (1000, 200000)}
_APEX_POSITION = (0.3, 0.5)  # apex as a fraction of the way from onset to offset
UNMARKED_APEX_SHARE = 0.02  # CASME II clips whose apex cell reads '/'


@dataclasses.dataclass(frozen=True)
class PlannedClip:
    """One clip as the sheets describe it.

    onset, apex, offset: frame numbers (files run from onset to offset).
    apex_marked: False where the CASME II sheet writes '/' for the apex.
    action_units: AU codes of the motion (:data:`mer_jax.data.synth.motion.ACTION_UNITS`).
    """

    dataset: str
    subject: str
    clip: str
    emotion: str
    onset: int
    apex: int
    offset: int
    apex_marked: bool
    action_units: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PlannedSubject:
    """A subject and its clips; ``index`` is its position in the dataset's subject list."""

    dataset: str
    subject: str
    index: int
    clips: tuple[PlannedClip, ...]


def _clip_counts(rng: np.random.Generator, total: int, subjects: int) -> np.ndarray:
    """Uneven clips per subject, at least one each, summing to ``total``."""
    return 1 + rng.multinomial(total - subjects, rng.dirichlet(np.full(subjects, 1.5)))


def _full_emotions(dataset: str, rng: np.random.Generator) -> list[list[str]]:
    """Emotion labels of each subject's clips in the full composite (excluded clips not included)."""
    subjects = len(LAYOUTS[dataset].subjects)
    composite = [e for e, n in COMPOSITE_EMOTIONS[dataset].items() for _ in range(n)]
    extras = [e for e, n in EXTRA_EMOTIONS[dataset].items() for _ in range(n)]
    rng.shuffle(composite)
    rng.shuffle(extras)
    reserved = {s for d, s, _ in MEGC2019_EXCLUDED if d == dataset}
    candidates = [i for i, s in enumerate(LAYOUTS[dataset].subjects) if s not in reserved]
    extra_only = set(rng.choice(candidates, EXTRA_ONLY_SUBJECTS[dataset], replace=False).tolist())
    members = [i for i in range(subjects) if i not in extra_only]
    emotions: list[list[str]] = [[] for _ in range(subjects)]
    start = 0
    for i, count in zip(members, _clip_counts(rng, len(composite), len(members))):
        emotions[i] = composite[start : start + count]
        start += count
    for i, emotion in zip(sorted(extra_only), extras):  # one extra each first
        emotions[i].append(emotion)
    for emotion in extras[len(extra_only) :]:
        emotions[int(rng.integers(subjects))].append(emotion)
    return emotions


def _clip_name(dataset: str, subject: str, emotion: str, taken: set[str], rng: np.random.Generator) -> str:
    """A new clip folder name in the dataset's style, not in ``taken`` nor excluded."""
    excluded = {c for d, s, c in MEGC2019_EXCLUDED if d == dataset and s == subject}
    while True:
        if dataset == "casme2":
            name = f"EP{rng.integers(1, 20):02d}_{rng.integers(1, 10):02d}{'f' if rng.random() < 0.3 else ''}"
        elif dataset == "samm":
            inducement = int(rng.integers(1, 8))
            index = 1 + sum(n.startswith(f"{subject}_{inducement}_") for n in taken)
            name = f"{subject}_{inducement}_{index}"
        else:
            stem = f"{subject}_{_SMIC_ABBREVIATIONS[emotion]}_"
            name = f"{stem}{1 + sum(n.startswith(stem) for n in taken):02d}"
        if name not in taken and name not in excluded:
            return name


def _clip(dataset: str, subject: str, clip: str, emotion: str, fps: int, rng: np.random.Generator) -> PlannedClip:
    # At least onset, apex and offset (only a lowered frame rate makes fewer).
    frames = max(3, 1 + round(rng.uniform(*CAMERAS[dataset].duration) * fps))
    onset = int(rng.integers(*_FIRST_FRAME[dataset]))
    combos = EMOTION_ACTION_UNITS[emotion.lower()]
    return PlannedClip(
        dataset=dataset,
        subject=subject,
        clip=clip,
        emotion=emotion,
        onset=onset,
        apex=onset + round(rng.uniform(*_APEX_POSITION) * (frames - 1)),
        offset=onset + frames - 1,
        apex_marked=True,
        action_units=combos[int(rng.integers(len(combos)))],
    )


def _subjects(
    dataset: str, emotions: list[list[str]], with_excluded: bool, fps: int, rng: np.random.Generator
) -> list[PlannedSubject]:
    """Name and time each subject's clips; ``with_excluded`` adds the clips MEGC2019 excludes."""
    layout = LAYOUTS[dataset]
    specs = []
    for index, labels in enumerate(emotions):
        subject = layout.subjects[index]
        clips: list[PlannedClip] = []
        for emotion in labels:
            name = _clip_name(dataset, subject, emotion, {c.clip for c in clips}, rng)
            clips.append(_clip(dataset, subject, name, emotion, fps, rng))
        clips += [
            _clip(dataset, subject, c, _EXCLUDED_EMOTIONS[c], fps, rng)
            for d, s, c in sorted(MEGC2019_EXCLUDED)
            if with_excluded and d == dataset and s == subject
        ]
        if clips:
            specs.append(PlannedSubject(dataset, subject, index, tuple(sorted(clips, key=lambda c: c.clip))))
    return specs


def _unmark_apexes(specs: list[PlannedSubject], rng: np.random.Generator) -> list[PlannedSubject]:
    """Write '/' for the apex of a few CASME II clips (at least one when there are CASME II clips)."""
    where = [(s, c) for s, spec in enumerate(specs) if spec.dataset == "casme2" for c in range(len(spec.clips))]
    if not where:
        return specs
    count = max(1, round(UNMARKED_APEX_SHARE * len(where)))
    for k in rng.choice(len(where), count, replace=False):
        s, c = where[k]
        clips = list(specs[s].clips)
        clips[c] = dataclasses.replace(clips[c], apex_marked=False)
        specs[s] = dataclasses.replace(specs[s], clips=tuple(clips))
    return specs


def make_plan(
    seed: int,
    subjects: Mapping[str, int] | None = None,
    clips_per_subject: int | None = None,
    fps: Mapping[str, int] | None = None,
) -> list[PlannedSubject]:
    """The subjects and clips to write, datasets in the order CASME II, SAMM, SMIC.

    Args:
      seed: the random seed.
      subjects: dataset -> number of subjects (the first ones of
        :data:`LAYOUTS` [dataset].subjects); datasets left out get none. None:
        all subjects of all datasets.
      clips_per_subject: clips per subject in a small plan.
      fps: dataset -> frame rate of the written clips (default: the dataset's
        own, :data:`mer_jax.data.clips.layouts.LAYOUTS`); the clips last as long,
        so a lower rate gives fewer frames.

    With both None the plan is the full composite, otherwise a small plan
    (module docstring; ``clips_per_subject`` defaults to 3 there).
    """
    rng = np.random.default_rng([seed, 2])
    specs: list[PlannedSubject] = []
    for dataset, layout in LAYOUTS.items():
        full = subjects is None and clips_per_subject is None
        if full:
            emotions = _full_emotions(dataset, rng)
        else:
            count = len(layout.subjects) if subjects is None else subjects.get(dataset, 0)
            per = 3 if clips_per_subject is None else clips_per_subject
            cycle = CYCLE_EMOTIONS[dataset]
            emotions = [[cycle[(i * per + k) % len(cycle)] for k in range(per)] for i in range(count)]
        rate = layout.fps if fps is None else fps.get(dataset, layout.fps)
        specs += _subjects(dataset, emotions, full, rate, rng)
    return _unmark_apexes(specs, rng)
