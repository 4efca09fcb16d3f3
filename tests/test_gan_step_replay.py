"""The GAN step check's replay (autograder/gan/step_replay.py) on records made here: an honest Adam step is
recognised, a record whose updates are not Adam's from its gradients is not, and malformed records are refused."""

from __future__ import annotations

import pytest
import torch

from coursekit import paths
from coursekit.notebook import module_from_file

R = module_from_file(paths.autograder_dir() / "gan" / "step_replay.py", "_gan_step_replay_for_tests")
LR = 1e-3


def _record(fake_update: bool = False) -> dict:
    """A record as probes.probe_step makes it, for one D step then one G step on two tiny 'networks'."""
    torch.manual_seed(0)
    nets = {"G": [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(2))],
            "D": [torch.nn.Parameter(torch.randn(4))]}
    opts = {"opt_d": torch.optim.Adam(nets["D"], lr=LR, betas=R.BETAS), "opt_g": torch.optim.Adam(nets["G"], lr=LR, betas=R.BETAS)}
    snap = lambda: {k: [p.detach().clone() for p in ps] for k, ps in nets.items()}  # noqa: E731
    start, events = snap(), []
    for name in ("opt_d", "opt_g"):
        net = R.OWNER[name]
        for p in nets[net]:
            p.grad = torch.randn_like(p)
        before = snap()
        grads = {k: [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in ps] for k, ps in nets.items()}
        if fake_update:
            with torch.no_grad():
                for p in nets[net]:
                    p.sub_(LR * p.grad)  # plain SGD: a step, but not Adam's
        else:
            opts[name].step()
        events.append({"opt": name, "before": before, "grads": grads,
                       "has_grad": {k: [p.grad is not None for p in ps] for k, ps in nets.items()}, "after": snap()})
        for p in nets[net]:
            p.grad = None
    return {"start": start, "end": snap(), "events": events, "returned": {}, "returned_type": "dict"}


def test_an_honest_adam_step_is_recognised():
    events, after_last = R.read_step(_record(), LR)
    assert [e.opt for e in events] == ["opt_d", "opt_g"] and all(e.adam_ok for e in events)
    assert events[0].change["D"] > 0 and events[0].change["G"] == 0 and events[1].change["D"] == 0
    assert events[0].grad["D"] > 0 and after_last == {"G": 0.0, "D": 0.0}


def test_updates_that_are_not_adams_are_caught():
    events, _ = R.read_step(_record(fake_update=True), LR)
    assert not any(e.adam_ok for e in events)


@pytest.mark.parametrize("damage", ["no_start", "wrong_shape", "nan", "unknown_optimiser", "floats", "too_many"])
def test_malformed_records_are_refused(damage):
    r = _record()
    if damage == "no_start":
        r["start"] = {}
    elif damage == "wrong_shape":
        r["events"][0]["grads"]["D"] = [torch.zeros(5)]
    elif damage == "nan":
        r["events"][1]["after"]["G"][0][0, 0] = float("nan")
    elif damage == "unknown_optimiser":
        r["events"][0]["opt"] = "opt_x"
    elif damage == "floats":
        r["events"][0] = {"opt": "opt_d", "grad_G": 0.0, "grad_D": 1.0, "change_G": 0.0, "change_D": 1.0}
    else:
        r["events"] = r["events"] * (R.MAX_EVENTS // 2 + 1)
    with pytest.raises(R.BadRecord):
        R.read_step(r, LR)
