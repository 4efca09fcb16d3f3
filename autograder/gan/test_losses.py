"""The three losses on fixed logits, moderate and extreme (+-1e4), against the reference's values."""

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_common import load_expected  # noqa: E402

EXPECTED = load_expected()["losses"]
NAMES = {"d_loss": "d_loss(real_logits, fake_logits)", "g_loss_minimax": "g_loss_minimax(fake_logits)",
         "g_loss_nonsaturating": "g_loss_nonsaturating(fake_logits)"}


def _sp(x):
    return torch.nn.functional.softplus(torch.tensor(x, dtype=torch.float64))


def _variants(case: dict) -> dict:
    """Values of typical wrong versions of d_loss, to name the mistake in the message."""
    r, f = case["real_logits"], case["fake_logits"]
    sig = lambda v: torch.sigmoid(torch.tensor(v, dtype=torch.float64))  # noqa: E731
    return {
        "labels swapped (real images labelled 0 and generated ones 1)": float(_sp(r).mean() + _sp([-v for v in f]).mean()),
        "a sigmoid applied to the logits before a loss that applies its own sigmoid (sigmoid twice)":
            float(torch.nn.functional.softplus(-sig(r)).mean() + torch.nn.functional.softplus(sig(f)).mean()),
        "the sum over the batch instead of the mean": float(_sp([-v for v in r]).sum() + _sp(f).sum()),
    }


def _check_one(res: dict, exp: dict, what: str, extreme: bool) -> str | None:
    """None if the loss result matches the reference, else the student-facing reason."""
    if not res["is_tensor"] or res["shape"] != []:
        return f"{what} should return a scalar tensor (the mean over the batch), got shape {res['shape']}"
    v = float(res["value"])
    if not math.isfinite(v):
        return (f"{what} is {v} for logits as large as 1e4: compute -log sigmoid(l) as F.softplus(-l) and -log(1 - sigmoid(l)) as "
                "F.softplus(l) (or use F.binary_cross_entropy_with_logits); never take the log of a sigmoid")
    grads = res["grads"]
    if any(not torch.isfinite(g).all() for g in grads):
        return f"{what} has NaN or infinite gradients at large logits: use F.softplus instead of log(sigmoid(.))"
    if abs(v - exp["value"]) > 1e-4 * max(1.0, abs(exp["value"])):
        return f"{what} gives a wrong value"
    for g, ge in zip(grads, exp["grads"]):
        if not torch.allclose(g.double(), torch.tensor(ge, dtype=torch.float64), atol=1e-5, rtol=1e-4):
            return f"{what} has the right value but wrong gradients with respect to the logits"
    return None


def test_d_loss_values(probe):
    case = EXPECTED["moderate"]
    res = probe("losses", **case["inputs"])["d_loss"]
    msg = _check_one(res, case["d_loss"], NAMES["d_loss"], extreme=False)
    if msg and msg.endswith("wrong value"):
        v = float(res["value"])
        for name, alt in _variants(case["inputs"]).items():
            if abs(v - alt) < 1e-4 * max(1.0, abs(alt)):
                msg += f": it looks like {name}. Real images are labelled 1 (-log sigmoid(D(x))), generated ones 0 (-log(1 - sigmoid(D(G(z))))), averaged over the batch"
                break
        else:
            msg += ": it should be mean(-log sigmoid(real_logits)) + mean(-log(1 - sigmoid(fake_logits))), from logits"
    assert msg is None, msg


def test_generator_losses(probe, credit):
    case = EXPECTED["moderate"]
    res = probe("losses", **case["inputs"])
    hints = {"g_loss_minimax": "it should be mean(log(1 - sigmoid(fake_logits))): negative, going down as D is fooled",
             "g_loss_nonsaturating": "it should be mean(-log sigmoid(fake_logits)): positive, going down as D is fooled"}
    for name in ("g_loss_minimax", "g_loss_nonsaturating"):
        msg = _check_one(res[name], case[name], NAMES[name], extreme=False)
        if msg and msg.endswith("wrong value"):
            msg += "; " + hints[name]
        credit.part(1, msg is None, msg or "")


def test_extreme_logits(probe, credit):
    """Finite values and gradients at +-1e4; exact values too, unless the loss is already wrong at moderate logits
    (that mistake is the other tests' to report)."""
    case, mod = EXPECTED["extreme"], EXPECTED["moderate"]
    res = probe("losses", **case["inputs"])
    res_mod = probe("losses", **mod["inputs"])
    for name in ("d_loss", "g_loss_minimax", "g_loss_nonsaturating"):
        msg = _check_one(res[name], case[name], NAMES[name] + " at logits of +-1e4", extreme=True)
        if msg and ("wrong value" in msg or "wrong gradients" in msg):
            if _check_one(res_mod[name], mod[name], NAMES[name], extreme=False) is not None:
                msg = None  # finite, and wrong at moderate logits too: the value tests report it
            else:
                msg += " (finite, but not exact: keep the computation in log space with F.softplus)"
        credit.part(1, msg is None, msg or "")
