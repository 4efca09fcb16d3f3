"""Probes of assignment 1 (PixelRNN). They run inside the student's sandboxed process.

Each ``probe_<name>(sub, **params)`` calls the student's code (``sub``) and returns plain
tensors and numbers; the graders (test_*.py) compare them with expected values in their own
process. Nothing here knows an expected value. ``make_expected.py`` runs these same probes
on the reference solution, so the graders and the reference measure the same thing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

K, W, H, B = 7, 5, 4, 3  # the small models the structural probes build
T = W * H
_TRAINED: dict[tuple, tuple] = {}  # (seed, config) -> (model, losses): kept between probes of one worker


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


def probe_causality(sub, model):
    """(T, T) matrix: entry [t, s] = size of d logits[:, t] / d input pixel s (pytorch-made's check)."""
    m = _model(sub, model)
    m.eval()
    rows = []
    for t in range(T):
        oh = F.one_hot(_x(1), K).float().requires_grad_(True)  # (B, T, K)
        out = m(oh)  # (B, T, K)
        proj = torch.randn(out[:, t].shape, generator=torch.Generator().manual_seed(t))
        (out[:, t] * proj).sum().backward()
        rows.append(torch.zeros(T) if oh.grad is None else oh.grad.abs().sum(dim=(0, 2)))
    return {"grads": torch.stack(rows), "T": T}


def probe_above(sub):
    """Last step's logits with the pixel above changed and everything else (state included) the same."""
    m = _model(sub, "PixelLSTMAbove")
    m.eval()
    x = _x(3)
    with torch.no_grad():
        state = None
        for t in range(T - 1):
            _, state = m.step(x, t, state)
        t = T - 1
        base, _ = m.step(x, t, state)
        y = x.clone()
        y[:, t - W] = (y[:, t - W] + 1) % K
        changed, _ = m.step(y, t, state)
    return {"base": base, "changed": changed}


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
def grading_data(config: dict):
    """(train (n, T) long, held-out (m, T) long, K, H, W): the graders' fixed subset of the course data set."""
    from coursekit.data import course_dataset

    ds = course_dataset()
    train = ds.sequences("train")
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(config["subset_seed"]))[: config["train_subset"]]
    h, w = ds.image_shape
    return train[pick], ds.sequences("test"), ds.num_colors, h, w


def _trained(sub, config: dict, seed: int):
    key = (seed, tuple(sorted(config.items())))
    if key not in _TRAINED:
        train, _, k, _, w = grading_data(config)
        torch.manual_seed(seed)
        model = getattr(sub, config["model"])(k, w, hidden=config["hidden"])
        losses = sub.train(model, train, config["steps"], batch_size=config["batch_size"], lr=config["lr"],
                           device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed), progress=False)
        model.eval()
        _TRAINED[key] = (model, [float(v) for v in (losses or [])])
    return _TRAINED[key]


def probe_train(sub, config, seed):
    """Train with the student's train(); return the log-probability of every held-out pixel (m, T)."""
    model, losses = _trained(sub, config, seed)
    _, test, _, _, _ = grading_data(config)
    with torch.no_grad():
        logp = torch.cat([F.log_softmax(model(chunk), -1).gather(-1, chunk.unsqueeze(-1)).squeeze(-1) for chunk in test.split(64)])
    return {"logp": logp, "losses": losses}


def probe_sample(sub, config, seed, n, temperature, sample_seed):
    model, _ = _trained(sub, config, seed)
    _, _, _, h, w = grading_data(config)
    g = torch.Generator().manual_seed(sample_seed)
    return {"samples": sub.sample(model, n, h, w, temperature=temperature, generator=g)}


def probe_complete(sub, config, seed, n, n_known, temperature, sample_seed):
    model, _ = _trained(sub, config, seed)
    _, test, _, h, w = grading_data(config)
    images = test[:n].reshape(n, h, w)
    g = torch.Generator().manual_seed(sample_seed)
    return {"completed": sub.complete(model, images.clone(), n_known, temperature=temperature, generator=g)}
