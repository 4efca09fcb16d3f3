"""Probes of assignment 3 (GAN): run in the student's sandboxed process, return plain data.

They call the student's definitions (``sub.<name>``) and report what happened; every
comparison with expected values happens in the grader tests (test_*.py).
"""

from __future__ import annotations

import time

import torch

from coursekit.grading.gpu import training_device
from coursekit.grading.memory import release_memory


# --- losses ---------------------------------------------------------------------------------
def _loss_and_grad(fn, *logits):
    ts = [torch.tensor(v, dtype=torch.float32, requires_grad=True) for v in logits]
    out = fn(*ts)
    res = {"value": out.detach().float() if torch.is_tensor(out) else torch.tensor(float("nan")),
           "is_tensor": torch.is_tensor(out), "shape": list(out.shape) if torch.is_tensor(out) else None}
    grads = [torch.full_like(t, float("nan")) for t in ts]
    if torch.is_tensor(out) and out.requires_grad and out.numel() == 1:
        got = torch.autograd.grad(out.sum(), ts, allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g.detach() for t, g in zip(ts, got)]
    res["grads"] = grads
    return res


def probe_losses(sub, real_logits, fake_logits):
    """Each loss (value, shape, gradients w.r.t. the logits) on the given logits."""
    return {
        "d_loss": _loss_and_grad(sub.d_loss, real_logits, fake_logits),
        "g_loss_minimax": _loss_and_grad(sub.g_loss_minimax, fake_logits),
        "g_loss_nonsaturating": _loss_and_grad(sub.g_loss_nonsaturating, fake_logits),
    }


# --- networks -------------------------------------------------------------------------------
def probe_generator(sub, z_dim, width, batch):
    torch.manual_seed(0)
    G = sub.Generator(z_dim, width)
    z = torch.randn(batch, z_dim, generator=torch.Generator().manual_seed(1))
    out = G(z).detach()
    G.eval()
    with torch.no_grad():
        ev = G(z)
    return {"z_dim_attr": getattr(G, "z_dim", None), "shape": list(out.shape), "min": float(out.min()), "max": float(out.max()),
            "spread_over_batch": float(ev.std(0).mean()), "finite": bool(torch.isfinite(out).all())}


def probe_discriminator(sub, width, batch, spectral_norm=False, scale=10.0):
    torch.manual_seed(0)
    D = sub.Discriminator(width, spectral_norm=spectral_norm)
    x = torch.rand(batch, 3, 20, 20, generator=torch.Generator().manual_seed(2)) * 2 - 1
    out = D(x).detach()
    res = {"shape": list(out.shape), "finite": bool(torch.isfinite(out).all())}
    if not spectral_norm:
        with torch.no_grad():  # logits grow with the weights; probabilities stay in [0, 1]
            for p in D.parameters():
                p.mul_(scale)
            big = D(x)
        res["scaled_min"], res["scaled_max"] = float(big.min()), float(big.max())
    return res


def probe_conditional(sub, n_classes, z_dim, width, batch):
    torch.manual_seed(0)
    G = sub.CondGenerator(n_classes, z_dim, width)
    D = sub.CondDiscriminator(n_classes, width)
    z = torch.randn(1, z_dim, generator=torch.Generator().manual_seed(3)).expand(batch, z_dim)
    labels = torch.arange(batch) % n_classes
    G.eval()
    with torch.no_grad():
        img = G(z, labels)
        x = img
        logits = D(x, labels)
        other = D(x, (labels + 1) % n_classes)
    return {"g_shape": list(img.shape), "g_min": float(img.min()), "g_max": float(img.max()),
            "label_effect": float((img[0] - img[1]).abs().mean()) if batch > 1 else 0.0,
            "d_shape": list(logits.shape), "d_label_effect": float((logits - other).abs().max())}


# --- the training step ----------------------------------------------------------------------
def _snapshot(params):
    return [p.detach().float().clone() for p in params]


def _grads(params):
    """Each parameter's gradient as it is when the optimiser steps (zeros where it has none)."""
    return [torch.zeros_like(p, dtype=torch.float32) if p.grad is None else p.grad.detach().float().clone() for p in params]


class _Recording:
    """Wraps an optimiser: at each step() keeps both networks' parameters before and after, and their gradients."""

    def __init__(self, name, opt, nets, log):
        self._name, self._opt, self._nets, self._log = name, opt, nets, log

    def step(self, closure=None):
        before = {k: _snapshot(ps) for k, ps in self._nets.items()}
        grads = {k: _grads(ps) for k, ps in self._nets.items()}
        has_grad = {k: [p.grad is not None for p in ps] for k, ps in self._nets.items()}
        out = self._opt.step() if closure is None else self._opt.step(closure)
        self._log.append({"opt": self._name, "before": before, "grads": grads, "has_grad": has_grad,
                          "after": {k: _snapshot(ps) for k, ps in self._nets.items()}})
        return out

    def zero_grad(self, set_to_none=True):
        self._opt.zero_grad(set_to_none=set_to_none)

    def __getattr__(self, name):
        return getattr(self._opt, name)


def probe_step(sub, z_dim, width, batch, lr, seed=0):
    """One call of the student's train_step on fresh networks, with optimisers that keep what each step did.

    Returns raw tensors only: both networks' parameters at the start and the end, and for each optimiser
    step (in order) which optimiser it was and both networks' parameters before and after it and their
    gradients; and train_step's returned dict. The grader computes every change and norm from them and
    replays Adam's update from the gradients to check that they are the gradients that were applied.
    """
    torch.manual_seed(seed)
    G = sub.Generator(z_dim, width)
    D = sub.Discriminator(width)
    nets = {"G": list(G.parameters()), "D": list(D.parameters())}
    start = {k: _snapshot(ps) for k, ps in nets.items()}
    log = []
    opt_g = _Recording("opt_g", torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999)), nets, log)
    opt_d = _Recording("opt_d", torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999)), nets, log)
    real = torch.rand(batch, 3, 20, 20, generator=torch.Generator().manual_seed(seed + 1)) * 2 - 1
    out = sub.train_step(G, D, opt_g, opt_d, real, generator=torch.Generator().manual_seed(seed + 2))
    ret = {k: float(v) for k, v in out.items() if isinstance(v, (int, float))} if isinstance(out, dict) else {}
    return {"start": start, "end": {k: _snapshot(ps) for k, ps in nets.items()}, "events": list(log),
            "returned": ret, "returned_type": type(out).__name__}


# --- training for a fixed, seeded budget ----------------------------------------------------
def probe_train(sub, train, palette, steps, batch_size, z_dim, width, lr, n_samples, seed=0, device="auto"):
    """Train the student's Generator/Discriminator with the student's train_step on the grader's training images
    (palette indices, converted here as ``PaletteDataset.rgb`` does); return the generator's raw images for the
    grader's noise. The grader turns them into palette indices and judges them."""
    from coursekit.data.convert import indices_to_rgb

    dev = training_device(device, torch)  # cuda without CUDA in the worker: an error for the staff, not a CPU run
    real = (indices_to_rgb(torch.as_tensor(train).long(), torch.as_tensor(palette)) * 2 - 1).to(dev)
    torch.manual_seed(seed)
    G = sub.Generator(z_dim, width).to(dev)
    D = sub.Discriminator(width).to(dev)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    d_hist, g_hist = [], []
    t0 = time.time()
    G.train()
    D.train()
    for _ in range(steps):
        idx = torch.randint(0, len(real), (batch_size,), generator=gen)
        out = sub.train_step(G, D, opt_g, opt_d, real[idx.to(dev)], generator=gen)
        d_hist.append(float(out["d_loss"]))
        g_hist.append(float(out["g_loss"]))
        if not (abs(d_hist[-1]) < float("inf") and abs(g_hist[-1]) < float("inf")):
            break  # NaN or infinite: the grader sees it in the losses
    seconds = time.time() - t0
    G.eval()
    del D, opt_g, opt_d, real
    release_memory()  # what training freed goes back to the system before sampling (Gradescope: 768 MB); changes no value
    z = torch.randn(n_samples, z_dim, generator=torch.Generator().manual_seed(seed + 1000))
    with torch.no_grad():
        imgs = torch.cat([G(z[i:i + 250].to(dev)) for i in range(0, n_samples, 250)])
    return {"images": imgs.detach().float().cpu(), "d_loss": d_hist, "g_loss": g_hist, "seconds": seconds, "device": str(dev)}
