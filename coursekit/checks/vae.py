"""Public checks of assignment 2 (VAE): shapes and simple properties, with hints.

Call them from the notebook (``check_kl(globals())``, ``run_all(globals())``) or run
``coursekit check assignments/vae/vae.ipynb``. They use tiny made-up inputs and never compare
against the reference solution's values: passing them does not mean full marks.
"""

from __future__ import annotations

import math

from . import CheckFailed, expect_shape, need, run_checks, shown

K, HEIGHT, WIDTH, D, HID, B = 5, 8, 8, 3, 8, 4  # a tiny palette, image, code and batch for the checks

__all__ = [
    "check_encoder_decoder_shapes", "check_reparameterize", "check_kl", "check_reconstruction", "check_negative_elbo",
    "check_vae_gradients", "check_train", "check_sample", "check_interpolate", "check_latent_traversal",
    "check_conditional_vae", "CHECKS", "run_all",
]


def _torch():
    import torch

    return torch


def _images(n: int = B, seed: int = 0):
    """(n, HEIGHT, WIDTH) random palette indices in 0..K-1."""
    torch = _torch()
    return torch.randint(0, K, (n, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(seed))


def _vae(ns: dict):
    torch = _torch()
    torch.manual_seed(0)
    return need(ns, "VAE")(K, HEIGHT, WIDTH, latent_dim=D, hidden=HID)


def _pair(what: str, out):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed(f"{what} should return a pair (mu, logvar), got {type(out).__name__}")
    return out


@shown
def check_encoder_decoder_shapes(ns: dict) -> str:
    torch = _torch()
    Encoder, Decoder = need(ns, "Encoder"), need(ns, "Decoder")
    torch.manual_seed(0)
    enc, dec = Encoder(K, HEIGHT, WIDTH, latent_dim=D, hidden=HID), Decoder(K, HEIGHT, WIDTH, latent_dim=D, hidden=HID)
    mu, logvar = _pair("Encoder.forward", enc(_images()))
    expect_shape(f"the encoder's mu for x of shape (B={B}, H={HEIGHT}, W={WIDTH})", mu, (B, D), "one row of latent_dim numbers per image")
    expect_shape("the encoder's logvar", logvar, (B, D))
    logits = dec(torch.randn(B, D))
    expect_shape(f"Decoder(z) for z of shape (B={B}, D={D})", logits, (B, K, HEIGHT, WIDTH),
                  "K logits per pixel, colour dimension second: (B, K, H, W), no softmax")
    return "encoder (B, H, W) -> (B, D) twice, decoder (B, D) -> (B, K, H, W)"


@shown
def check_reparameterize(ns: dict) -> str:
    torch = _torch()
    reparameterize = need(ns, "reparameterize")
    g = torch.Generator().manual_seed(1)
    mu, eps = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)
    z = reparameterize(mu, torch.zeros(B, D), torch.zeros(B, D))
    expect_shape("reparameterize(mu, logvar, eps) with (B, D) inputs", z, (B, D))
    if not torch.allclose(z, mu, atol=1e-6):
        raise CheckFailed("with eps = 0 the sample should be exactly mu")
    z = reparameterize(mu, torch.full((B, D), math.log(9.0)), eps)  # variance 9: standard deviation 3
    if torch.allclose(z, mu + 9.0 * eps, atol=1e-4):
        raise CheckFailed("with logvar = log 9 the noise was scaled by 9: logvar is the log-VARIANCE, so the standard deviation is exp(logvar / 2) = 3")
    if not torch.allclose(z, mu + 3.0 * eps, atol=1e-4):
        raise CheckFailed("with logvar = log 9 (standard deviation 3) the sample should be mu + 3 * eps; use the eps you are given, not fresh noise")
    leaf_mu, leaf_lv = mu.clone().requires_grad_(), torch.zeros(B, D, requires_grad=True)
    reparameterize(leaf_mu, leaf_lv, eps).sum().backward()
    if leaf_mu.grad is None or leaf_lv.grad is None:
        raise CheckFailed("no gradient reaches mu or logvar through the sample: build z from mu, logvar and eps with differentiable operations (no .detach(), no .sample())")
    return "z = mu + sigma * eps, differentiable"


@shown
def check_kl(ns: dict) -> str:
    torch = _torch()
    kl_divergence = need(ns, "kl_divergence")
    zero = kl_divergence(torch.zeros(B, D), torch.zeros(B, D))
    expect_shape("kl_divergence(mu, logvar) for (B, D) inputs", zero, (B,), "one KL per image: sum over the latent dimensions, no mean over the batch yet")
    if not torch.allclose(zero, torch.zeros(B), atol=1e-6):
        raise CheckFailed("the KL of N(0, I) from itself (mu = 0, logvar = 0) should be 0")
    g = torch.Generator().manual_seed(2)
    kl = kl_divergence(torch.randn(B, D, generator=g), torch.randn(B, D, generator=g))
    if not bool(torch.all(kl > 0)):
        raise CheckFailed("a KL divergence is never negative, and is > 0 when q differs from N(0, I): check its sign")
    one = kl_divergence(torch.tensor([[2.0] + [0.0] * (D - 1)]), torch.zeros(1, D))
    if not torch.allclose(one, torch.tensor([2.0]), atol=1e-5):
        raise CheckFailed("with mu = (2, 0, ...) and logvar = 0 the KL should be mu^2 / 2 = 2 nats")
    return "shape (B,), 0 at the prior, positive elsewhere"


@shown
def check_reconstruction(ns: dict) -> str:
    torch = _torch()
    reconstruction_nll = need(ns, "reconstruction_nll")
    x = _images()
    rec = reconstruction_nll(torch.zeros(B, K, HEIGHT, WIDTH), x)
    expect_shape("reconstruction_nll(logits, x) for logits (B, K, H, W)", rec, (B,), "one number per image: sum over its pixels")
    per_image = HEIGHT * WIDTH * math.log(K)
    if torch.allclose(rec, torch.full((B,), math.log(K)), atol=1e-4):
        raise CheckFailed(f"with uniform logits each image should cost H*W*ln K = {per_image:.2f} nats: sum over the pixels, not a mean")
    if not torch.allclose(rec, torch.full((B,), per_image), atol=1e-3):
        raise CheckFailed(f"with uniform logits (all zeros) each image should cost H*W*ln K = {per_image:.2f} nats (a positive cross-entropy in nats, summed over pixels)")
    sharp = torch.nn.functional.one_hot(x, K).permute(0, 3, 1, 2).float() * 50.0
    if not bool(torch.all(reconstruction_nll(sharp, x) < 1e-3)):
        raise CheckFailed("logits that put all their weight on the true colour should cost (almost) 0 nats: index the logits with x")
    return "sum over pixels of the cross-entropy, in nats"


@shown
def check_negative_elbo(ns: dict) -> str:
    torch = _torch()
    negative_elbo = need(ns, "negative_elbo")
    g = torch.Generator().manual_seed(3)
    logits, x = torch.randn(B, K, HEIGHT, WIDTH, generator=g), _images(seed=3)
    mu, logvar = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)
    out = negative_elbo(logits, x, mu, logvar)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed("negative_elbo should return three scalars (loss, reconstruction, kl)")
    for name, v in zip(("loss", "reconstruction", "kl"), out):
        expect_shape(f"negative_elbo's {name}", v, (), "a scalar: the mean over the batch")
    loss, rec, kl = out
    if not torch.allclose(loss, rec + kl, rtol=1e-5):
        raise CheckFailed("loss should be reconstruction + kl")
    if rec.item() <= 0 or kl.item() <= 0:
        raise CheckFailed("both terms of the negative ELBO are positive here (a cross-entropy and a KL)")
    half = negative_elbo(logits[:2], x[:2], mu[:2], logvar[:2])[0].item() + negative_elbo(logits[2:], x[2:], mu[2:], logvar[2:])[0].item()
    if math.isclose(loss.item(), half, rel_tol=1e-4):
        raise CheckFailed("the batch's loss is the sum of its halves' losses: take the mean over the images, not the sum")
    return "loss = reconstruction + kl, scalars"


@shown
def check_vae_gradients(ns: dict) -> str:
    torch = _torch()
    reconstruction_nll = need(ns, "reconstruction_nll")
    model = _vae(ns)
    x = _images()
    out = model(x, eps=torch.randn(B, D, generator=torch.Generator().manual_seed(4)))
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed("VAE.forward should return (logits, mu, logvar)")
    logits, mu, logvar = out
    expect_shape("VAE(x)'s logits", logits, (B, K, HEIGHT, WIDTH))
    expect_shape("VAE(x)'s mu", mu, (B, D))
    expect_shape("VAE(x)'s logvar", logvar, (B, D))
    for attr in ("encoder", "decoder"):
        if not isinstance(getattr(model, attr, None), torch.nn.Module):
            raise CheckFailed(f"the VAE should keep its {attr} as the attribute `{attr}`")
    reconstruction_nll(logits, x).sum().backward()
    grads = [p.grad for p in model.encoder.parameters() if p.requires_grad]
    if not grads or all(g is None or float(g.abs().sum()) == 0.0 for g in grads):
        raise CheckFailed("the reconstruction term gives the encoder no gradient: z must be computed with reparameterize (mu + sigma * eps), not sampled or detached")
    return "(logits, mu, logvar) of the right shapes; the encoder learns through the sample"


@shown
def check_train(ns: dict) -> str:
    torch = _torch()
    train = need(ns, "train")
    model = _vae(ns)
    hist = train(model, _images(16, seed=5), 3, batch_size=4, generator=torch.Generator().manual_seed(0), progress=False)
    if not isinstance(hist, dict) or set(hist) != {"loss", "reconstruction", "kl"}:
        raise CheckFailed("train should return a dict with the keys 'loss', 'reconstruction' and 'kl'")
    for key, values in hist.items():
        if len(values) != 3 or not all(isinstance(v, float) and math.isfinite(v) for v in values):
            raise CheckFailed(f"history[{key!r}] should hold one finite float per step (use .item()), got {values!r}"[:300])
    return "a dict of three curves, one float per step"


@shown
def check_sample(ns: dict) -> str:
    torch = _torch()
    sample = need(ns, "sample")
    model = _vae(ns)
    s = sample(model, 6, generator=torch.Generator().manual_seed(0))
    expect_shape("sample(model, 6)", s, (6, HEIGHT, WIDTH), "n images of colour indices")
    if s.dtype != torch.long or int(s.min()) < 0 or int(s.max()) >= K:
        raise CheckFailed("samples should be long colour indices in 0..K-1 (the argmax over the K logits)")
    again = sample(model, 6, generator=torch.Generator().manual_seed(0))
    if not torch.equal(s.cpu(), again.cpu()):
        raise CheckFailed("the same generator seed should give the same samples: draw z with generator=generator")
    return "n images of colour indices, reproducible"


@shown
def check_interpolate(ns: dict) -> str:
    torch = _torch()
    interpolate, decode_mode = need(ns, "interpolate"), need(ns, "decode_mode")
    model = _vae(ns)
    x = _images(2, seed=6)
    path = interpolate(model, x[0], x[1], steps=5)
    expect_shape("interpolate(model, x_a, x_b, steps=5)", path, (5, HEIGHT, WIDTH))
    with torch.no_grad():
        mu, _ = model.encoder(x)
    if not torch.equal(path[0].cpu(), decode_mode(model, mu[:1])[0].cpu()) or not torch.equal(path[-1].cpu(), decode_mode(model, mu[1:])[0].cpu()):
        raise CheckFailed("the first and last images should decode the encoder means mu(x_a) and mu(x_b)")
    return "(steps, H, W), ends at the two codes"


@shown
def check_latent_traversal(ns: dict) -> str:
    torch = _torch()
    latent_traversal = need(ns, "latent_traversal")
    model = _vae(ns)
    grid = latent_traversal(model, torch.zeros(D), (0, 2), torch.linspace(-2, 2, 4))
    expect_shape("latent_traversal(model, z of shape (D,), dims, 4 values)", grid, (4, 4, HEIGHT, WIDTH), "an n x n grid of images")
    return "an (n, n, H, W) grid"


@shown
def check_conditional_vae(ns: dict) -> str:
    torch = _torch()
    ConditionalVAE, in_the_style_of = need(ns, "ConditionalVAE"), need(ns, "in_the_style_of")
    torch.manual_seed(0)
    model = ConditionalVAE(K, HEIGHT, WIDTH, 3, latent_dim=D, hidden=HID)
    x, y = _images(), torch.tensor([0, 1, 2, 1])
    logits, mu, logvar = model(x, y, eps=torch.zeros(B, D))
    expect_shape("ConditionalVAE(x, y)'s logits", logits, (B, K, HEIGHT, WIDTH))
    expect_shape("ConditionalVAE(x, y)'s mu", mu, (B, D))
    other, _, _ = model(x, (y + 1) % 3, eps=torch.zeros(B, D))
    if torch.allclose(logits, other):
        raise CheckFailed("changing the labels y does not change the output: pass the one-hot label to the encoder and the decoder")
    out = in_the_style_of(model, x[:2], y[:2], torch.tensor([0, 2, 1]))
    expect_shape("in_the_style_of(model, 2 examples, their labels, 3 new labels)", out, (2, 3, HEIGHT, WIDTH))
    return "shapes right, the label matters"


CHECKS = [
    check_encoder_decoder_shapes, check_reparameterize, check_kl, check_reconstruction, check_negative_elbo,
    check_vae_gradients, check_train, check_sample, check_interpolate, check_latent_traversal, check_conditional_vae,
]


def run_all(ns: dict):
    """Run every public check of the VAE assignment; prints one line per check."""
    return run_checks(CHECKS, ns)
