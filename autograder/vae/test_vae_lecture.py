"""Graders of the lecture's pictures (interpolation, latent traversal) and of the conditional VAE extension."""

import torch


def test_interpolation(probe):
    r = probe("interpolate_traversal", case=0)
    path = r["path"]
    assert tuple(path.shape) == tuple(r["path_here"].shape), f"interpolate(model, x_a, x_b, steps=5) should return (steps, H, W), got {tuple(path.shape)}"
    assert torch.equal(path.long(), r["path_here"]), (
        "interpolate should decode (argmax over colours) the points (1 - t) * mu(x_a) + t * mu(x_b), t evenly spaced from 0 to 1, "
        "where mu(.) is the encoder's mean (no sampling)")


def test_latent_traversal(probe):
    r = probe("interpolate_traversal", case=0)
    grid = r["grid"]
    assert tuple(grid.shape) == tuple(r["grid_here"].shape), f"latent_traversal with 3 values should return a (3, 3, H, W) grid, got {tuple(grid.shape)}"
    assert torch.equal(grid.long(), r["grid_here"]), (
        "latent_traversal: out[a, b] should decode z with z[i] = values[a] (rows) and z[j] = values[b] (columns), the other dimensions as given")


def test_conditional_vae(probe):
    r = probe("conditional", case=0)
    parts = [tuple(p.get("shape", ())) for p in r.get("parts", [])]
    assert parts == [(4, 5, 8, 8), (4, 3), (4, 3)], f"ConditionalVAE(x, y, eps) should return (logits, mu, logvar) of shapes (B, K, H, W), (B, D), (B, D), got {parts or r['forward']['kind']}"
    assert r["label_changes_output"], "the conditional VAE ignores its labels: pass the one-hot label to both the encoder and the decoder"
    got = tuple(r["styled"].get("shape", ()))
    assert got == (2, 3, 8, 8), f"in_the_style_of(model, 2 examples, labels, 3 new labels) should return (2, 3, H, W), got {got}"
