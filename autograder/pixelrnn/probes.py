"""Probes of assignment 1 (PixelRNN). They run inside the student's sandboxed process.

Each ``probe_<name>(sub, **params)`` calls the student's code (``sub``) on inputs the grader
sent and returns raw outputs (logits, samples, weights) as plain tensors. Everything in this
process belongs to the student, who may rewrite any of it, this file and torch included: so
nothing here computes a loss, a metric or a verdict. The graders (test_*.py, with
``pixelrnn_common.py``) judge the raw outputs in their own process, and ``make_expected.py``
runs these same probes on the reference solution, so both measure the same thing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from coursekit.grading.gpu import training_device

K, W, H, B = 7, 5, 4, 3  # the small models the structural probes build
T = W * H


def _x(seed: int) -> torch.Tensor:
    return torch.randint(0, K, (B, T), generator=torch.Generator().manual_seed(seed))  # (B, T)


def _model(sub, name: str):
    torch.manual_seed(0)
    return sub.PixelLSTM(K, hidden=16) if name == "PixelLSTM" else sub.PixelLSTMAbove(K, W, hidden=16)


# --- encoding and loss -------------------------------------------------------------------
def probe_one_hot(sub, x, k):
    return {"out": sub.one_hot_pixels(torch.tensor(x), k)}


def probe_loss(sub, logits, target):
    logits, target = torch.tensor(logits), torch.tensor(target)
    return {"nats": sub.nll_nats(logits, target), "bits": sub.bits_per_pixel(logits, target)}


# --- the models --------------------------------------------------------------------------
def probe_forward(sub, model):
    """Logits for indices and for their one-hot encoding: (B, T, K) each, if the model is right."""
    m = _model(sub, model)
    x = _x(0)
    with torch.no_grad():
        return {"from_indices": m(x), "from_one_hot": m(F.one_hot(x, K).float()), "B": B, "T": T, "K": K}


def probe_tiny_logits(sub, model, x):
    """The small seeded model's logits for the grader's sequences ``x`` (n, T): the causality graders compare them
    across two workers (``coursekit.grading.causality``)."""
    m = _model(sub, model)
    m.eval()
    with torch.no_grad():
        return {"logits": m(torch.as_tensor(x).long())}


def probe_above(sub):
    """The logits of the last row's next-to-last pixel t (which has a pixel above-right), then the same step with
    the pixel above changed, and with the pixel above-right changed, everything else (state included) the same."""
    m = _model(sub, "PixelLSTMAbove")
    m.eval()
    x = _x(3)
    with torch.no_grad():
        state = None
        t = T - 2
        for s in range(t):
            _, state = m.step(x, s, state)
        base, _ = m.step(x, t, state)
        out = {"base": base}
        for key, where in (("changed", t - W), ("changed_right", t - W + 1)):
            y = x.clone()
            y[:, where] = (y[:, where] + 1) % K
            out[key], _ = m.step(y, t, state)
    return out


def probe_steps(sub, model):
    """forward(x) and the logits of step(x, t, state) for every t: (B, T, K) each."""
    m = _model(sub, model)
    m.eval()
    x = _x(2)
    with torch.no_grad():
        full = m(x)
        state, steps = None, []
        for t in range(T):
            logits, state = m.step(x, t, state)
            steps.append(logits)
    shapes = [list(s.shape) for s in steps]
    if all(s == [B, K] for s in shapes):
        return {"forward": full, "steps": torch.stack(steps, 1), "shapes": shapes}
    return {"forward": full, "shapes": shapes}


# --- training and generation -------------------------------------------------------------
# The grader sends the data (the training images; held-out images only to be scored), trains
# once, and gets the weights back as plain tensors; every later probe rebuilds the model from
# them. Nothing here computes a loss, a threshold or a verdict.
def _build(sub, config: dict, k: int, w: int):
    cls = getattr(sub, config["model"])
    extra = {"dropout": config["dropout"]} if config.get("dropout") else {}
    return cls(k, hidden=config["hidden"], **extra) if config["model"] == "PixelLSTM" else cls(k, w, hidden=config["hidden"], **extra)


def _restore(sub, config: dict, k: int, w: int, state: dict):
    model = _build(sub, config, k, w)
    model.load_state_dict(state)
    model.eval()
    return model


def probe_train(sub, config, seed, train, k, w, val=None):
    """Train a fresh model with the student's train() on the grader's training sequences (n, T), with the profile's
    recipe: weight decay, dropout, and the grader's validation sequences ``val`` (m, T) to keep the best weights on."""
    torch.manual_seed(seed)
    model = _build(sub, config, k, w)
    # the profile's device: cpu unless it says cuda (an error, never a quiet CPU run, where the worker has no CUDA)
    device = training_device(config.get("device", "cpu"), torch)
    extra = {"weight_decay": config["weight_decay"]} if config.get("weight_decay") else {}
    if val is not None:
        extra.update(val=torch.as_tensor(val).long(), eval_every=config["eval_every"])
    losses = sub.train(model, torch.as_tensor(train).long(), config["steps"], batch_size=config["batch_size"], lr=config["lr"],
                       device=device, generator=torch.Generator().manual_seed(seed), progress=False, **extra)
    return {"state": dict(model.state_dict()), "losses": [float(v) for v in (losses or [])], "device": str(device)}


def probe_logits(sub, config, k, w, state, x):
    """The trained model's logits (n, T, K) for the grader's sequences ``x`` (n, T)."""
    model = _restore(sub, config, k, w, state)
    x = torch.as_tensor(x).long()
    with torch.no_grad():
        return {"logits": torch.cat([model(chunk) for chunk in x.split(64)])}


def probe_sample(sub, config, k, w, h, state, n, temperature, sample_seed):
    model = _restore(sub, config, k, w, state)
    g = torch.Generator().manual_seed(sample_seed)
    return {"samples": sub.sample(model, n, h, w, temperature=temperature, generator=g)}


def probe_complete(sub, config, k, w, state, images, n_known, temperature, sample_seed):
    model = _restore(sub, config, k, w, state)
    g = torch.Generator().manual_seed(sample_seed)
    return {"completed": sub.complete(model, torch.as_tensor(images).long().clone(), n_known, temperature=temperature, generator=g)}


# --- the graders' own small model ----------------------------------------------------------------
class KnownModel(torch.nn.Module):
    """A model the grader supplies, to test generation apart from training: the logits of pixel t are
    left[x[t-1]] + up[x[t-W]] (row K: no such pixel). It has the models' interface: forward(x) (B, T, K) and
    step(x, t, state) -> (logits (B, K), state); the tables come from the grader, which judges the draws in its
    own process."""

    def __init__(self, left, up, width):
        super().__init__()
        self.left = torch.nn.Parameter(torch.as_tensor(left).float(), requires_grad=False)  # (K + 1, K)
        self.up = torch.nn.Parameter(torch.as_tensor(up).float(), requires_grad=False)
        self.K, self.width, self.hidden = self.left.shape[1], width, 1
        self.height = width

    def forward(self, x):
        x = x.argmax(-1) if x.is_floating_point() else x.long()
        b = len(x)
        prev = torch.cat([torch.full((b, 1), self.K, dtype=torch.long, device=x.device), x[:, :-1]], 1)
        above = torch.cat([torch.full((b, self.width), self.K, dtype=torch.long, device=x.device), x[:, : -self.width]], 1)
        return self.left[prev] + self.up[above]

    def step(self, x, t, state=None):
        """Like an LSTM, it must be fed every step from t = 0, with the state the previous step returned: otherwise
        it has lost track, and its logits are all zero (a uniform distribution) from there on, which the grader's
        measurements see."""
        b = len(x)
        none = torch.full((b,), self.K, dtype=torch.long, device=x.device)
        prev = x[:, t - 1].long() if t > 0 else none
        above = x[:, t - self.width].long() if t >= self.width else none
        seen = 0 if state is None else int(state[0][0])
        logits = self.left[prev] + self.up[above]
        if seen != t:  # a step was skipped (or a state lost): from here on it has lost track for good
            return torch.zeros_like(logits), (torch.full((1,), -1),)
        return logits, (torch.full((1,), t + 1),)


def probe_known_sample(sub, tables, w, h, n, temperature, sample_seed):
    model = KnownModel(tables["left"], tables["up"], w).eval()
    g = torch.Generator().manual_seed(sample_seed)
    return {"samples": sub.sample(model, n, h, w, temperature=temperature, generator=g)}


def probe_known_complete(sub, tables, w, images, n_known, temperature, sample_seed):
    model = KnownModel(tables["left"], tables["up"], w).eval()
    g = torch.Generator().manual_seed(sample_seed)
    return {"completed": sub.complete(model, torch.as_tensor(images).long().clone(), n_known, temperature=temperature, generator=g)}
