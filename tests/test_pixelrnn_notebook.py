"""What only assignment 1's solution notebook shows (the shared rules: tests/test_assignment_notebooks.py)."""

from coursekit import paths
from coursekit.notebook import read_notebook


def test_solution_reports_both_models_bits_per_pixel():
    nb = read_notebook(paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "held-out bits per pixel: PixelLSTM" in text


def _solution_namespace():
    """The solution's own globals (a notebook's check gets globals() itself), from a fresh load the test may change."""
    from coursekit.notebook import load_notebook_module

    return vars(load_notebook_module(paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb", "pixelrnn_solution_for_check_test"))


def test_check_train_catches_a_train_that_returns_the_last_weights_not_the_best(capsys):
    import pytest

    from coursekit.checks import CheckFailed, run_check
    from coursekit.checks.pixelrnn import check_train

    ns = _solution_namespace()
    # called in a cell, a check prints its line and ends with no value (nbgrader reads a test cell's value as credit)
    assert check_train(ns) is None
    assert "[PASS] train: " in capsys.readouterr().out
    # `coursekit check` and run_all take the message itself
    result = run_check(check_train, ns)
    assert result.passed and "keeps those best on validation" in result.message, result.line()
    solution_train = ns["train"]

    def last_weights(model, data, steps, val=None, eval_every=50, val_log=None, **kw):  # measures, never restores
        if val is None:
            return solution_train(model, data, steps, **kw)
        hist = []
        while len(hist) < steps:
            hist += solution_train(model, data, min(eval_every, steps - len(hist)), **kw)
            v = ns["evaluate_bpp"](model, val)
            if val_log is not None:
                val_log.append((len(hist), v))
        return hist

    ns["train"] = last_weights
    with pytest.raises(CheckFailed, match="weights that were best on validation"):
        check_train(ns)

    def old_signature(model, data, steps, batch_size=64, lr=5e-3, device=None, generator=None, max_seconds=None, progress=True):
        return solution_train(model, data, steps, batch_size=batch_size, lr=lr, device=device, generator=generator, progress=progress)

    ns["train"] = old_signature
    with pytest.raises(CheckFailed, match="should accept weight_decay, val, eval_every and val_log"):
        check_train(ns)
