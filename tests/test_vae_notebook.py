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


# --- the training recipe: a validation split carved from the training images, the best checkpoint kept -----------------
def _small_run():
    import torch

    from coursekit.notebook import solution_module

    sol = solution_module("vae")
    torch.manual_seed(0)
    images = torch.randint(0, 5, (40, 20, 20), generator=torch.Generator().manual_seed(1))
    fit, val = sol.validation_split(len(images), 0.1)
    return sol, images[fit], images[val], (fit, val)


def test_validation_split_is_carved_from_the_training_images():
    sol, _, _, (fit, val) = _small_run()
    assert len(val) == 4 and len(fit) == 36
    assert sorted(fit.tolist() + val.tolist()) == list(range(40)), "fit and val must share no image and leave none out"
    again = sol.validation_split(40, 0.1)
    assert all(a.tolist() == b.tolist() for a, b in zip(again, (fit, val))), "the split is seeded"


def test_keep_best_watches_train_without_changing_it_and_restores_the_best_weights():
    import torch

    sol, x_fit, x_val, _ = _small_run()

    def run(keep):
        torch.manual_seed(0)
        model = sol.VAE(5, 20, 20)
        other = torch.nn.Linear(2, 2)  # another model's optimiser: not counted
        other_opt = torch.optim.SGD(other.parameters(), lr=0.1)
        if not keep:
            return model, sol.train(model, x_fit, 6, batch_size=8, generator=torch.Generator().manual_seed(0), progress=False), None
        with sol.KeepBest(model, x_val, x_fit, every=2) as best:
            hist = sol.train(model, x_fit, 6, batch_size=8, generator=torch.Generator().manual_seed(0), progress=False)
            other(torch.ones(1, 2)).sum().backward()
            other_opt.step()
            # one ruinous step of the decoder after training: the weights it leaves are the worst on validation
            ruin = torch.optim.SGD(model.decoder.parameters(), lr=1.0)
            for p in model.decoder.parameters():
                p.grad = torch.randn_like(p)
            ruin.step()
        return model, hist, best

    watched, hist, best = run(True)
    plain, plain_hist, _ = run(False)
    assert hist["loss"] == plain_hist["loss"], "validation must not change the training run (its noise has its own generator)"
    assert best.steps == [2, 4, 6, 7], "every 2 steps of the model's optimisers, and after the last one; not the other model's"
    assert best.val_bpp[-1] > best.best_bpp + 1 and best.best_step in (2, 4, 6), best.val_bpp
    from coursekit.metrics import negative_elbo_to_bpp

    kept = negative_elbo_to_bpp(sol.evaluate_negative_elbo(watched, x_val), 20, 20)
    assert abs(kept - best.best_bpp) < 1e-9, "the weights best on validation are put back at the end"
    after = torch.optim.SGD(watched.parameters(), lr=0.0)
    for _ in range(2):
        after.step()
    assert best.step == 7 and best.steps[-1] == 7, "the hook is removed when the with block ends"
