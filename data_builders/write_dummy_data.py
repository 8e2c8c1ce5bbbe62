"""Write every builder's ``dummy_data/``: a few tiny synthetic clips in the real datasets' layouts.

    python -m data_builders.write_dummy_data

The files are committed; run this again only to change them (the coding
sheets hold their save time, so they differ byte for byte each time). The
clips come from :func:`mer_jax.data.synth.write_synthetic_composite` at small frame
sizes (faces still found by dlib) and 15 fps (3 frames per clip), so the
builders' tests (``<name>_dataset_builder_test.py``) run in seconds:
CASME II 6 clips of 3 subjects (one ``others`` clip outside MEGC2019, one apex
written '/'), SAMM 2 clips, SMIC 2 clips, and all three for ``megc2019`` and
(under ``synthetic_me_raw/``, where that builder looks in its download folder)
``synthetic_me``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.synth import write_synthetic_composite

HERE = Path(__file__).resolve().parent
OPTIONS = {
    "seed": 0,
    "subjects": {"casme2": 3, "samm": 1, "smic": 1},
    "clips_per_subject": 2,
    "frame_size": {"casme2": (112, 84), "samm": (144, 76), "smic": (80, 64)},
    "fps": 15,
}
# builder -> (datasets copied, sub-folder of dummy_data/ they go in)
CONTENTS = {
    "casme2": (("casme2",), ""),
    "samm": (("samm",), ""),
    "smic": (("smic",), ""),
    "megc2019": (("casme2", "samm", "smic"), ""),
    "synthetic_me": (("casme2", "samm", "smic"), "synthetic_me_raw"),
}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def write_dummy_data(builders_dir: Path = HERE) -> dict[str, int]:
    """(Re)write ``<builder>/dummy_data`` for every builder; returns their sizes in bytes."""
    sizes = {}
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw"
        write_synthetic_composite(raw, progress=False, workers=1, **OPTIONS)
        for builder, (datasets, sub_folder) in CONTENTS.items():
            dummy = builders_dir / builder / "dummy_data"
            shutil.rmtree(dummy, ignore_errors=True)
            target = dummy / sub_folder
            target.mkdir(parents=True)
            for name in datasets:
                for path in LAYOUTS[name].required:
                    copy = shutil.copytree if (raw / path).is_dir() else shutil.copy2
                    copy(raw / path, target / path)
            sizes[builder] = _size(dummy)
    return sizes


if __name__ == "__main__":
    for name, size in write_dummy_data().items():
        print(f"{name}/dummy_data: {size / 1e3:.0f} kB")
