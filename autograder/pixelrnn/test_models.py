"""The two models: output shapes, causality (checked with gradients, as in pytorch-made), the pixel above."""

import torch

MODELS = ["PixelLSTM", "PixelLSTMAbove"]


def _check_shape(probe, name):
    out = probe("forward", model=name)
    want = (out["B"], out["T"], out["K"])
    got = tuple(out["from_indices"].shape)
    assert got == want, f"{name}(x) for x of shape (B={want[0]}, T={want[1]}) should give logits (B, T, K) = {want}, got {got}"
    assert tuple(out["from_one_hot"].shape) == want, f"{name} on one-hot input (B, T, K) should give {want}, got {tuple(out['from_one_hot'].shape)}"
    assert torch.allclose(out["from_indices"], out["from_one_hot"], atol=1e-5), f"{name} gives different logits for indices and for their one-hot encoding"


def test_plain_output_shape(probe):
    _check_shape(probe, "PixelLSTM")


def test_above_output_shape(probe):
    _check_shape(probe, "PixelLSTMAbove")


def _check_causal(probe, name):
    out = probe("causality", model=name)
    g, T = out["grads"], out["T"]
    assert tuple(g.shape) == (T, T), "the causality check could not read the model's gradients"
    for t in range(T):
        leak = (g[t, t:] > 0).nonzero()
        assert len(leak) == 0, (
            f"{name} is not causal: logits[:, {t}] (the prediction of pixel {t}) depend on pixel {t + int(leak[0])}. "
            "The prediction of pixel t may only use pixels before t: shift the input right by one"
        )
        if t > 0:
            assert g[t, t - 1] > 0, f"{name}: the prediction of pixel {t} ignores pixel {t - 1}, the one just before it"


def test_plain_causal(probe):
    _check_causal(probe, "PixelLSTM")


def test_above_causal(probe):
    _check_causal(probe, "PixelLSTMAbove")


def test_above_sees_pixel_above(probe):
    out = probe("above")
    assert out["base"].shape == out["changed"].shape, "PixelLSTMAbove.step should return logits of the same shape at every step"
    assert not torch.allclose(out["base"], out["changed"]), (
        "PixelLSTMAbove.step(x, t, state) ignores x[:, t - W], the pixel above pixel t; "
        "at step t feed the LSTM the one-hot pixel above together with the previous pixel"
    )


def test_step_matches_forward(probe, credit):
    for name in MODELS:
        out = probe("steps", model=name)
        bad_shape = next((s for s in out["shapes"] if len(s) != 2), None)
        if not credit.part(1, "steps" in out, f"{name}.step should return logits of shape (B, K), got {bad_shape or out['shapes'][0]}"):
            continue
        diff = (out["steps"] - out["forward"]).abs().amax(dim=(0, 2))  # (T,)
        first = int((diff > 1e-4).nonzero()[0]) if bool((diff > 1e-4).any()) else None
        credit.part(2, first is None, f"{name}.step(x, {first}, state) differs from forward(x)[:, {first}]")
