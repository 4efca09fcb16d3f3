"""What one train_step did, computed in the grader from the raw tensors the worker sent back.

The step probe (``probes.probe_step``) returns both networks' parameters at the start and the end
of train_step, and for each optimiser step the parameters before and after it and the gradients it
found. Nothing it sends is trusted: ``read_step`` checks the record's form against the parameters'
shapes, computes every norm and change here, and replays each step with Adam (same settings as the
probe's optimisers) from the reported gradients, so the recorded updates must be the ones those
gradients give. A record written by hand instead of a real step has to get all of that right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NETS = ("G", "D")
OWNER = {"opt_g": "G", "opt_d": "D"}  # which network each optimiser updates
BETAS = (0.5, 0.999)  # as in probes.probe_step
MAX_EVENTS = 64  # more optimiser steps than this in one train_step is not a training step
ATOL = 1e-6  # parameters: a thousandth of one Adam step at lr 1e-3
RTOL = 1e-5


class BadRecord(AssertionError):
    """The record does not have the form the probe gives: something in the student's process changed it."""


@dataclass
class Event:
    opt: str  # "opt_g" or "opt_d"
    grad: dict  # network -> norm of its gradient when the optimiser stepped
    change: dict  # network -> how far its parameters moved during the step
    outside: dict  # network -> how far they moved between the previous step (or the start) and this one
    adam_ok: bool  # the stepping network moved exactly as Adam does from the reported gradients


def _tensors(x, shapes, what):
    if not isinstance(x, list) or len(x) != len(shapes) or not all(
            isinstance(t, torch.Tensor) and t.dtype == torch.float32 and tuple(t.shape) == s for t, s in zip(x, shapes)):
        raise BadRecord(f"the step record's {what} do not match the networks' parameters")
    if not all(bool(torch.isfinite(t).all()) for t in x):
        raise BadRecord(f"the step record's {what} are not finite")
    return x


def _distance(a, b) -> float:
    return float(sum(float(((x.double() - y.double()) ** 2).sum()) for x, y in zip(a, b))) ** 0.5


def _norm(a) -> float:
    return float(sum(float((x.double() ** 2).sum()) for x in a)) ** 0.5


def read_step(r: dict, lr: float) -> tuple[list[Event], dict]:
    """(events, after_last) from the probe's result: after_last[net] is how far a network moved after the last
    optimiser step. Raises BadRecord when the record is not what the probe makes."""
    if not isinstance(r, dict) or not isinstance(r.get("start"), dict) or not isinstance(r.get("events"), list):
        raise BadRecord("the step record is not in the form the grader's probe returns")
    start = r["start"]
    if not all(isinstance(start.get(k), list) and start[k] and all(isinstance(t, torch.Tensor) for t in start[k]) for k in NETS):
        raise BadRecord("the step record has no parameters for the generator or the discriminator")
    shapes = {k: [tuple(t.shape) for t in start[k]] for k in NETS}
    for k in NETS:
        _tensors(start[k], shapes[k], "starting parameters")
        _tensors((r.get("end") or {}).get(k), shapes[k], "final parameters")
    if len(r["events"]) > MAX_EVENTS:
        raise BadRecord(f"train_step called the optimisers' step() {len(r['events'])} times")
    replay = {name: _Adam(shapes[net], lr) for name, net in OWNER.items()}
    events, prev = [], start
    for e in r["events"]:
        if not isinstance(e, dict) or e.get("opt") not in OWNER:
            raise BadRecord("a step in the step record names no optimiser the grader gave")
        before = {k: _tensors((e.get("before") or {}).get(k), shapes[k], "parameters before a step") for k in NETS}
        after = {k: _tensors((e.get("after") or {}).get(k), shapes[k], "parameters after a step") for k in NETS}
        grads = {k: _tensors((e.get("grads") or {}).get(k), shapes[k], "gradients") for k in NETS}
        has = (e.get("has_grad") or {}).get(OWNER[e["opt"]])
        if not isinstance(has, list) or len(has) != len(shapes[OWNER[e["opt"]]]) or not all(type(h) is bool for h in has):
            raise BadRecord("the step record does not say which parameters had gradients")
        net = OWNER[e["opt"]]
        expected = replay[e["opt"]].step(before[net], grads[net], has)
        adam_ok = all(torch.allclose(a, x, atol=ATOL, rtol=RTOL) for a, x in zip(after[net], expected))
        events.append(Event(e["opt"], {k: _norm(grads[k]) for k in NETS}, {k: _distance(after[k], before[k]) for k in NETS},
                            {k: _distance(before[k], prev[k]) for k in NETS}, adam_ok))
        prev = after
    after_last = {k: _distance(r["end"][k], prev[k]) for k in NETS}
    return events, after_last


class _Adam:
    """torch's Adam over parameters the grader holds, stepped from the reported gradients."""

    def __init__(self, shapes, lr):
        self.params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
        self.opt = torch.optim.Adam(self.params, lr=lr, betas=BETAS, foreach=False)

    def step(self, before, grads, has_grad):
        with torch.no_grad():
            for p, b, g, h in zip(self.params, before, grads, has_grad):
                p.copy_(b)
                p.grad = g.clone() if h else None
        self.opt.step()
        return [p.detach().clone() for p in self.params]
