"""Taking the student's code out of a notebook: answer cells in order, magics and skipped cells removed."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit.notebook import NotebookError, extract_code, read_notebook, strip_magics


def test_extract_code_skips_tagged_cells_and_magics():
    nb = new_notebook()
    nb.cells = [
        new_code_cell("%matplotlib inline\nimport torch\n!pip install x"),
        new_code_cell("def f():\n    return 1"),
        new_code_cell("train(model)", metadata={"tags": ["train"]}),
        new_code_cell("plot(samples)", metadata={"tags": ["demo"]}),
        new_code_cell("checks.run_all(globals())", metadata={"tags": ["check"]}),
        new_code_cell("%%time\nslow()"),
        new_code_cell("f?"),
    ]
    code = extract_code(nb)
    assert "import torch" in code and "def f():" in code
    for gone in ("train(model)", "plot(samples)", "run_all", "slow()"):
        assert gone not in code
    ns = {}
    exec(compile(code, "submission", "exec"), ns)  # valid Python once magics are gone
    assert ns["f"]() == 1


def test_strip_magics_keeps_line_numbers():
    src = "a = 1\n%timeit a\nb = 2"
    assert len(strip_magics(src).splitlines()) == 3


def test_read_notebook_errors(tmp_path):
    with pytest.raises(NotebookError, match="no such notebook"):
        read_notebook(tmp_path / "x.ipynb")
    (tmp_path / "bad.ipynb").write_text('{"cells": [')
    with pytest.raises(NotebookError, match=r"bad.ipynb: invalid JSON at line 1"):
        read_notebook(tmp_path / "bad.ipynb")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    with pytest.raises(NotebookError, match="not a notebook"):
        read_notebook(tmp_path / "list.ipynb")
    nbformat.write(new_notebook(), tmp_path / "ok.ipynb")
    assert read_notebook(tmp_path / "ok.ipynb").cells == []
