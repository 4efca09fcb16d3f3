"""What only assignment 2's solution notebook shows (the shared rules: tests/test_assignment_notebooks.py)."""

from coursekit import paths
from coursekit.notebook import read_notebook

SOLUTION = paths.solutions_dir() / "vae" / "vae.ipynb"


def test_conventions_are_stated_once_in_the_introduction():
    intro = read_notebook(SOLUTION).cells[0].source
    for convention in ("log-variance", "sum over the $H \\times W$ pixels", "mean over the $B$ images", "nats"):
        assert convention in intro, f"the conventions should be stated in the introduction: {convention!r}"


def test_solution_shows_the_lecture_s_figures():
    nb = read_notebook(SOLUTION)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 8  # curves, samples, traversal, interpolation, neighbours, conditional
    text = "".join(o.get("text", "") for o in outputs)
    assert "negative ELBO: held-out" in text and "bits per pixel" in text
    assert "copying_z" in text and "conditional VAE:" in text
