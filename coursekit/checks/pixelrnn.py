"""Public checks of assignment 1 (PixelRNN): shapes and simple properties, with hints.

Call them from the notebook (``check_one_hot(globals())``, ``run_all(globals())``) or run
``coursekit check assignments/pixelrnn/pixelrnn.ipynb``. They use tiny made-up inputs and
never compare against the reference solution's values: passing them does not mean full marks.
"""

from __future__ import annotations

import math

from . import CheckFailed, expect_shape, need, run_checks, shown

K, WIDTH, HEIGHT = 5, 4, 3  # a tiny palette and image for the checks (not exported: see __all__)
T = WIDTH * HEIGHT


def _torch():
    import torch

    return torch


def _images(n: int = 2, seed: int = 0):
    """(n, T) random palette indices in 0..K-1."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, K, (n, T), generator=g)


def _models(ns: dict):
    """A tiny instance of each model, with fixed weights."""
    torch = _torch()
    PixelLSTM = need(ns, "PixelLSTM")
    PixelLSTMAbove = need(ns, "PixelLSTMAbove")
    torch.manual_seed(0)
    return {"PixelLSTM": PixelLSTM(K, hidden=8), "PixelLSTMAbove": PixelLSTMAbove(K, WIDTH, hidden=8)}


@shown
def check_one_hot(ns: dict) -> str:
    torch = _torch()
    one_hot_pixels = need(ns, "one_hot_pixels")
    x = torch.tensor([[0, 2, 4], [1, 1, 3]])
    oh = one_hot_pixels(x, K)
    if not torch.is_tensor(oh):
        raise CheckFailed(f"one_hot_pixels should return a torch tensor, got {type(oh).__name__}")
    expect_shape("one_hot_pixels(x, K) for x of shape (2, 3)", oh, (2, 3, K), "add a last dimension of size K")
    if not oh.is_floating_point():
        raise CheckFailed(f"one_hot_pixels should return floats (the LSTM eats floats), got {oh.dtype}")
    if not torch.all((oh == 0) | (oh == 1)):
        raise CheckFailed("one_hot_pixels should hold only 0s and 1s")
    if not torch.allclose(oh.sum(-1), torch.ones(2, 3)):
        raise CheckFailed("each pixel's one-hot vector should sum to 1 (exactly one 1 per pixel)")
    if not torch.equal(oh.argmax(-1), x):
        raise CheckFailed("the 1 of pixel value v should sit at position v of the last dimension")
    return "shape, 0/1 values and sums are right"


@shown
def check_model_shapes(ns: dict) -> str:
    torch = _torch()
    one_hot_pixels = need(ns, "one_hot_pixels")
    x = _images(2)
    for name, model in _models(ns).items():
        logits = model(x)
        expect_shape(
            f"{name}(x) for x of shape (B={2}, T={T})", logits, (2, T, K),
            "return one row of K logits per pixel, batch first: (B, T, K), no softmax",
        )
        again = model(one_hot_pixels(x, K))
        expect_shape(f"{name} on one-hot input (B, T, K)", again, (2, T, K), "forward must also accept one-hot floats")
        if not torch.allclose(logits, again, atol=1e-5):
            raise CheckFailed(f"{name} gives different logits for indices and for their one-hot encoding; encode indices with one_hot_pixels and use floats as they are")
    return f"both models map (B, T) to (B, T, K) logits"


@shown
def check_causality(ns: dict) -> str:
    torch = _torch()
    x = _images(2)
    for name, model in _models(ns).items():
        with torch.no_grad():
            base = model(x)
            for t in (0, 1, WIDTH, T - 1):
                y = x.clone()
                y[:, t:] = (y[:, t:] + 1) % K  # change pixel t and everything after it
                if not torch.allclose(model(y)[:, : t + 1], base[:, : t + 1], atol=1e-6):
                    raise CheckFailed(
                        f"{name}: logits[:, {t}] change when pixels {t} and later change. The prediction for pixel t may only "
                        "use pixels 0..t-1: shift the input one step right (a start vector of zeros at t = 0)"
                    )
            y = x.clone()
            y[:, 0] = (y[:, 0] + 1) % K
            if torch.allclose(model(y)[:, 1], base[:, 1], atol=1e-7):
                raise CheckFailed(f"{name}: the prediction for pixel 1 ignores pixel 0; feed the previous pixel to the LSTM")
    return "predictions only depend on earlier pixels"


@shown
def check_step_matches_forward(ns: dict) -> str:
    torch = _torch()
    x = _images(2)
    for name, model in _models(ns).items():
        with torch.no_grad():
            full = model(x)
            state = None
            for t in range(T):
                logits, state = model.step(x, t, state)
                expect_shape(f"{name}.step(x, {t}, state)'s logits", logits, (2, K), "return the logits of pixel t only: (B, K)")
                if not torch.allclose(logits, full[:, t], atol=1e-4):
                    raise CheckFailed(
                        f"{name}.step(x, t={t}, state) differs from forward(x)[:, {t}]; step must feed the LSTM the same input "
                        "forward uses at position t and carry the LSTM state from one call to the next"
                    )
    return "step-by-step logits equal forward's"


@shown
def check_loss(ns: dict) -> str:
    torch = _torch()
    nll_nats = need(ns, "nll_nats")
    bits_per_pixel = need(ns, "bits_per_pixel")
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, T, K, generator=g)
    target = _images(2, seed=1)
    nats = nll_nats(logits, target)
    if not torch.is_tensor(nats) or nats.dim() != 0:
        raise CheckFailed("nll_nats should return a scalar tensor (the mean over all pixels), so that .backward() works")
    if not torch.isfinite(nats) or nats <= 0:
        raise CheckFailed(f"nll_nats should be positive and finite, got {float(nats)}")
    uniform = nll_nats(torch.zeros(2, T, K), target)
    if abs(float(uniform) - math.log(K)) > 1e-4:
        raise CheckFailed(
            f"with all logits equal every colour has probability 1/K, so the loss should be ln K = {math.log(K):.4f} nats per pixel, "
            f"got {float(uniform):.4f}; average over pixels (not sum) and use the natural log"
        )
    bits = bits_per_pixel(logits, target)
    if not torch.is_tensor(bits) or bits.dim() != 0:
        raise CheckFailed("bits_per_pixel should return a scalar tensor")
    if abs(float(bits) * math.log(2) - float(nats)) > 1e-4:
        raise CheckFailed("bits per pixel and nats per pixel should be the same loss in other units: bits = nats / ln 2")
    logits.requires_grad_(True)
    nll_nats(logits, target).backward()
    if logits.grad is None or not torch.isfinite(logits.grad).all():
        raise CheckFailed("nll_nats should be differentiable with respect to the logits")
    return "loss is a positive scalar, ln K for uniform logits, bits = nats / ln 2"


@shown
def check_train(ns: dict) -> str:
    torch = _torch()
    train = need(ns, "train")
    PixelLSTM = need(ns, "PixelLSTM")
    torch.manual_seed(0)
    model = PixelLSTM(K, hidden=8)
    before = [p.detach().clone() for p in model.parameters()]
    hist = train(model, _images(8), steps=3, batch_size=4, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"), progress=False)
    if not isinstance(hist, (list, tuple)) or len(hist) != 3:
        raise CheckFailed(f"train(..., steps=3) should return a list of 3 losses (one per step), got {type(hist).__name__} of length {len(hist) if hasattr(hist, '__len__') else '?'}")
    if not all(isinstance(v, float) and math.isfinite(v) for v in hist):
        raise CheckFailed("the loss history should hold finite Python floats (use loss.item())")
    if all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
        raise CheckFailed("train did not change the model's weights; call optimizer.step() after loss.backward()")
    _check_keeps_best(ns, train, PixelLSTM)
    return "train returns one finite loss per step, updates the weights and keeps those best on validation"


def _check_keeps_best(ns: dict, train, PixelLSTM) -> None:
    """train(..., val=, eval_every=2) for 5 steps measures validation after steps 2, 4 and 5 and returns the best weights.

    The notebook's evaluate_bpp is replaced for the call by one that reports made-up figures (3, 1, 2: the best is
    after step 4) and notes the weights it was shown."""
    torch = _torch()
    if "evaluate_bpp" not in ns:
        raise CheckFailed("evaluate_bpp is missing: run the cell that defines it before this check")
    real, seen, figures = ns["evaluate_bpp"], [], iter([3.0, 1.0, 2.0, 4.0, 4.0])

    def fake_evaluate_bpp(model, seqs, batch_size=256):
        model.eval()
        seen.append([p.detach().clone() for p in model.parameters()])
        return next(figures)

    torch.manual_seed(0)
    model, log = PixelLSTM(K, hidden=8), []
    ns["evaluate_bpp"] = fake_evaluate_bpp
    try:
        train(model, _images(8), steps=5, batch_size=4, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
              progress=False, val=_images(3, seed=1), eval_every=2, val_log=log)
    except TypeError as e:
        raise CheckFailed(f"train should accept weight_decay, val, eval_every and val_log (see its docstring): {e}") from None
    finally:
        ns["evaluate_bpp"] = real
    if len(seen) != 3:
        raise CheckFailed(f"with val and eval_every=2, 5 steps should measure validation 3 times (after steps 2, 4 and 5) "
                          f"with evaluate_bpp(model, val), got {len(seen)}")
    if [step for step, _ in log] != [2, 4, 5] or [v for _, v in log] != [3.0, 1.0, 2.0]:
        raise CheckFailed(f"val_log should hold (steps taken, validation bits per pixel) of each measurement: expected "
                          f"[(2, 3.0), (4, 1.0), (5, 2.0)] with made-up figures 3, 1, 2, got {log}")
    if not all(torch.equal(a, b) for a, b in zip(seen[1], model.parameters())):
        raise CheckFailed("train should return the model with the weights that were best on validation (here those measured "
                          "after step 4): keep copy.deepcopy(model.state_dict()) when a figure is the best so far, and "
                          "model.load_state_dict(...) it at the end")
    if model.training:
        raise CheckFailed("train should leave the model in eval mode (model.eval()) when it returns")


@shown
def check_sample(ns: dict) -> str:
    torch = _torch()
    sample = need(ns, "sample")
    for name, model in _models(ns).items():
        s = sample(model, 3, HEIGHT, WIDTH, temperature=1.0, generator=torch.Generator().manual_seed(0))
        if not torch.is_tensor(s):
            raise CheckFailed(f"sample should return a tensor, got {type(s).__name__}")
        expect_shape(f"sample({name}, n=3, H={HEIGHT}, W={WIDTH})", s, (3, HEIGHT, WIDTH), "return images (n, H, W)")
        if s.is_floating_point() or s.min() < 0 or s.max() >= K:
            raise CheckFailed(f"samples should be integer palette indices in 0..K-1, got {s.dtype} in {s.min()}..{s.max()}")
        again = sample(model, 3, HEIGHT, WIDTH, temperature=1.0, generator=torch.Generator().manual_seed(0))
        if not torch.equal(s, again):
            raise CheckFailed("two calls with generators of the same seed gave different samples; draw every random number with `generator`")
    return "samples have shape (n, H, W), valid colours, and follow the generator"


@shown
def check_complete(ns: dict) -> str:
    torch = _torch()
    complete = need(ns, "complete")
    images = _images(3, seed=2).reshape(3, HEIGHT, WIDTH)
    for name, model in _models(ns).items():
        for n_known in (T // 2, T // 4):
            out = complete(model, images.clone(), n_known, temperature=1.0, generator=torch.Generator().manual_seed(0))
            expect_shape(f"complete({name}, images, n_known={n_known})", out, images.shape, "return images of the same shape")
            if not torch.equal(out.reshape(3, T)[:, :n_known].cpu(), images.reshape(3, T)[:, :n_known]):
                raise CheckFailed(f"complete changed some of the first n_known={n_known} pixels (in raster order); keep them as given")
            if out.is_floating_point() or out.min() < 0 or out.max() >= K:
                raise CheckFailed("completed images should be integer palette indices in 0..K-1")
    return "completion keeps the known pixels and returns valid images"


CHECKS = [
    check_one_hot,
    check_model_shapes,
    check_causality,
    check_step_matches_forward,
    check_loss,
    check_train,
    check_sample,
    check_complete,
]


def run_all(ns: dict, verbose: bool = True):
    """Run every public check of the assignment on the namespace ``ns`` (e.g. ``globals()``)."""
    return run_checks(CHECKS, ns, verbose=verbose)


__all__ = [fn.__name__ for fn in CHECKS] + ["run_all", "CHECKS"]  # what `from ... import *` brings into a notebook
