"""Public checks of assignment 3 (GAN): shapes, ranges and simple properties, with hints.

Call them from the notebook (``check_generator(globals())``, ``run_all(globals())``) or run
``coursekit check assignments/gan/gan.ipynb``. They use tiny networks and made-up inputs and
never compare against the reference solution's values: passing them does not mean full marks.
"""

from __future__ import annotations

import math

from . import CheckFailed, expect_shape, need, run_checks, shown

ZD, WD, NB = 8, 4, 3  # tiny noise size, width and batch for the checks (not exported: see __all__)


def _torch():
    import torch

    return torch


def _noise(n: int = NB, seed: int = 0):
    torch = _torch()
    return torch.randn(n, ZD, generator=torch.Generator().manual_seed(seed))


def _images(n: int = NB, seed: int = 0):
    torch = _torch()
    return torch.rand(n, 3, 20, 20, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _nets(ns: dict, spectral: bool = False):
    torch = _torch()
    torch.manual_seed(0)
    return need(ns, "Generator")(ZD, WD), need(ns, "Discriminator")(WD, spectral_norm=spectral)


@shown
def check_generator(ns: dict) -> str:
    torch = _torch()
    gen_net, _ = _nets(ns)
    if getattr(gen_net, "z_dim", None) != ZD:
        raise CheckFailed(f"Generator(z_dim={ZD}, ...) should keep z_dim as the attribute `self.z_dim`")
    out = gen_net(_noise())
    expect_shape(f"Generator(z_dim={ZD}, width={WD})(z) for z of shape ({NB}, {ZD})", out, (NB, 3, 20, 20),
                  "return RGB images (B, 3, 20, 20): 5x5 -> 10x10 -> 20x20 with two stride-2 transposed convolutions")
    if out.min() < -1 or out.max() > 1:
        raise CheckFailed("the generator's images should lie in [-1, 1] like the real ones: end with tanh")
    if torch.allclose(out[0], out[1]):
        raise CheckFailed("two different noise vectors gave the same image: the output must depend on z")
    out.sum().backward()
    if not any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen_net.parameters()):
        raise CheckFailed("no gradient reached the generator's parameters")
    return "(B, z_dim) noise -> (B, 3, 20, 20) images in [-1, 1]"


@shown
def check_discriminator(ns: dict) -> str:
    torch = _torch()
    x = _images()
    for spectral in (False, True):
        _, disc = _nets(ns, spectral)
        scores = disc(x)
        expect_shape(f"Discriminator(width={WD}, spectral_norm={spectral})(x) for x of shape ({NB}, 3, 20, 20)", scores, (NB,),
                      "return one logit per image, shape (B,): squeeze the last dimension")
        feats = disc.features(x)
        expect_shape(f"Discriminator.features(x) with width={WD}", feats, (NB, 4 * WD * 25), "flatten the (4w, 5, 5) features")
    _, disc = _nets(ns)
    with torch.no_grad():
        for p in disc.parameters():
            p.mul_(10)
        big = disc(x * 1.0)
    if bool(((big >= 0) & (big <= 1)).all()):
        raise CheckFailed("the discriminator's outputs stay inside [0, 1] even with large weights: it seems to end with a sigmoid. "
                          "Return the raw logit; the losses apply the sigmoid (through softplus)")
    return "(B, 3, 20, 20) -> (B,) logits, with and without spectral norm"


@shown
def check_losses(ns: dict) -> str:
    torch = _torch()
    names = ("d_loss", "g_loss_minimax", "g_loss_nonsaturating")
    fns = {n: need(ns, n) for n in names}
    zero = torch.zeros(4)
    vals = {"d_loss": fns["d_loss"](zero, zero), "g_loss_minimax": fns["g_loss_minimax"](zero),
            "g_loss_nonsaturating": fns["g_loss_nonsaturating"](zero)}
    for n, v in vals.items():
        if not torch.is_tensor(v) or v.dim() != 0:
            raise CheckFailed(f"{n} should return a scalar tensor (the mean over the batch)")
    ln2 = math.log(2)
    if abs(float(vals["d_loss"]) - 2 * ln2) > 1e-5:
        raise CheckFailed(f"at logits 0 (D says 50/50) d_loss should be 2 ln 2 = {2 * ln2:.4f}: ln 2 for the real and ln 2 for the generated images; "
                          f"got {float(vals['d_loss']):.4f}")
    if abs(float(vals["g_loss_minimax"]) + ln2) > 1e-5:
        raise CheckFailed(f"at logit 0 log(1 - sigmoid(0)) = -ln 2 = {-ln2:.4f}; g_loss_minimax gave {float(vals['g_loss_minimax']):.4f}")
    if abs(float(vals["g_loss_nonsaturating"]) - ln2) > 1e-5:
        raise CheckFailed(f"at logit 0 -log sigmoid(0) = ln 2 = {ln2:.4f}; g_loss_nonsaturating gave {float(vals['g_loss_nonsaturating']):.4f}")
    confident = torch.full((4,), 6.0)
    if float(fns["d_loss"](confident, -confident)) > float(fns["d_loss"](-confident, confident)):
        raise CheckFailed("d_loss is larger when D is right (real logits high, generated logits low) than when it is wrong: "
                          "real images are labelled 1, generated ones 0")
    if float(fns["g_loss_nonsaturating"](confident)) > float(fns["g_loss_nonsaturating"](-confident)):
        raise CheckFailed("g_loss_nonsaturating should be small when D is fooled (high logits on generated images)")
    extreme = torch.tensor([-1e4, -50.0, 50.0, 1e4], requires_grad=True)
    for n in names:
        v = fns[n](extreme, extreme) if n == "d_loss" else fns[n](extreme)
        if not torch.isfinite(v):
            raise CheckFailed(f"{n} is {float(v)} at logits of size 1e4: compute log-sigmoids with F.softplus (or "
                              "F.binary_cross_entropy_with_logits), never log(sigmoid(.)) or log(1 - sigmoid(.))")
        (grad,) = torch.autograd.grad(v, extreme)
        if not torch.isfinite(grad).all():
            raise CheckFailed(f"{n}'s gradient is not finite at extreme logits: use F.softplus")
    return "scalar losses, right values at logit 0, finite at logits of +-1e4"


def _step_setup(ns: dict):
    torch = _torch()
    gen_net, disc = _nets(ns)
    opt_g = torch.optim.Adam(gen_net.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
    return gen_net, disc, opt_g, opt_d


@shown
def check_train_step(ns: dict) -> str:
    torch = _torch()
    step_fn = need(ns, "train_step")
    gen_net, disc, opt_g, opt_d = _step_setup(ns)
    before_g = [p.detach().clone() for p in gen_net.parameters()]
    before_d = [p.detach().clone() for p in disc.parameters()]
    out = step_fn(gen_net, disc, opt_g, opt_d, _images(4), generator=torch.Generator().manual_seed(0))
    if not isinstance(out, dict) or not {"d_loss", "g_loss", "d_real", "d_fake"} <= set(out):
        raise CheckFailed("train_step should return a dict with keys d_loss, g_loss, d_real, d_fake")
    if not all(isinstance(out[k], float) and math.isfinite(out[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake")):
        raise CheckFailed("train_step's values should be finite Python floats (use .item())")
    if not (0 <= out["d_real"] <= 1 and 0 <= out["d_fake"] <= 1):
        raise CheckFailed("d_real and d_fake are probabilities: the mean of sigmoid(logits)")
    if all(torch.equal(a, b) for a, b in zip(before_d, disc.parameters())):
        raise CheckFailed("the discriminator's weights did not change: step its optimiser (opt_d) after the backward pass of its loss")
    if all(torch.equal(a, b) for a, b in zip(before_g, gen_net.parameters())):
        raise CheckFailed("the generator's weights did not change: its loss must reach G through D (do not detach the images "
                          "in the generator's part) and step its optimiser (opt_g)")
    return "both networks are updated and the step returns its losses (the graders check the order and the isolation of the updates)"


@shown
def check_train_gan(ns: dict) -> str:
    torch = _torch()
    loop = need(ns, "train_gan")
    gen_net, disc = _nets(ns)
    calls = []
    hist = loop(gen_net, disc, _images(6), steps=4, batch_size=2, lr=1e-3, seed=0,
                callback=lambda s, g, d: calls.append(s) or {"x": float(s)}, every=2, progress=False)
    if not isinstance(hist, dict):
        raise CheckFailed("train_gan should return the history dict")
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        if len(hist.get(name, [])) != 4:
            raise CheckFailed(f"history[{name!r}] should hold one value per step (4 for steps=4)")
    if calls != [2, 4] or [e.get("step") for e in hist.get("evals", [])] != [2, 4]:
        raise CheckFailed(f"with steps=4, every=2 the callback should run after steps 2 and 4 and its dicts be stored in "
                          f"history['evals'] with their step; it ran after {calls}")
    return "one history entry per step, callback every `every` steps"


@shown
def check_slerp(ns: dict) -> str:
    torch = _torch()
    fn = need(ns, "slerp")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    path = fn(a, b, 5)
    expect_shape("slerp(z0, z1, n=5) for z0, z1 of shape (16,)", path, (5, 16))
    if not (torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)):
        raise CheckFailed("the first row should be z0 and the last row z1")
    a2, b2 = a / a.norm(), b / b.norm()
    unit = fn(a2, b2, 7)
    if not torch.allclose(unit.norm(dim=1), torch.ones(7), atol=1e-4):
        raise CheckFailed("between two unit vectors every slerp point should have norm 1 (it moves along the great circle)")
    same = fn(a, a, 3)
    if not torch.isfinite(same).all():
        raise CheckFailed("slerp(z, z, n) gave NaN: fall back to linear interpolation when the angle is (nearly) 0")
    return "ends at z0 and z1, keeps unit norm, safe for equal vectors"


@shown
def check_conditional(ns: dict) -> str:
    torch = _torch()
    torch.manual_seed(0)
    cg = need(ns, "CondGenerator")(5, ZD, WD)
    cd = need(ns, "CondDiscriminator")(5, WD)
    labels = torch.tensor([0, 1, 4])
    out = cg(_noise(), labels)
    expect_shape(f"CondGenerator(5 classes, z_dim={ZD})(z, labels)", out, (NB, 3, 20, 20))
    if out.min() < -1 or out.max() > 1:
        raise CheckFailed("conditional images should lie in [-1, 1]")
    cg.eval()
    z1 = _noise(1).expand(2, ZD)
    pair = cg(z1, torch.tensor([0, 3]))
    if torch.allclose(pair[0], pair[1]):
        raise CheckFailed("the same noise with two different labels gave the same image: the generator must use the label")
    scores = cd(_images(), labels)
    expect_shape("CondDiscriminator(5 classes)(x, labels)", scores, (NB,), "one logit per image")
    other = cd(_images(), torch.tensor([2, 3, 0]))
    if torch.allclose(scores, other):
        raise CheckFailed("the discriminator's logits do not depend on the label")
    return "both networks take and use the labels"


CHECKS = [check_generator, check_discriminator, check_losses, check_train_step, check_train_gan, check_slerp, check_conditional]

__all__ = [fn.__name__ for fn in CHECKS] + ["run_all"]


def run_all(ns: dict):
    """Run every public check of the assignment on the namespace ``ns`` (e.g. ``globals()``)."""
    return run_checks(CHECKS, ns)
