"""What only assignment 1's solution notebook shows (the shared rules: tests/test_assignment_notebooks.py)."""

from coursekit import paths
from coursekit.notebook import read_notebook


def test_solution_reports_both_models_bits_per_pixel():
    nb = read_notebook(paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "held-out bits per pixel: PixelLSTM" in text
