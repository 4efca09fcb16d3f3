"""The three solution notebooks run top to bottom on another course data set, as after `coursekit reference --dataset`.

The data set is the course's own format (pixel_color.txt, colormap.txt: no labels), 800 of the sprites, so its held-out
split has 80 images, like the lecture's 792 Pokémon. Every number, index, caption and picture of the notebooks must come
from the data set at run time; the conditional sections must skip themselves with a note. The test shortens the training
budgets by rewriting the notebooks' settings lines (each rewrite must match, so a renamed setting fails here, not silently).

The check cells are nbgrader autograder-test cells worth 0 points, so that `nbgrader validate` (JupyterLab's Validate
button) fails an unfinished notebook instead of saying "Success!", and passes a finished one.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from coursekit import paths
from coursekit.notebook import read_notebook

IMAGES = 800  # as many as the lecture's Pokémon (792): a held-out split of 80

# (pattern, replacement) per notebook: each pattern must occur exactly once in the notebook's code cells
BUDGETS = {
    "pixelrnn": [(r"^SECONDS = \d+", "SECONDS = 3"), (r"^STEPS = .*$", "STEPS = 20")],
    "vae": [(r"^STEPS = .*$", "STEPS = 30"), (r"^CVAE_STEPS = .*$", "CVAE_STEPS = 10")],
    "gan": [(r"^STEPS = \d+", "STEPS = 20"), (r"^COND_STEPS = \d+", "COND_STEPS = 10"), (r"^EVERY = \d+", "EVERY = 10"),
            (r"^N_EVAL = \d+", "N_EVAL = 50"), (r"^for k in range\(61\):", "for k in range(11):")],
}


def shortened(name: str) -> nbformat.NotebookNode:
    """The solution notebook ``name`` with the small training budgets of ``BUDGETS``."""
    nb = read_notebook(paths.solutions_dir() / name / f"{name}.ipynb")
    for pattern, repl in BUDGETS[name]:
        hits = 0
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source, n = re.subn(pattern, repl, cell.source, flags=re.M)
                hits += n
        assert hits == 1, f"{name}: the setting {pattern!r} should occur once in the notebook's code, found {hits}"
    return nb


@pytest.fixture(scope="module")
def unlabelled_course_data(tmp_path_factory):
    """800 sprites in the course's text format (no labels), and an evaluator for them (a few epochs: for speed)."""
    import torch

    from coursekit.data import load_dataset
    from coursekit.data.dataset import PaletteDataset
    from coursekit.data.files import write_course_files
    from coursekit.metrics.evaluator import default_config, save_evaluator, train_evaluator
    from coursekit.data.course import dataset_fingerprint

    root = tmp_path_factory.mktemp("course")
    sprites = load_dataset("sprites")
    folder = root / "course800"
    write_course_files(PaletteDataset("course800", sprites.indices[:IMAGES], sprites.palette), folder)
    ds = load_dataset(str(folder))
    assert ds.labels is None and len(ds) == IMAGES and len(ds.split_indices("test")) < 100
    config = default_config(ds)
    config.epochs = 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = train_evaluator(ds, config)
    finally:
        torch.set_num_threads(threads)
    evaluators = root / "evaluators"
    save_evaluator(model, evaluators / f"evaluator_{ds.name}.pt", dataset=ds.name, fingerprint=dataset_fingerprint(ds))
    return folder, evaluators


def run_notebook(nb, folder, evaluators, monkeypatch, tmp_path):
    import nbclient

    monkeypatch.setenv("COURSEKIT_DATASET", str(folder))
    monkeypatch.setenv("COURSEKIT_EVALUATOR_DIR", str(evaluators))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def _text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pixelrnn", "vae", "gan"])
def test_solution_runs_top_to_bottom_on_unlabelled_course_data(name, unlabelled_course_data, monkeypatch, tmp_path):
    folder, evaluators = unlabelled_course_data
    nb = run_notebook(shortened(name), folder, evaluators, monkeypatch, tmp_path)
    text = _text(nb)
    assert "course800: 800 images" in text
    assert "sprites" not in text.lower() and "emoji" not in text.lower(), "the outputs should speak of the course data set"
    if name != "pixelrnn":
        assert "has no labels" in text, "the conditional section should say why it is skipped"
    if name == "vae":
        kept = re.search(r"kept the weights of step \d+, the best on the (\d+) validation images", text)
        assert kept and kept.group(1) == "72", "the VAE keeps the checkpoint best on 10% of the 720 training images"
    assert re.search(r"(\d+)/\1 public checks passed", text), "the public checks should run at the end and pass"
    # what JupyterLab's Validate button says of the notebook just run (nbgrader's judgment of its outputs; the
    # untouched student notebook is validated by the command itself below)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    assert validated(path) == "Success! Your notebook passes all the tests.\n"


def validated(path) -> str:
    """What ``nbgrader validate`` prints of an executed notebook, without executing it again."""
    import io

    from nbgrader.validator import Validator

    validator = Validator(preprocessors=[])
    validator.stream = io.StringIO()
    validator.validate_and_print(str(path))
    return validator.stream.getvalue()


# --- nbgrader validate (JupyterLab's Validate button): the check cells are nbgrader test cells worth 0 points ---------
def _validate(path, env=None) -> str:
    import os
    import subprocess
    import sys
    from pathlib import Path

    nbgrader = Path(sys.executable).parent / "nbgrader"
    proc = subprocess.run([str(nbgrader), "validate", str(path)], cwd=path.parent, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    return proc.stdout + proc.stderr


def test_notebooks_show_no_picture_of_another_data_set():
    for name in ("pixelrnn", "vae", "gan"):
        nb = read_notebook(paths.solutions_dir() / name / f"{name}.ipynb")
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "figures" not in code and ".png" not in code, f"{name}: draw pictures from the course data at run time"


def test_check_cells_are_nbgrader_test_cells_worth_nothing():
    for name in ("pixelrnn", "vae", "gan"):
        nb = read_notebook(paths.solutions_dir() / name / f"{name}.ipynb")
        checks = [c for c in nb.cells if c.cell_type == "code" and "check" in c.metadata.get("tags", [])
                  and "run_all(" not in c.source]
        assert checks, name
        for c in checks:
            meta = c.metadata.get("nbgrader", {})
            assert meta.get("grade") is True and meta.get("points") == 0 and meta.get("locked") is True, (name, c.source[:60])


@pytest.mark.slow
def test_nbgrader_validate_fails_on_an_untouched_student_notebook(tmp_path):
    from coursekit.release import student_notebook

    path = tmp_path / "pixelrnn.ipynb"
    nbformat.write(student_notebook(read_notebook(paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb")), path)
    out = _validate(path)
    assert "Success" not in out, out[-2000:]
    assert "VALIDATION FAILED" in out and "NotImplementedError" in out, out[-2000:]
