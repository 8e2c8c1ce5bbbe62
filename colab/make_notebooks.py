"""Writes the notebooks of colab/ (without outputs) and the README's "Open in Colab" links.

    python colab/make_notebooks.py

The notebooks are generated, not edited by hand: change the cells here and run
this file again. tests/test_notebooks.py checks that the committed notebooks are
what this file writes, that they hold no outputs, and that each first code cell
defines QUICK and installs the package in Colab only. `python -m pytest` runs
every notebook top to bottom (nbmake, the test extra), with QUICK = True.

REPOSITORY is the one place naming the GitHub repository: the notebooks clone
and install it in Colab, and the README's badges open the notebooks from it.
Put your fork's owner in it and run this file.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPOSITORY = "OWNER/mer-jax"  # OWNER: the GitHub owner of your fork
HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
BADGE_URL = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/main/colab/")


def colab_url(name: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/colab/{name}"


def install_cell(quick: str) -> str:
    """The first code cell of every notebook: QUICK, and in Colab only, the clone and the install."""
    return f'''\
# QUICK = True: {quick}
# QUICK = False: the real run described above.
QUICK = True

import os
import sys
from pathlib import Path

COLAB = "google.colab" in sys.modules
# The repository Colab installs: OWNER is the GitHub owner of your mer-jax fork (or set MER_JAX_REPO).
REPO_URL = os.environ.get("MER_JAX_REPO", "https://github.com/{REPOSITORY}")
CHECKOUT = Path("/content/mer-jax")  # the clone in Colab (its configs/ hold the experiments)
if COLAB:  # installs in Colab only; anywhere else this cell just sets the names above
    import subprocess

    if "/OWNER/" in REPO_URL:
        raise ValueError("set REPO_URL to your fork, https://github.com/<owner>/mer-jax, or MER_JAX_REPO")
    if not CHECKOUT.exists():
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(CHECKOUT)], check=True)
    # On a GPU runtime, jax with its CUDA plugin, so that the install cannot leave jax on the CPU.
    gpu = ["jax[cuda12]"] if Path("/dev/nvidia0").exists() else []
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"{{CHECKOUT}}[data]", *gpu], check=True)
'''


def setup_cell(name: str, imports: str) -> str:
    """The second code cell: imports, the repository folder and the work folder of notebook `name`."""
    return f'''\
import shutil

import jax
from IPython.display import Image, Markdown, display
{imports}

# The repository: in Colab the clone, elsewhere the checkout that holds this notebook.
REPO = CHECKOUT if COLAB else next(
    (p for p in (Path.cwd(), *Path.cwd().parents) if (p / "configs" / "quickstart.py").is_file()), None
)
if REPO is None:
    raise FileNotFoundError("open this notebook from a mer-jax checkout (it reads the configs/ folder)")
WORK = REPO / "runs" / ("notebooks_quick" if QUICK else "notebooks") / "{name}"
if QUICK:
    shutil.rmtree(WORK, ignore_errors=True)  # a quick run starts afresh; a real one resumes where it stopped
WORK.mkdir(parents=True, exist_ok=True)


def show_report(run):
    """results.md as tables, then the confusion matrix and the per-fold curves."""
    display(Markdown((run / "results.md").read_text()))
    display(Image(filename=str(run / "confusion_matrix.png")), Image(filename=str(run / "fold_curves.png")))


print(f"jax {{jax.__version__}} on {{jax.devices()}}\\nwork folder: {{WORK}}")
'''


# The cell writing the synthetic composite (QUICK: 2 subjects per data set), reused by a session that stopped.
COMPOSITE_CELL = """\
RAW = WORK / "raw"
size = dict(subjects=2, clips_per_subject=6) if QUICK else {}  # {} = the full composite, 72 subjects
if not (WORK / "raw.done").exists():
    shutil.rmtree(RAW, ignore_errors=True)  # a half-written composite from a stopped session
    composite = write_synthetic_composite(RAW, seed=0, progress=not QUICK, **size)
    (WORK / "raw.done").touch()
    print(f"{len(composite['clips'])} clips, {composite['frames']} frames, "
          f"{composite['bytes'] / 1e6:.0f} MB in {composite['seconds']:.0f} s")"""

# ---------------------------------------------------------------- quickstart.ipynb

QUICKSTART = [
    ("md", """\
# mer-jax quick start: synthetic composite -> build -> train -> report

mer-jax reimplements the shallow recurrent convolutional network (RCN) of Xia et al., TIP 2020,
and trains every fold of a leave-one-subject-out (LOSO) protocol at once. This notebook runs the
project's main job end to end without any licensed data:

1. write a synthetic **CASME II + SAMM + SMIC composite** in the real data sets' folder layouts;
2. **build** it with the real MEGC2019 builder: face alignment, onset -> apex optical flow and
   optical strain, 60 x 60 maps (Xia et al., TIP 2020, sec. IV-A);
3. **train** the RCN on every LOSO fold, plus one final model on every subject;
4. read the **report** (UF1, UAR, accuracy pooled, per source data set and per fold; confusion matrix;
   per-fold curves);
5. **predict** the class of clips the model has never seen.

`QUICK = True` (the default in the first code cell) writes a tiny composite (2 subjects per data set,
6 clips each), trains for 10 epochs and predicts one new clip per data set: about a minute on 2 CPU
cores; its scores mean little.
`QUICK = False` is the README's main job: the full composite (476 clips, 442 of them in MEGC2019,
68 subjects), 68 folds x 20 epochs; measured on 2 CPU cores: synth 71 s, build 96 s, train 189 s,
UF1 0.90. Colab: Runtime -> Run all."""),
    ("code", install_cell("a tiny composite and 10 epochs, about a minute on 2 CPU cores.")),
    ("md", """\
## Setup

Imports, and the work folder: `runs/notebooks_quick/quickstart` (QUICK) or `runs/notebooks/quickstart`
in the repository. A real run that stops (a Colab session ends) continues where it stopped when the
notebook is run again: the composite and the build are reused, training resumes from its last checkpoint."""),
    ("code", setup_cell("quickstart", """\
import matplotlib.pyplot as plt

from mer_jax.data.clips import build as build_lib
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.clips.materialize import read_frame
from mer_jax.config import sibling_config
from mer_jax.predict import Predictor
from mer_jax.data.synth import write_synthetic_composite
from mer_jax.train import train_and_evaluate""")),
    ("md", """\
## 1. A synthetic composite

MEGC2019's composite data set (See et al., FG 2019) pools CASME II (Yan et al., PLoS ONE 2014),
SAMM (Davison et al., IEEE TAC 2018) and SMIC-HS (Li et al., FG 2013): 442 clips of 68 subjects in
three classes (negative, positive, surprise). Those data sets are licensed, so this step writes a
stand-in: real face photographs, one identity per subject, each clip animating a brief, subtle,
action-unit-like motion with head drift and sensor noise, saved in each data set's own folders, frame
names and coding sheets, at its camera's frame size and rate. The builder in step 2 reads it as it
reads the real folders."""),
    ("code", COMPOSITE_CELL + "\nprint(sorted(p.name for p in RAW.iterdir()))"),
    ("md", """\
One clip as the camera recorded it, read with its onset and apex (the expression's peak) from the
CASME II coding sheet: the two frames and their difference, magnified. The motion is a few pixels at
most, as in real micro-expressions; the outlines in the difference are the head's drift, which the
build's face alignment removes."""),
    ("code", """\
casme2 = LAYOUTS["casme2"]
annotations, _ = casme2.read(RAW)  # the coding sheet's rows
first = annotations[0]
folder = casme2.clip_dir(RAW, first.subject, first.clip, first.emotion)
onset, apex = (read_frame(folder / casme2.frame_name(first.subject, n)) for n in (first.onset, first.apex))
difference = (0.5 + 4 * (apex.astype(float) - onset) / 255).clip(0, 1)
fig, axes = plt.subplots(1, 3, figsize=(10, 3))
for ax, image, title in zip(axes, (onset, apex, difference), ("onset", "apex", "difference x 4")):
    ax.imshow(image)
    ax.set_title(title)
    ax.axis("off")
fig.suptitle(f"CASME II {first.subject}/{first.clip}: {first.emotion}, frames {first.onset} and {first.apex}")
plt.show()"""),
    ("md", """\
## 2. Build megc2019/flow60

The builder reads the coding sheets, aligns every frame to the first on the face (dlib's 68 landmarks,
Xia et al., TMM 2019, eq. 1-2), spots the apex where the sheet has none (SMIC; Xia et al., TMM 2019,
eq. 5), computes the TV-L1 optical flow from onset to apex and its optical strain, and stores the
(u, v, strain) maps at 60 x 60, the RCN's input (Xia et al., TIP 2020, sec. IV-A, eq. 2). A finished
build is reused. The command line does the same: `mer-jax build megc2019 --manual_dir RAW --data_dir TFDS`."""),
    ("code", """\
TFDS = WORK / "tfds"
builder = build_lib.build("megc2019", builder_config="flow60", manual_dir=str(RAW), data_dir=str(TFDS))
print(build_lib.format_summary(builder))"""),
    ("md", """\
## 3. Train on every LOSO fold at once

`configs/rcn_synth_megc2019.py`: the shallow RCN of Xia et al., TIP 2020 (M = 16 feature maps, K = 5
pooling, one feed-forward and three recurrent states, sec. V-A and V-C), with a training schedule
shortened for the synthetic set (the paper's: learning rate 1e-4, up to 500 epochs, sec. V-A). Every
held-out subject is one fold; the folds train together in one compiled program, each drawing batches
only from its own training subjects. `train.final_model` adds one model trained on every subject,
for step 5."""),
    ("code", """\
config = sibling_config(str(REPO / "configs" / "rcn_synth_megc2019.py"), "rcn_synth_megc2019")
config.data.data_dir = str(TFDS)
if QUICK:
    config.train.epochs, config.train.batch_size = 10, 16  # the quick composite has ~30 clips
    config.train.strategy = "loop"  # "auto" (the default) would first time loop and vmap
RUN = WORK / "run"
result = train_and_evaluate(config, RUN, progress=not QUICK)
print(f"{result['num_folds']} folds ({result['strategy']}): accuracy {result['accuracy']:.3f}, "
      f"UF1 {result['uf1']:.3f}, UAR {result['uar']:.3f}, {result['train_seconds']:.0f} s of training")"""),
    ("md", """\
## 4. The report

`results.md` gives accuracy and the class-balanced MEGC2019 metrics, UF1 (the mean of the per-class
F1) and UAR (the mean of the per-class recall) (See et al., FG 2019), pooled over all held-out clips,
per source data set and per fold; `report.json` holds the same plus one prediction per held-out clip;
`confusion_matrix.png` and `fold_curves.png` (per fold: training loss and held-out accuracy per epoch)
are the plots."""),
    ("code", "show_report(RUN)"),
    ("code", """\
import json

report = json.loads((RUN / "report.json").read_text())
wrong = [p for p in report["predictions"] if p["label"] != p["prediction"]]
print(f"{len(wrong)} of {report['num_samples']} held-out clips misclassified, e.g.:")
for p in wrong[:5]:
    print(f"  {p['sample_id']}: {p['label']} predicted as {p['prediction']} (fold {p['fold']})")"""),
    ("md", """\
## 5. Predict new clips

The final model applied to the clips of another composite (seed 7: other identities, motions and head
drift), read from their frame folders as a user would give them. `Predictor` preprocesses each clip
exactly as the build did and spots the apex (Xia et al., TMM 2019, eq. 5). The command line:
`mer-jax predict --workdir RUN --frames FOLDER_OR_VIDEO`."""),
    ("code", """\
NEW = WORK / "new"
shutil.rmtree(NEW, ignore_errors=True)
new = write_synthetic_composite(NEW, seed=7, subjects=1, clips_per_subject=1 if QUICK else 6, progress=False)
predictor = Predictor(RUN)
rows = ["| clip | true class | predicted | probabilities |", "|---|---|---|---|"]
for clip in new["clips"]:
    if clip["megc2019"]:  # the clips MEGC2019 keeps (others have no class)
        prediction = predictor.predict(clip["folder"])
        probabilities = ", ".join(f"{k} {v:.2f}" for k, v in prediction.probabilities.items())
        rows.append(f"| {clip['dataset']}/{clip['subject']}/{clip['clip']} | {clip['megc2019']} | "
                    f"{prediction.label} | {probabilities} |")
display(Markdown("\\n".join(rows)))"""),
    ("md", """\
## Next

- `your_data.ipynb`: the same steps on your CASME II, SAMM and SMIC from Google Drive, with the
  paper's training settings, on the Colab GPU or TPU.
- `search.ipynb`: the architecture search of Xia et al., TIP 2020, sec. IV-C-4.
- The README lists the commands (`mer-jax synth | build | train | search | describe | predict`) and
  the config keys; docs/index.md indexes the documentation."""),
]


# ---------------------------------------------------------------- your_data.ipynb

YOUR_DATA = [
    ("md", """\
# Your data: CASME II, SAMM and SMIC from Google Drive, the RCN on the Colab GPU or TPU

CASME II (Yan et al., PLoS ONE 2014), SAMM (Davison et al., IEEE TAC 2018) and SMIC (Li et al.,
FG 2013) are licensed by their authors: request them, then unpack them into **one folder of your
Google Drive**, as they ship (docs/data.md in the repository, "What goes in `--manual_dir`"):

| data set | in the folder |
| --- | --- |
| CASME II | `CASME2-coding-20140508.xlsx`, `CASME2_RAW_selected/sub01/EP02_01f/img46.jpg` ... |
| SAMM | `SAMM_Micro_FACS_Codes_v2.xlsx`, `SAMM/006/006_1_2/006_05562.jpg` ... |
| SMIC | `HS/s1/micro/negative/s1_ne_01/image000100.bmp` ... |

This notebook builds the MEGC2019 composite (See et al., FG 2019) from that folder, trains the
shallow RCN with the settings of Xia et al., TIP 2020 (`configs/rcn_megc2019.py`) on all of its
leave-one-subject-out folds, and reads the results.

In Colab, first pick an accelerator: Runtime -> Change runtime type -> a GPU (or a TPU). Then set
`QUICK = False` in the first code cell and `DATA_DIR` in the second to your folder, and Run all.
Colab asks for permission to mount your Drive. The builds and the run are written to your Drive, so a
session that ends is continued by running the notebook again.

`QUICK = True` (the default) needs no licensed data: it writes a small synthetic composite into the
folder where your Drive folder would be (`DATA_DIR`) and trains a few epochs, about a minute on 2 CPU
cores, to show every step. Its scores mean nothing."""),
    ("code", install_cell("no licensed data; a small synthetic composite stands in for your Drive folder.")),
    ("md", """\
## Your folders

`DATA_DIR` is the folder holding the data sets; `OUT` receives the builds (`OUT/tfds`) and the run
(`OUT/runs`). `DATASET` is `megc2019` (the three data sets in one folder, the composite's 442 clips) or
one of `casme2`, `samm`, `smic` alone. Outside Colab, set `DATA_DIR` and `OUT` to local folders."""),
    ("code", setup_cell("your_data", """\
from mer_jax.data.clips import build as build_lib
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.config import sibling_config
from mer_jax.data.synth import write_synthetic_composite
from mer_jax.train import train_and_evaluate""") + '''
DATASET = "megc2019"
if QUICK:
    DATA_DIR = WORK / "drive"  # stands in for your Drive folder: the next cell writes a synthetic composite here
    OUT = WORK
else:
    if COLAB:
        from google.colab import drive

        drive.mount("/content/drive")
    DATA_DIR = Path("/content/drive/MyDrive/micro_expressions")  # <- your folder of CASME II, SAMM and SMIC
    OUT = Path("/content/drive/MyDrive/mer-jax")  # builds and runs, kept across Colab sessions
print(f"data: {DATA_DIR}\\nbuilds and runs: {OUT}")
'''),
    ("md", """\
## What is in the folder

The quick run writes its stand-in first (1 subject per data set, 6 clips each). Then every data set
the build needs is checked for its frame folder and coding sheet (SMIC has no sheet); a build with
something missing stops with a message naming what belongs where."""),
    ("code", """\
if QUICK and not (DATA_DIR / "CASME2_RAW_selected").exists():
    write_synthetic_composite(DATA_DIR, seed=0, subjects=1, clips_per_subject=6, progress=False)
needed = list(LAYOUTS) if DATASET == "megc2019" else [DATASET]
for name in needed:
    layout = LAYOUTS[name]
    for entry in (layout.folder, layout.sheet):
        if entry:
            print(f"{name:7s} {entry:32s} {'found' if (DATA_DIR / entry).exists() else 'MISSING'}")"""),
    ("md", """\
## Build

Face alignment, TV-L1 onset -> apex optical flow and optical strain, 60 x 60 (u, v, strain) maps
(Xia et al., TIP 2020, sec. IV-A, eq. 2); the apex is spotted where the sheet gives none (SMIC;
Xia et al., TMM 2019, eq. 5). Clips that cannot be built are skipped and listed. The build runs on
the CPU cores (a few minutes for the 442 clips on 2 cores) and is reused once finished."""),
    ("code", """\
TFDS = OUT / "tfds"
builder = build_lib.build(DATASET, builder_config="flow60", manual_dir=str(DATA_DIR), data_dir=str(TFDS))
print(build_lib.format_summary(builder))"""),
    ("md", """\
## Train rcn_megc2019

The paper's settings (Xia et al., TIP 2020): M = 16 feature maps, K = 5, four states in the recurrent
layer, dropout 0.5 (sec. V-A, V-C); SGD with learning rate 1e-4, momentum 0.9, weight decay 5e-4, up
to 500 epochs, a fold stopping once its training loss falls below 0.5 (sec. V-A); three classes,
leave-one-subject-out (sec. V-B). The quick run trains 10 epochs at a larger learning rate instead.

On a GPU or TPU every fold trains in one vectorized program (`train.strategy = "auto"` picks it);
`jax.devices()` above shows what jax found. A checkpoint is written every `train.checkpoint_every`
epochs, so running this cell again after a lost session resumes."""),
    ("code", """\
config = sibling_config(str(REPO / "configs" / "rcn_megc2019.py"), "rcn_megc2019")
config.data.name = f"{DATASET}/flow60"
config.data.data_dir = str(TFDS)
if QUICK:  # not the paper's settings: a few epochs that show every step
    config.train.epochs, config.train.learning_rate, config.train.batch_size = 10, 1e-2, 8
RUN = OUT / "runs" / f"rcn_{DATASET}"
result = train_and_evaluate(config, RUN, progress=not QUICK)
print(f"{result['num_folds']} folds ({result['strategy']} on {jax.default_backend()}): "
      f"accuracy {result['accuracy']:.3f}, UF1 {result['uf1']:.3f}, UAR {result['uar']:.3f}, "
      f"{result['train_seconds']:.0f} s of training")"""),
    ("md", """\
## Results

UF1 and UAR are MEGC2019's class-balanced metrics (See et al., FG 2019), pooled over the held-out
clips of all folds; the tables also give them per source data set and per fold (with the epochs each
fold trained before its stopping rule), and the confusion matrix. `fold_curves.png` shows each fold's
training loss and held-out accuracy per epoch."""),
    ("code", "show_report(RUN)"),
    ("md", """\
Every held-out clip's prediction is in `report.json`; this writes them to `predictions.csv` beside it
for a spreadsheet, and counts the errors per data set and class."""),
    ("code", """\
import collections
import csv
import json

report = json.loads((RUN / "report.json").read_text())
with open(RUN / "predictions.csv", "w", newline="") as file:
    writer = csv.DictWriter(file, fieldnames=list(report["predictions"][0]))
    writer.writeheader()
    writer.writerows(report["predictions"])
errors = collections.Counter((p["dataset"], p["label"]) for p in report["predictions"] if p["label"] != p["prediction"])
totals = collections.Counter((p["dataset"], p["label"]) for p in report["predictions"])
for key in sorted(totals):
    print(f"{key[0]:7s} {key[1]:9s} {errors[key]:3d} of {totals[key]:3d} misclassified")
print(f"written: {RUN / 'predictions.csv'}")"""),
    ("md", """\
## Next

- Another model: `config.model.name = "rcn_a"` (or `rcn_w`, `rcn_s`, `rcn_c`, `rcn_f`, `rcn_p`;
  docs/models.md), with another `RUN` folder.
- Several seeds of every fold in the same run: `config.train.num_seeds = 5`; the report adds each
  seed's scores and 95% bootstrap intervals over subjects.
- Classify new clips: `config.train.final_model = True` trains one more model on every subject;
  then `mer_jax.predict.Predictor(RUN).predict(folder_of_frames)` (see `quickstart.ipynb`)."""),
]


# ---------------------------------------------------------------- search.ipynb

SEARCH = [
    ("md", """\
# The architecture search of Xia et al., TIP 2020

Xia et al., TIP 2020, sec. IV-C-4 search where the RCN's three parameter-free modules go: the wide
expansion W (eq. 5), the shortcut connection S (eq. 6) and the attention unit A, at the places of
Fig. 6. A supernet holds every candidate placement and mixes each choice by eq. 8,
F_{k+1} = sum_i alpha_i / sum_j alpha_j M_i(F_k); the network's weights and the alphas are updated
in turn, the alphas on a validation split of each fold's training subjects, as DARTS does (Liu et
al., ICLR 2019, sec. 3.1). `mer-jax search` then ranks the 512 discrete architectures by their
averaged eq. 8 weights and writes a config for the best one, which `mer-jax train` trains like any
other (docs/search.md in the repository).

This notebook searches on the built-in synthetic flow maps, shows the ranking, trains the derived
config on every leave-one-subject-out fold and shows its report.

`QUICK = True` (the default): 2 subjects per source data set, 1 searched fold of 8 epochs, 10 training
epochs; about a minute on 2 CPU cores. `QUICK = False`: `configs/rcn_search.py` as it is (18
subjects, 3 folds x 30 epochs: 43 s on 2 CPU cores), then the derived config's 40 epochs on all 18
folds (179 s). The synthetic maps say nothing about which placement is better on real
micro-expressions: on MEGC2019, use the paper's settings at the end of this notebook."""),
    ("code", install_cell("1 searched fold of 8 epochs on a small synthetic set, about a minute on 2 CPU cores.")),
    ("md", "## Setup"),
    ("code", setup_cell("search", """\
import json

from mer_jax.cli import load_config
from mer_jax.config import sibling_config
from mer_jax.methods.rcn.search import search
from mer_jax.train import train_and_evaluate""")),
    ("md", """\
## The search config

`configs/rcn_search.py`: the supernet has the quick start's sizes (M = 16, K = 5, 3 recurrent steps);
`config.search` holds the search's own settings: the folds searched, the epochs (the first
`warmup_epochs` update the weights only), the validation fraction, the alphas' optimiser and their
projection onto positive values."""),
    ("code", """\
config = sibling_config(str(REPO / "configs" / "rcn_search.py"), "rcn_search")
if QUICK:
    config.data.toy_flow.subjects_per_dataset = (2, 2, 2)  # 72 clips instead of 216
    config.search.num_folds, config.search.epochs, config.search.warmup_epochs = 1, 8, 2
    config.train.epochs = 10  # the derived config inherits the training settings
print(config.search)"""),
    ("md", "## Search"),
    ("code", """\
SEARCHED = WORK / "search"
architecture = search(config, SEARCHED, progress=not QUICK)
choice = architecture["choice"]
print(f"{len(architecture['folds'])} fold(s) searched in {architecture['seconds']:.0f} s: stem {choice['stem']}, "
      f"recurrence {choice['recurrence']}, attention {list(choice['attention'])}"
      + (f" (= {choice['equals']})" if choice["equals"] else ""))"""),
    ("md", """\
## Reading architecture.json

Each node of the search space is a choice between two candidates; its eq. 8 weights
alpha / sum(alpha), averaged over the searched folds, say how much the supernet came to use each.
An architecture's score is the product of its candidates' weights; the ranking lists the best ones,
naming those that are models of the paper (RCN-C, RCN-F, RCN-P are its top three, sec. V-C-4)."""),
    ("code", """\
rows = ["| node | candidates: eq. 8 weight |", "|---|---|"]
for node, weights in architecture["alphas"].items():
    rows.append(f"| {node} | " + ", ".join(f"{c}: {w:.3f}" for c, w in weights.items()) + " |")
display(Markdown("\\n".join(rows)))
rows = ["| rank | score | stem | recurrence | attention | model |", "|---|---|---|---|---|---|"]
for entry in architecture["ranking"]:
    model = entry["model"]
    rows.append(f"| {entry['rank']} | {entry['score']:.4f} | {model['stem']} | {model['recurrence']} | "
                f"{', '.join(model['attention']) or '-'} | {entry['equals'] or ''} |")
display(Markdown("\\n".join(rows)))"""),
    ("md", "`derived_config.py`, the chosen architecture as a config file for `mer-jax train`:"),
    ("code", """\
display(Markdown("```python\\n" + (SEARCHED / "derived_config.py").read_text() + "```"))"""),
    ("md", """\
## Train the derived config

On every LOSO fold of the same data, as `mer-jax train --config SEARCHED/derived_config.py` would."""),
    ("code", """\
derived = load_config(str(SEARCHED / "derived_config.py"), [])
RUN = WORK / "searched"
result = train_and_evaluate(derived, RUN, progress=not QUICK)
print(f"{result['num_folds']} folds: accuracy {result['accuracy']:.3f}, UF1 {result['uf1']:.3f}, "
      f"UAR {result['uar']:.3f}")
show_report(RUN)"""),
    ("md", """\
## On MEGC2019

With the composite built (`your_data.ipynb` or `mer-jax build megc2019`), the paper's setting: every
fold searched, the paper's training (sec. V-A), and DARTS's alpha learning rate, the paper giving no
search schedule (the values are those of `configs/rcn_search.py`'s docstring):

```python
config = sibling_config(str(REPO / "configs" / "rcn_search.py"), "rcn_search")
config.data.name, config.data.data_dir = "megc2019/flow60", "PATH/TO/tfds"
config.search.num_folds, config.search.epochs, config.search.alpha_learning_rate = 0, 50, 3e-4
config.model.dropout, config.train.learning_rate = 0.5, 1e-4
config.train.loss, config.train.epochs = "cross_entropy", 500
```"""),
]

# ---------------------------------------------------------------- six_regions.ipynb

SIX_REGIONS = [
    ("md", """\
# Six facial regions, a CNN per region, an LSTM per region (Aouayeb et al., MLSP 2019)

The method cuts six regions from every frame of a clip (left and right eye with eyebrow, nose, left
and right cheek, mouth; sec. 3.1), boxes placed once from the first frame's 68 landmarks. It trains in
two stages per fold (sec. 3.2-3.3, 4.1.2):

1. **six region CNNs** on single frames, each on its own label: the clip's class where the region takes
   part in the expression, an extra class "not me" where it does not, with the focal loss of eq. 2;
2. the CNNs **frozen**, each frame's six 20-d features feed **six LSTMs** of 120 units, whose last
   states are concatenated and classified into the clip's class.

This notebook writes a synthetic composite, builds its `regions`, looks at the regions and their "not
me" labels, trains both stages on every fold at once and reads the report with each stage's figures.

`QUICK = True` (the default): a tiny composite (2 subjects per data set), 4 frames per clip and 2 + 10
epochs, about two minutes on 2 CPU cores; its scores mean nothing. `QUICK = False`:
`configs/roi_cnn_lstm_synthetic.py` on the full composite (5 folds of whole subjects, 8 frames, half-size
regions cut at the synthetic faces' crop size, 60 + 60 epochs; the README gives its time and scores). On
the synthetic composite both stages fit their training data, yet held out this method stays near chance
(UF1 0.44 with motions ten times the shipped ones, chance 0.33): its region CNNs memorise their training
faces' frames and do not tell the class of a new face (docs/models.md in the repository, "Does each
method learn?", gives the measurements). The paper's full setting on the real composite is at the end."""),
    ("code", install_cell("a tiny composite, 4 frames per clip, 2 + 10 epochs, about two minutes on 2 CPU cores.")),
    ("md", "## Setup"),
    ("code", setup_cell("six_regions", """\
import json

import matplotlib.pyplot as plt
import numpy as np

from mer_jax import method
from mer_jax.data.clips import build as build_lib
from mer_jax.config import sibling_config
from mer_jax.data.region_geometry import REGION_NAMES
from mer_jax.data.synth import write_synthetic_composite
from mer_jax.train import train_and_evaluate""")),
    ("md", """\
## 1. A synthetic composite

The stand-in for CASME II + SAMM + SMIC of `quickstart.ipynb`: real face photographs, one identity per
subject, brief action-unit-like motions, in each data set's own folders and coding sheets. CASME II and
SAMM clips carry their action units, which step 3 turns into region labels."""),
    ("code", COMPOSITE_CELL),
    ("md", """\
## 2. Build megc2019/regions

Every frame from onset to offset, the six regions cut by the first frame's boxes, grey, each at the
top-left of a black canvas of its region's size (the paper's "black background", sec. 4.1.2), stored as
uint8 (docs/data.md, "regions"). The command line: `mer-jax build megc2019 --builder_config regions
--manual_dir RAW --data_dir TFDS`."""),
    ("code", """\
TFDS = WORK / "tfds"
builder = build_lib.build("megc2019", builder_config="regions", manual_dir=str(RAW), data_dir=str(TFDS))
print(build_lib.format_summary(builder))"""),
    ("md", """\
## 3. The config, the regions and their labels

`configs/roi_cnn_lstm_synthetic.py` is the paper's architecture sized for a CPU; `config.stages` holds
each stage's model and training, over the shared `config.train`. `mer-jax describe --config
configs/roi_cnn_lstm_synthetic.py` prints both stages' layer tables and parameter counts (639,312 for
the six CNNs, 452,419 for the LSTMs and the classifier; docs/models.md compares them with the paper's
1,093,531)."""),
    ("code", """\
config = sibling_config(str(REPO / "configs" / "roi_cnn_lstm_synthetic.py"), "roi_cnn_lstm_synthetic")
config.data.data_dir = str(TFDS)
if QUICK:  # 4 frames per clip; 2 epochs for the CNNs, 10 for the LSTMs
    config.data.frames = 4
    config.data.input_shape = (4, *config.data.input_shape[1:])
    config.stages.cnn.train.epochs, config.stages.lstm.train.epochs = 2, 10
    config.stages.cnn.train.batch_size, config.stages.lstm.train.batch_size = 32, 16
    config.train.strategy = "loop"  # "auto" (the default) would first time loop and vmap for each stage
for name, stage in config.stages.items():
    print(f"stage {name}: {stage.model.name}, {stage.train.epochs} epochs, batch {stage.train.batch_size}")
print(f"{config.protocol.name}, k = {config.protocol.k}; input {config.data.input_shape}")"""),
    ("md", """\
One clip's six regions as the model reads them, at its middle frame, and below, their difference from
the first frame, magnified: the motion the model has to find. Under them, each region's label for the
first clips: the clip's class where its action units move the region, "not me" elsewhere."""),
    ("code", """\
clips = method.load(config)
sizes = config.stages.cnn.model.region_sizes
n = int(np.argmax(clips.label == clips.label.max()))  # a clip of the last class
frames = clips.x[n].astype(float)
middle = clips.extra["num_frames"][n] // 2
fig, axes = plt.subplots(2, len(REGION_NAMES), figsize=(14, 4))
for r, (name, (h, w)) in enumerate(zip(REGION_NAMES, sizes)):
    axes[0, r].imshow(frames[middle, r, :h, :w, 0], cmap="gray", vmin=0, vmax=255)
    axes[0, r].set_title(name, fontsize=9)
    difference = 0.5 + 8 * (frames[middle, r, :h, :w, 0] - frames[0, r, :h, :w, 0]) / 255
    axes[1, r].imshow(difference.clip(0, 1), cmap="gray", vmin=0, vmax=1)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"{clips.sample_id[n]} ({clips.class_names[clips.label[n]]}): frame {middle}; difference from frame 0 x 8")
plt.show()

names = (*clips.class_names, "not me")
rows = ["| clip | class | " + " | ".join(REGION_NAMES) + " |", "|---" * (len(REGION_NAMES) + 2) + "|"]
for i in range(min(8, clips.num_samples)):
    regions = " | ".join(names[k] for k in clips.extra["region_label"][i])
    rows.append(f"| {clips.sample_id[i]} | {clips.class_names[clips.label[i]]} | {regions} |")
display(Markdown("\\n".join(rows)))"""),
    ("md", """\
## 4. Train both stages on every fold at once

Per fold: the six CNNs on the frames of that fold's training clips (the held-out subjects' frames never
reach them), then every clip's frames through the frozen CNNs, then the LSTMs on the training clips'
feature sequences. All folds of a stage train together in one compiled program; each stage is
checkpointed, so a stopped run resumes in the stage it was in."""),
    ("code", """\
RUN = WORK / "run"
result = train_and_evaluate(config, RUN, progress=not QUICK)
print(f"{result['num_folds']} folds ({result['strategy']}): accuracy {result['accuracy']:.3f}, "
      f"UF1 {result['uf1']:.3f}, UAR {result['uar']:.3f}, {result['train_seconds']:.0f} s of training")"""),
    ("md", """\
## 5. The report

The scores are stage 2's, on the held-out clips; `report.json` also keeps each stage's strategy, time and
final training loss and accuracy (fold means). A stage 1 whose training accuracy stays at the share of
its most frequent region label has learnt nothing for stage 2 to use."""),
    ("code", """\
show_report(RUN)
stages = json.loads((RUN / "report.json").read_text())["stages"]
rows = ["| stage | strategy | training s | compile s | final training loss | final training accuracy |",
        "|---|---|---|---|---|---|"]
for name, stage in stages.items():
    rows.append(f"| {name} | {stage['strategy']} | {stage['train_seconds']:.0f} | {stage['compile_seconds']:.0f} | "
                f"{stage['final_train_loss']:.3f} | {stage['final_train_accuracy']:.3f} |")
display(Markdown("\\n".join(rows)))"""),
    ("md", """\
## On MEGC2019

With your CASME II, SAMM and SMIC in one folder (`your_data.ipynb` shows the layout), the paper's
setting, `configs/roi_cnn_lstm.py`: every frame, leave-one-subject-out on the 68 subjects, 100 epochs
of the CNNs and 60 of the LSTMs (sec. 4.1.2). Stage 1 alone is about 100 epochs of ~30k frames per
fold: run it on a GPU or TPU runtime (docs/scale.md).

```python
builder = build_lib.build("megc2019", builder_config="regions", manual_dir="PATH/TO/DATA", data_dir="PATH/TO/tfds")
config = sibling_config(str(REPO / "configs" / "roi_cnn_lstm.py"), "roi_cnn_lstm")
config.data.data_dir = "PATH/TO/tfds"
result = train_and_evaluate(config, WORK / "megc2019")
```"""),
]

NOTEBOOKS = {
    "quickstart.ipynb": QUICKSTART,
    "your_data.ipynb": YOUR_DATA,
    "search.ipynb": SEARCH,
    "six_regions.ipynb": SIX_REGIONS,
}


def notebook(name: str) -> nbformat.NotebookNode:
    """The notebook `name`, without outputs, with stable cell ids."""
    stem = Path(name).stem.replace("_", "-")
    cells = []
    for i, (kind, source) in enumerate(NOTEBOOKS[name]):
        make = new_markdown_cell if kind == "md" else new_code_cell
        cells.append(make(textwrap.dedent(source).strip("\n"), id=f"{stem}-{i:02d}"))
    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "toc_visible": True},
    }
    if name == "your_data.ipynb":
        metadata["accelerator"] = "GPU"  # Colab opens it on a GPU runtime
    nb = new_notebook(cells=cells, metadata=metadata)
    nbformat.validate(nb)
    return nb


def text(name: str) -> str:
    return nbformat.writes(notebook(name)) + "\n"


def main() -> None:
    for name in NOTEBOOKS:
        (HERE / name).write_text(text(name))
        print(f"wrote {HERE / name}")
    readme = README.read_text()
    updated = BADGE_URL.sub(colab_url(""), readme)
    if updated != readme:
        README.write_text(updated)
        print(f"updated the Colab links of {README}")


if __name__ == "__main__":
    main()
