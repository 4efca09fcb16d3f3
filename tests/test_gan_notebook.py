"""What only assignment 3's solution notebook shows (the shared rules: tests/test_assignment_notebooks.py)."""

from coursekit import paths
from coursekit.notebook import read_notebook


def test_solution_shows_the_gradient_experiment_metrics_and_extensions():
    nb = read_notebook(paths.solutions_dir() / "gan" / "gan.ipynb")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 8  # curves, sample grids, comparisons
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    for needle in ("|grad| minimax", "final metrics (500 samples)", "spectral norm D", "trained the conditional GAN"):
        assert needle in text, needle
