"""The Colab notebooks of colab/: generated, committed without outputs, installing only in Colab.

Running them is nbmake's part: `python -m pytest` executes every colab/*.ipynb
top to bottom with QUICK = True (pyproject.toml: testpaths colab, addopts
--nbmake), so a notebook that raises fails the suite. These tests check what
running them cannot: that the committed files are what colab/make_notebooks.py
writes and hold no outputs, and that each first code cell defines QUICK and
installs the package in Colab and nowhere else (run here with and without a
stand-in google.colab module, subprocess.run recorded instead of run).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLAB_DIR = REPO / "colab"
PATHS = sorted(COLAB_DIR.glob("*.ipynb"))


def generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", COLAB_DIR / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def first_code_cell(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join(next(cell for cell in cells if cell["cell_type"] == "code")["source"])


def run_first_cell(path: Path, monkeypatch) -> tuple[dict, list]:
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append(command))
    namespace = {}
    exec(compile(first_code_cell(path), str(path), "exec"), namespace)
    return namespace, calls


def test_the_committed_notebooks_are_those_the_generator_writes():
    make = generator()
    assert [p.name for p in PATHS] == sorted(make.NOTEBOOKS) == [
        "quickstart.ipynb", "search.ipynb", "six_regions.ipynb", "your_data.ipynb"]
    for path in PATHS:
        assert path.read_text() == make.text(path.name), f"{path.name}: run python colab/make_notebooks.py"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    assert notebook["nbformat"] == 4
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"  # nbmake starts this kernel: the venv's Python
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["id"]
        assert "attachments" not in cell, cell["id"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_first_code_cell_defines_quick_and_installs_nothing_outside_colab(path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    namespace, calls = run_first_cell(path, monkeypatch)
    assert namespace["QUICK"] is True  # CI runs the quick version
    assert namespace["COLAB"] is False
    assert calls == []


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_first_code_cell_installs_the_repository_in_colab(path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setenv("MER_JAX_REPO", "https://github.com/someone/mer-jax")
    namespace, calls = run_first_cell(path, monkeypatch)
    assert namespace["COLAB"] is True and namespace["QUICK"] is True
    checkout = namespace["CHECKOUT"]
    clones = [c for c in calls if c[:2] == ["git", "clone"]]
    assert clones == ([] if checkout.exists() else [["git", "clone", "--depth", "1",
                                                     "https://github.com/someone/mer-jax", str(checkout)]])
    assert calls[-1][:4] == [sys.executable, "-m", "pip", "install"] and f"{checkout}[data]" in calls[-1]

    monkeypatch.setenv("MER_JAX_REPO", "https://github.com/OWNER/mer-jax")  # the placeholder, not a repository
    with pytest.raises(ValueError, match="REPO_URL"):
        run_first_cell(path, monkeypatch)


def test_readme_opens_every_notebook_in_colab():
    make = generator()
    readme = (REPO / "README.md").read_text()
    for path in PATHS:
        assert f"({make.colab_url(path.name)})" in readme, path.name
    assert "colab/" in (REPO / "docs" / "index.md").read_text()
