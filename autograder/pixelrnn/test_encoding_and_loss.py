"""One-hot encoding and the loss, in nats and in bits per pixel."""

import math

import torch


def test_one_hot(probe):
    x = torch.tensor([[[0, 6], [3, 3]], [[5, 1], [2, 4]]])  # (2, 2, 2)
    out = probe("one_hot", x=x.tolist(), k=7)["out"]
    assert tuple(out.shape) == (2, 2, 2, 7), f"one_hot_pixels(x, K=7) for x of shape (2, 2, 2) should have shape (2, 2, 2, 7), got {tuple(out.shape)}"
    assert out.is_floating_point(), f"one_hot_pixels should return floats, got {out.dtype}"
    assert torch.equal(out, torch.nn.functional.one_hot(x, 7).float()), "one_hot_pixels(x, K)[..., v] should be 1 exactly where x == v and 0 elsewhere"


def _loss(probe, expected):
    case = expected["loss"]
    out = probe("loss", logits=case["logits"], target=case["target"])
    return out, case


def _scalar(value, name):
    assert isinstance(value, (int, float)) or (torch.is_tensor(value) and value.dim() == 0), f"{name} should return a scalar tensor"
    return float(value)


def test_nll_nats(probe, expected):
    out, case = _loss(probe, expected)
    got, want = _scalar(out["nats"], "nll_nats"), case["nll_nats"]
    n_pixels = len(case["target"]) * len(case["target"][0])
    assert abs(got * math.log(2) - want) >= case["tolerance"], "nll_nats returns the loss in bits; use the natural logarithm (nats)"
    assert abs(got - want * n_pixels) >= 1e-3, "nll_nats returns the sum over pixels; return the mean per pixel"
    assert abs(got - want) < case["tolerance"], "nll_nats differs from the average negative natural-log likelihood per pixel on the graders' inputs"


def test_bits_per_pixel(probe, expected):
    out, case = _loss(probe, expected)
    got = _scalar(out["bits"], "bits_per_pixel")
    assert abs(got - case["nll_nats"]) >= case["tolerance"], "bits_per_pixel returns nats; divide by ln 2 to get bits"
    assert abs(got - case["bits_per_pixel"]) < case["tolerance"], "bits_per_pixel differs from the average negative log2 likelihood per pixel on the graders' inputs"
