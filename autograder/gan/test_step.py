"""One call of train_step on fresh networks, with optimisers that record every update.

The discriminator's update must leave the generator untouched and send it no gradient (the
generated images are detached); the generator's update must reach G through D and leave D
unchanged; nothing may change the parameters outside the two optimisers' steps.
"""

TINY = 1e-12


def _events(probe):
    r = probe("step", z_dim=16, width=8, batch=8, lr=1e-3)
    ev = r["events"]
    assert ev, ("train_step never called opt_d.step() or opt_g.step() on the optimisers it was given; "
                "update both networks with the optimisers passed to it (do not create new ones)")
    return r, ev


def test_discriminator_update(probe, credit):
    r, ev = _events(probe)
    d_events = [e for e in ev if e["opt"] == "opt_d"]
    assert d_events, "train_step never called opt_d.step(): the discriminator must be updated first, on real and generated images"
    assert ev[0]["opt"] == "opt_d", "train_step updated the generator before the discriminator: first opt_d.step(), then opt_g.step()"
    first = ev[0]
    credit.part(1, first["change_D"] > TINY and first["grad_D"] > TINY,
                "opt_d.step() did not change the discriminator: call d_loss(...).backward() before opt_d.step()")
    credit.part(1, first["change_G"] <= TINY, "the generator's parameters changed during the discriminator's update")
    credit.part(1, first["grad_G"] <= TINY,
                "the discriminator's loss sent gradients into the generator: detach the generated images (G(z).detach()) in D's update")
    credit.part(1, first["outside_D"] <= TINY and first["outside_G"] <= TINY,
                "parameters changed before the first optimiser step: update only through opt_d.step() and opt_g.step()")


def test_generator_update(probe, credit):
    r, ev = _events(probe)
    g_idx = [i for i, e in enumerate(ev) if e["opt"] == "opt_g"]
    assert g_idx, "train_step never called opt_g.step(): after the discriminator, update the generator"
    g = ev[g_idx[0]]
    assert g["grad_G"] > TINY and g["change_G"] > TINY, (
        "no gradient reached the generator in its update, so it did not change: in the generator's part compute "
        "g_loss(D(G(z))) without detaching G(z) (only D's part uses detached images), then backward() and opt_g.step()")
    after = ev[g_idx[0] + 1:]
    d_after = [e for e in after if e["opt"] == "opt_d"]
    credit.part(2, g["change_D"] <= TINY and not d_after and r["after_last_D"] <= TINY,
                "the discriminator's parameters changed during the generator's update: in the generator's part only opt_g.step() "
                "may be called (do not call opt_d.step() after the generator's backward; D is updated once per step, before G)")
    credit.part(1, len(g_idx) == 1 and len([e for e in ev if e["opt"] == "opt_d"]) == 1,
                "train_step should make exactly one discriminator update and then one generator update")
    credit.part(1, g["outside_G"] <= TINY and r["after_last_G"] <= TINY,
                "the generator's parameters changed outside opt_g.step()")


def test_step_returns_losses(probe):
    r = probe("step", z_dim=16, width=8, batch=8, lr=1e-3)
    got = r["returned"]
    assert r["returned_type"] == "dict" and {"d_loss", "g_loss", "d_real", "d_fake"} <= set(got), (
        "train_step should return a dict with the floats d_loss, g_loss, d_real and d_fake")
    assert 0 <= got["d_real"] <= 1 and 0 <= got["d_fake"] <= 1, "d_real and d_fake are mean probabilities sigmoid(D(.)), in [0, 1]"
    assert 0 < got["d_loss"] < 10 and 0 < got["g_loss"] < 10, (
        "on fresh networks both losses should be near ln 2 ~ 0.69 (d_loss near 2 ln 2): return the losses of this step")
