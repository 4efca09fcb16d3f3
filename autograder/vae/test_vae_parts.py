"""Graders of the VAE's parts: shapes, the reparameterisation, the KL, the reconstruction, the ELBO, gradients."""

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from coursekit.notebook import module_from_file

HERE = Path(__file__).parent
EXPECTED = json.loads((HERE / "expected.json").read_text())
P = module_from_file(HERE / "probes.py", "_vae_probes_for_graders")

SEEDS = (0, 1, 2)


def _shape(d):
    return tuple(d.get("shape", ())) if d.get("kind") == "tensor" else None


def _is_tensor(x):
    return isinstance(x, torch.Tensor)


def _kl_reference(mu, logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(1)


def _rec_reference(logits, x):
    return F.cross_entropy(logits, x, reduction="none").flatten(1).sum(1)


def test_shapes(probe, credit):
    for K, H, W, D, B in ((167, 20, 20, 10, 3), (17, 8, 8, 4, 2)):
        r = probe("shapes", K=K, H=H, W=W, D=D, B=B)
        size = f"K={K}, H={H}, W={W}, D={D}, B={B}"
        parts = r.get("encoder_parts", [])
        ok = len(parts) == 2 and all(_shape(p) == (B, D) for p in parts)
        credit.part(1, ok, f"Encoder(x) for x of shape (B, H, W) should return (mu, logvar), each of shape (B, D) ({size}); got {[_shape(p) for p in parts] or r['encoder']['kind']}")
        got = _shape(r["decoder"])
        credit.part(1, got == (B, K, H, W), f"Decoder(z) for z of shape (B, D) should give logits of shape (B, K, H, W) ({size}), got {got}")
        parts = r.get("vae_parts", [])
        got = [_shape(p) for p in parts]
        credit.part(1, got == [(B, K, H, W), (B, D), (B, D)], f"VAE(x, eps) should return (logits, mu, logvar) of shapes (B, K, H, W), (B, D), (B, D) ({size}), got {got or r['vae']['kind']}")
    credit.part(1, r["has_encoder"] and r["has_decoder"], "keep the VAE's networks in the attributes `encoder` and `decoder` (the graders use them)")


def test_reparameterize(probe):
    for seed in SEEDS:
        inp = P.fixed_inputs(seed)
        r = probe("reparameterize", case=seed)
        z, mu, logvar, eps = r["z"], inp["mu"], inp["logvar"], inp["eps"]
        assert _is_tensor(z) and tuple(z.shape) == tuple(mu.shape), f"reparameterize(mu, logvar, eps) with (B, D) inputs should return z of shape (B, D), got {tuple(z.shape) if _is_tensor(z) else type(z).__name__}"
        assert torch.equal(r["z"], r["again"]), "reparameterize gave different results for the same eps: use the noise eps you are given, do not draw new noise"
        if torch.allclose(z.float(), mu + torch.exp(logvar) * eps, atol=1e-4):
            raise AssertionError("z was computed with sigma = exp(logvar), as if logvar were the log standard deviation: logvar is the log-VARIANCE, so sigma = exp(logvar / 2)")
        if torch.allclose(z.float(), mu + logvar * eps, atol=1e-4):
            raise AssertionError("z should be mu + sigma * eps with the standard deviation sigma = exp(logvar / 2), not logvar itself")
        assert torch.allclose(z.float(), mu + torch.exp(0.5 * logvar) * eps, atol=1e-4, rtol=1e-4), (
            "z should be mu + exp(logvar / 2) * eps, using the eps given as argument (not fresh noise from torch.randn or torch.distributions)")


def test_kl_divergence(probe, credit):
    r = probe("kl", case=0)
    B, D = P.fixed_inputs(0)["mu"].shape
    for key in ("random", "prior", "wide"):
        got = tuple(r[key].shape) if _is_tensor(r[key]) else None
        assert got == (B,), f"kl_divergence(mu, logvar) for (B, D) inputs should return one KL per image, shape (B,): sum over the latent dimensions, keep the batch; got {got}"
    credit.part(1, torch.allclose(r["prior"].float(), torch.zeros(B), atol=1e-5),
                "the KL should be 0 when q is the prior itself (mu = 0, logvar = 0): check the '- 1' and '- logvar' terms")
    wide_ok = torch.allclose(r["wide"].float(), torch.full((B,), D * 0.5 * (4.0 - 1.0 - math.log(4.0))), atol=1e-4)
    logstd = torch.allclose(r["wide"].float(), torch.full((B,), D * 0.5 * (16.0 - 1.0 - 2 * math.log(4.0))), atol=1e-3)
    credit.part(1, wide_ok, "with mu = 0 and logvar = log 4 the KL is wrong" + (
        ": it treats logvar as the log standard deviation; logvar is log sigma^2, so sigma^2 = exp(logvar)" if logstd else
        ": KL = 1/2 * sum(mu^2 + exp(logvar) - 1 - logvar), with logvar the log-variance"))
    for seed in SEEDS:
        inp = P.fixed_inputs(seed)
        rs = probe("kl", case=seed)["random"].float()
        ref = _kl_reference(inp["mu"], inp["logvar"])
        if torch.allclose(rs, -ref, rtol=1e-4, atol=1e-4):
            credit.part(2, False, "the KL has the wrong sign: KL(q || p) >= 0, and the loss adds it (negative ELBO = reconstruction + KL)")
            break
        if torch.allclose(rs, ref / inp["mu"].shape[1], rtol=1e-4, atol=1e-4):
            credit.part(2, False, "the KL is averaged over the latent dimensions: sum over them instead")
            break
        if not torch.allclose(rs, ref, rtol=1e-4, atol=1e-4):
            credit.part(2, False, "the KL of random (mu, logvar) does not match the closed form KL(N(mu, exp(logvar)) || N(0, I)) = 1/2 * sum(mu^2 + exp(logvar) - 1 - logvar)")
            break
    else:
        credit.part(2, True)


def test_reconstruction(probe):
    for seed in SEEDS:
        inp = P.fixed_inputs(seed)
        rec = probe("reconstruction", case=seed)["rec"]
        B, K, H, W = inp["logits"].shape
        got = tuple(rec.shape) if _is_tensor(rec) else None
        assert got == (B,), f"reconstruction_nll(logits, x) with logits (B, K, H, W) should return one number per image, shape (B,), got {got}"
        ref = _rec_reference(inp["logits"], inp["x"])
        rec = rec.float()
        assert not torch.allclose(rec, ref / (H * W), rtol=1e-4), "the reconstruction term is a mean over the pixels: sum the cross-entropy over the H * W pixels of each image (a mean weighs the KL H * W times too much)"
        assert not torch.allclose(rec, -ref, rtol=1e-4), "the reconstruction term has the wrong sign: return -log p(x | z), a positive cross-entropy"
        assert not torch.allclose(rec, ref / math.log(2), rtol=1e-4), "the reconstruction term is in bits: use natural logs (nats)"
        assert torch.allclose(rec, ref, rtol=1e-4, atol=1e-3), (
            "reconstruction_nll does not match the per-pixel categorical cross-entropy summed over pixels; the logits' colour dimension is dim 1 (B, K, H, W)")


def test_negative_elbo(probe):
    for seed in SEEDS:
        inp = P.fixed_inputs(seed)
        r = probe("negative_elbo", case=seed)
        parts = r["parts"]
        assert len(parts) == 3, f"negative_elbo should return three values (loss, reconstruction, kl), got a {r['kind']} of {len(parts)}"
        assert all(tuple(p.shape) == () for p in parts), f"negative_elbo's three values should be scalars (means over the batch), got shapes {[tuple(p.shape) for p in parts]}"
        loss, rec, kl = (float(p) for p in parts)
        B = inp["x"].shape[0]
        ref_loss, ref_rec, ref_kl = EXPECTED["negative_elbo"][str(seed)]
        assert math.isclose(loss, rec + kl, rel_tol=1e-4), "the loss should be reconstruction + kl (the negative ELBO adds the KL)"
        assert not math.isclose(loss, ref_loss * B, rel_tol=1e-3), "the negative ELBO is summed over the batch: take the mean over the images"
        assert math.isclose(rec, ref_rec, rel_tol=1e-3), "the reconstruction part of negative_elbo is wrong: the mean over the batch of reconstruction_nll (summed over pixels)"
        assert math.isclose(kl, ref_kl, rel_tol=1e-3), "the KL part of negative_elbo is wrong: the mean over the batch of kl_divergence (summed over latent dimensions)"
        assert math.isclose(loss, ref_loss, rel_tol=1e-3), "the negative ELBO on fixed inputs is wrong"


def test_gradients_reach_the_encoder(probe, credit):
    inp = P.fixed_inputs(0)
    r = probe("gradients", case=0)
    w = torch.linspace(-1.0, 1.0, inp["mu"].numel()).reshape(inp["mu"].shape)
    ok_mu = r["z_requires_grad"] and tuple(r["mu_grad"].shape) == tuple(w.shape) and torch.allclose(r["mu_grad"], w, atol=1e-5)
    credit.part(1, ok_mu, "no (or the wrong) gradient flows from the sample z back to mu: compute z = mu + sigma * eps with torch operations (no .detach(), no torch.no_grad(), no .sample())")
    expected_lv = w * inp["eps"] * 0.5 * torch.exp(0.5 * inp["logvar"])
    ok_lv = r["z_requires_grad"] and tuple(r["logvar_grad"].shape) == tuple(w.shape) and torch.allclose(r["logvar_grad"], expected_lv, atol=1e-4)
    credit.part(1, ok_lv, "no (or the wrong) gradient flows from the sample z back to logvar: z = mu + exp(logvar / 2) * eps must be differentiable in logvar")
    grads = r.get("encoder_grads")
    grads = grads if isinstance(grads, list) and all(_is_tensor(g) for g in grads) else []
    reached = bool(grads) and all(bool(torch.isfinite(g).all()) for g in grads) and sum(float(g.double().abs().sum()) for g in grads) > 0
    credit.part(2, reached,
                "the reconstruction term gives the VAE's encoder no gradient, so the encoder cannot learn: the sample must be reparameterised "
                "(z = mu + sigma * eps from reparameterize), not drawn with torch.distributions' .sample() or detached")
