"""One call of train_step on fresh networks, with optimisers that record every update.

The discriminator's update must leave the generator untouched and send it no gradient (the
generated images are detached); the generator's update must reach G through D and leave D
unchanged; nothing may change the parameters outside the two optimisers' steps. The worker sends
back only parameters and gradients; every change, norm and the Adam replay that ties the updates to
the gradients are computed here (``step_replay.read_step``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_replay import read_step  # noqa: E402

TINY = 1e-12
LR = 1e-3


def _events(probe):
    r = probe("step", z_dim=16, width=8, batch=8, lr=LR)
    events, after_last = read_step(r, LR)
    assert events, ("train_step never called opt_d.step() or opt_g.step() on the optimisers it was given; "
                    "update both networks with the optimisers passed to it (do not create new ones)")
    for e in events:
        net = "generator" if e.opt == "opt_g" else "discriminator"
        assert e.adam_ok, (f"after {e.opt}.step() the {net}'s parameters are not what Adam's update from its gradients gives: "
                           f"change the parameters only through the optimisers passed to train_step, with their settings")
    return events, after_last


def test_discriminator_update(probe, credit):
    ev, _ = _events(probe)
    d_events = [e for e in ev if e.opt == "opt_d"]
    assert d_events, "train_step never called opt_d.step(): the discriminator must be updated first, on real and generated images"
    assert ev[0].opt == "opt_d", "train_step updated the generator before the discriminator: first opt_d.step(), then opt_g.step()"
    first = ev[0]
    credit.part(1, first.change["D"] > TINY and first.grad["D"] > TINY,
                "opt_d.step() did not change the discriminator: call d_loss(...).backward() before opt_d.step()")
    credit.part(1, first.change["G"] <= TINY, "the generator's parameters changed during the discriminator's update")
    credit.part(1, first.grad["G"] <= TINY,
                "the discriminator's loss sent gradients into the generator: detach the generated images (G(z).detach()) in D's update")
    credit.part(1, first.outside["D"] <= TINY and first.outside["G"] <= TINY,
                "parameters changed before the first optimiser step: update only through opt_d.step() and opt_g.step()")


def test_generator_update(probe, credit):
    ev, after_last = _events(probe)
    g_idx = [i for i, e in enumerate(ev) if e.opt == "opt_g"]
    assert g_idx, "train_step never called opt_g.step(): after the discriminator, update the generator"
    g = ev[g_idx[0]]
    assert g.grad["G"] > TINY and g.change["G"] > TINY, (
        "no gradient reached the generator in its update, so it did not change: in the generator's part compute "
        "g_loss(D(G(z))) without detaching G(z) (only D's part uses detached images), then backward() and opt_g.step()")
    after = ev[g_idx[0] + 1:]
    d_after = [e for e in after if e.opt == "opt_d"]
    credit.part(2, g.change["D"] <= TINY and not d_after and after_last["D"] <= TINY,
                "the discriminator's parameters changed during the generator's update: in the generator's part only opt_g.step() "
                "may be called (do not call opt_d.step() after the generator's backward; D is updated once per step, before G)")
    credit.part(1, len(g_idx) == 1 and len([e for e in ev if e.opt == "opt_d"]) == 1,
                "train_step should make exactly one discriminator update and then one generator update")
    credit.part(1, g.outside["G"] <= TINY and after_last["G"] <= TINY,
                "the generator's parameters changed outside opt_g.step()")


def test_step_returns_losses(probe):
    r = probe("step", z_dim=16, width=8, batch=8, lr=LR)
    got = r.get("returned") if isinstance(r, dict) else None
    got = got if isinstance(got, dict) and all(type(v) is float for v in got.values()) else {}
    assert r.get("returned_type") == "dict" and {"d_loss", "g_loss", "d_real", "d_fake"} <= set(got), (
        "train_step should return a dict with the floats d_loss, g_loss, d_real and d_fake")
    assert 0 <= got["d_real"] <= 1 and 0 <= got["d_fake"] <= 1, "d_real and d_fake are mean probabilities sigmoid(D(.)), in [0, 1]"
    assert 0 < got["d_loss"] < 10 and 0 < got["g_loss"] < 10, (
        "on fresh networks both losses should be near ln 2 ~ 0.69 (d_loss near 2 ln 2): return the losses of this step")
