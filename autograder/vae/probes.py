"""Probes of assignment 2 (VAE): run inside the student's sandboxed process, return plain data.

They call the student's code (``sub``) on inputs made here from seeds and return what the
graders compare; they hold no expected values. ``fixed_inputs`` is also imported by the
graders and by ``make_expected.py`` (from this file), so both sides build the same inputs.
"""

import math

import torch
import torch.nn.functional as F

from coursekit.grading.gpu import training_device
from coursekit.grading.memory import release_memory

SPRITE_K, SPRITE_H, SPRITE_W = 167, 20, 20


def fixed_inputs(seed, B=6, K=7, H=5, W=4, D=3):
    """Made-up logits, images, means, log-variances and noise for the loss graders."""
    g = torch.Generator().manual_seed(int(seed))
    return {
        "logits": torch.randn(B, K, H, W, generator=g) * 2.0,
        "x": torch.randint(0, K, (B, H, W), generator=g),
        "mu": torch.randn(B, D, generator=g),
        "logvar": torch.randn(B, D, generator=g) * 1.5,
        "eps": torch.randn(B, D, generator=g),
    }


def _tensor(x):
    return x if torch.is_tensor(x) else torch.as_tensor(x)


def _describe(obj):
    """Plain description of a value the student returned (type and shape), for shape messages."""
    if torch.is_tensor(obj):
        return {"kind": "tensor", "shape": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, (tuple, list)):
        return {"kind": type(obj).__name__, "len": len(obj)}
    return {"kind": type(obj).__name__}


# --- shapes ---------------------------------------------------------------------------------
def probe_shapes(sub, K, H, W, D, B, hidden=16):
    torch.manual_seed(0)
    x = torch.randint(0, K, (B, H, W))
    out = {}
    enc = sub.Encoder(K, H, W, latent_dim=D, hidden=hidden)
    res = enc(x)
    out["encoder"] = _describe(res)
    if isinstance(res, (tuple, list)):
        out["encoder_parts"] = [_describe(r) for r in res]
    dec = sub.Decoder(K, H, W, latent_dim=D, hidden=hidden)
    out["decoder"] = _describe(dec(torch.randn(B, D)))
    model = sub.VAE(K, H, W, latent_dim=D, hidden=hidden)
    res = model(x, eps=torch.randn(B, D))
    out["vae"] = _describe(res)
    if isinstance(res, (tuple, list)):
        out["vae_parts"] = [_describe(r) for r in res]
    out["has_encoder"] = isinstance(getattr(model, "encoder", None), torch.nn.Module)
    out["has_decoder"] = isinstance(getattr(model, "decoder", None), torch.nn.Module)
    return out


# --- the loss's parts ---------------------------------------------------------------------
def probe_reparameterize(sub, case):
    inp = fixed_inputs(case)
    z = sub.reparameterize(inp["mu"], inp["logvar"], inp["eps"])
    again = sub.reparameterize(inp["mu"], inp["logvar"], inp["eps"])
    return {"z": _tensor(z), "again": _tensor(again)}


def probe_kl(sub, case):
    inp = fixed_inputs(case)
    B, D = inp["mu"].shape
    return {
        "random": _tensor(sub.kl_divergence(inp["mu"], inp["logvar"])),
        "prior": _tensor(sub.kl_divergence(torch.zeros(B, D), torch.zeros(B, D))),
        # mean 0 and variance 4 in every dimension: pins the log-variance convention
        "wide": _tensor(sub.kl_divergence(torch.zeros(B, D), torch.full((B, D), math.log(4.0)))),
    }


def probe_reconstruction(sub, case):
    inp = fixed_inputs(case)
    return {"rec": _tensor(sub.reconstruction_nll(inp["logits"], inp["x"]))}


def probe_negative_elbo(sub, case):
    inp = fixed_inputs(case)
    out = sub.negative_elbo(inp["logits"], inp["x"], inp["mu"], inp["logvar"])
    if not isinstance(out, (tuple, list)):
        return {"kind": type(out).__name__, "parts": []}
    return {"kind": "tuple", "parts": [_tensor(v).detach().float() for v in out]}


def probe_gradients(sub, case, K=5, H=8, W=8, D=3, B=4):
    """Gradients through the sample: of sum(w * z) w.r.t. mu and logvar, and of the VAE's reconstruction w.r.t. its encoder."""
    inp = fixed_inputs(case)
    mu = inp["mu"].clone().requires_grad_()
    logvar = inp["logvar"].clone().requires_grad_()
    w = torch.linspace(-1.0, 1.0, mu.numel()).reshape(mu.shape)
    z = sub.reparameterize(mu, logvar, inp["eps"])
    out = {"z_requires_grad": bool(torch.is_tensor(z) and z.requires_grad)}
    if out["z_requires_grad"]:
        (w * z).sum().backward()
    out["mu_grad"] = mu.grad if mu.grad is not None else torch.zeros(0)
    out["logvar_grad"] = logvar.grad if logvar.grad is not None else torch.zeros(0)
    torch.manual_seed(int(case))
    model = sub.VAE(K, H, W, latent_dim=D, hidden=8)
    x = torch.randint(0, K, (B, H, W))
    logits, _, _ = model(x, eps=torch.randn(B, D))
    rec = F.cross_entropy(logits, x, reduction="sum")  # the reconstruction term only, computed here
    encoder = getattr(model, "encoder", None)
    params = [p for p in encoder.parameters() if p.requires_grad] if isinstance(encoder, torch.nn.Module) else []
    if rec.requires_grad:
        rec.backward()
    # raw gradients (zeros where none reached a parameter): the grader measures them
    out["encoder_grads"] = [torch.zeros_like(p, dtype=torch.float32) if p.grad is None else p.grad.detach().float() for p in params]
    return out


# --- training, held-out negative ELBO and samples -------------------------------------------
# The grader sends the training images, gets the weights back, and computes the held-out
# negative ELBO itself: the training worker encodes the held-out images (mu, logvar), the grader
# draws the noise and forms z, and another worker, which never saw an image, decodes z. So the
# figure is a true bound for the student's decoder, whatever this process does.
def _vae(sub, K, H, W, latent_dim, state=None):
    model = sub.VAE(K, H, W, latent_dim=latent_dim)
    if state is not None:
        model.load_state_dict(state)
        model.eval()
    return model


def probe_train(sub, x_train, K, steps, batch_size, lr, num_samples, latent_dim=10, run_seed=0, device="auto"):
    """Train the student's VAE with the student's train() on the grader's training images; weights, losses, samples."""
    x_train = torch.as_tensor(x_train).long()
    H, W = x_train.shape[1:]
    device = training_device(device, torch)  # auto: the GPU where the worker was given one (the full profile on a GPU)
    torch.manual_seed(int(run_seed))
    model = _vae(sub, K, H, W, latent_dim).to(device)
    hist = sub.train(model, x_train, int(steps), batch_size=int(batch_size), lr=float(lr), device=device,
                     generator=torch.Generator().manual_seed(int(run_seed)), progress=False)
    losses = [float(v) for v in (hist.get("loss", []) if isinstance(hist, dict) else [])]
    model.eval()
    release_memory()  # what training freed goes back to the system before sampling (Gradescope: 768 MB); changes no value
    samples = sub.sample(model, int(num_samples), generator=torch.Generator().manual_seed(2000 + int(run_seed)))
    return {"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "losses": losses[::max(1, len(losses) // 200)],
            "samples": _tensor(samples).detach().cpu(), "device": str(device)}


def probe_encode(sub, state, x, K, latent_dim):
    """The trained encoder's (mu, logvar) for the grader's images x (n, H, W)."""
    x = torch.as_tensor(x).long()
    model = _vae(sub, K, x.shape[1], x.shape[2], latent_dim, state)
    with torch.no_grad():
        mu, logvar = model.encoder(x)
    return {"mu": mu, "logvar": logvar}


def probe_decode(sub, state, z, K, H, W, latent_dim):
    """The trained decoder's logits (n, K, H, W) for the grader's codes z (n, D)."""
    model = _vae(sub, K, H, W, latent_dim, state)
    with torch.no_grad():
        return {"logits": model.decoder(torch.as_tensor(z).float())}


# --- the lecture's pictures and the extension -------------------------------------------------
def probe_interpolate_traversal(sub, case, K=5, H=8, W=8, D=4):
    torch.manual_seed(int(case))
    model = sub.VAE(K, H, W, latent_dim=D, hidden=8)
    model.eval()
    x = torch.randint(0, K, (2, H, W))
    path = _tensor(sub.interpolate(model, x[0], x[1], steps=5)).cpu()
    values = torch.linspace(-2.0, 2.0, 3)
    z0 = torch.randn(D)
    grid = _tensor(sub.latent_traversal(model, z0, (1, 3), values)).cpu()
    with torch.no_grad():
        mu, _ = model.encoder(x)
        t = torch.linspace(0, 1, 5)[:, None]
        line = (1 - t) * mu[0] + t * mu[1]
        path_here = model.decoder(line).argmax(1)
        codes = z0.repeat(9, 1)
        codes[:, 1] = values.repeat_interleave(3)
        codes[:, 3] = values.repeat(3)
        grid_here = model.decoder(codes).argmax(1).reshape(3, 3, H, W)
    return {"path": path, "path_here": path_here, "grid": grid, "grid_here": grid_here}


def probe_conditional(sub, case, K=5, H=8, W=8, D=3, C=4, B=4):
    torch.manual_seed(int(case))
    model = sub.ConditionalVAE(K, H, W, C, latent_dim=D, hidden=8)
    x = torch.randint(0, K, (B, H, W))
    y = torch.tensor([0, 1, 2, 3])[:B]
    eps = torch.zeros(B, D)
    res = model(x, y, eps=eps)
    out = {"forward": _describe(res)}
    if isinstance(res, (tuple, list)) and len(res) == 3:
        out["parts"] = [_describe(r) for r in res]
        other = model(x, (y + 1) % C, eps=eps)[0]
        out["label_changes_output"] = bool(not torch.allclose(res[0], other))
    styled = sub.in_the_style_of(model, x[:2], y[:2], torch.tensor([3, 0, 1]))
    out["styled"] = _describe(styled)
    return out
