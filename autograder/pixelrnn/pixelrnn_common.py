"""Grader-side helpers of assignment 1, shared by the graders (conftest.py) and make_expected.py.

Everything here runs in the grader's process on raw outputs of the student's code:

- ``grading_data(config)``: the graders' training subset and the held-out sequences;
- ``bits_per_pixel(logits, x)``: held-out bits per pixel from logits, computed here;
- ``heldout_split(x)``: the held-out sequences and their variants, split between two workers so
  that causality is checked in the very calls that are scored (``coursekit.grading.causality``).
"""

from __future__ import annotations

import math
import os
import secrets

import torch
import torch.nn.functional as F

CAUSAL_TOL = 1e-3  # nats: outputs for the same prefix must agree this closely (float noise is ~1e-6)
# The two workers of the causality checks: the one that trained (it never sees a held-out image before this) and a
# second one. Neither ever holds an original beside its own variant.
WORKERS = ("main", "check")
# The branch points come from a secret seed drawn once per grading session: a model that knew them could peek at
# every other position. Honest models get the same points whatever the seed (only originals are scored), so grades
# stay the same everywhere; COURSEKIT_SPLIT_SEED pins it for a test.
SPLIT_SEED = int(os.environ.get("COURSEKIT_SPLIT_SEED") or secrets.randbits(62))


def grading_data(config: dict, ds=None):
    """(train (n, T) long, held-out (m, T) long, K, H, W): the graders' subset of the course data set."""
    from coursekit.data import course_dataset

    ds = ds or course_dataset()
    train = ds.sequences("train")
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(config["subset_seed"]))[: config["train_subset"]]
    h, w = ds.image_shape
    return train[pick], ds.sequences("test"), ds.num_colors, h, w


def validation_split(train: torch.Tensor, config: dict):
    """(train, val or None): the profile's share ``val_share`` of the graders' training subset, set aside for train()'s
    validation (the notebook's recipe: keep the weights best on it); never the held-out split. The subset is already in
    a random order (``grading_data``), so its first rows are a random pick."""
    share = float(config.get("val_share", 0))
    if share <= 0:
        return train, None
    n_val = max(1, int(round(share * len(train))))
    return train[n_val:], train[:n_val]


def log_probs(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(n, T): log-probability of each pixel of ``x`` (n, T) under ``logits`` (n, T, K)."""
    return F.log_softmax(logits.double(), -1).gather(-1, x.long().unsqueeze(-1)).squeeze(-1)


def bits_per_pixel(logits: torch.Tensor, x: torch.Tensor) -> float:
    return float(-log_probs(logits, x).mean() / math.log(2))


def heldout_split(x: torch.Tensor, k: int):
    from coursekit.grading.causality import split_for_two_workers

    return split_for_two_workers(x, SPLIT_SEED, num_values=k)


def check_logits(logits, n: int, t: int, k: int, what: str) -> torch.Tensor:
    """The raw logits a worker returned, checked for type, shape and finiteness (AssertionError for the student)."""
    assert torch.is_tensor(logits) and logits.is_floating_point(), f"{what}: the model should return float logits, got {type(logits).__name__}"
    assert tuple(logits.shape) == (n, t, k), f"{what}: the model returned logits of shape {tuple(logits.shape)}, expected {(n, t, k)}"
    assert bool(torch.isfinite(logits).all()), f"{what}: the model's logits are not all finite (NaN or inf): check for NaN during training"
    return logits


# --- the graders' own small model, whose distribution is known --------------------------------------------
# The generation graders test sample(), generate() and complete() on a model the grader supplies, so that they are
# graded whatever the student's training did: the logits of pixel t are left[x[t-1]] + up[x[t-W]] (row K of each
# table stands for "no such pixel": t = 0, or the first row). The worker builds it from the tables the grader sends
# (probes.KnownModel); the grader computes log-likelihoods and its own draws here, from the same tables.
KNOWN_SEED = 2027


def known_tables(k: int, seed: int = KNOWN_SEED) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"left": torch.randn(k + 1, k, generator=g) * 1.5, "up": torch.randn(k + 1, k, generator=g) * 1.5}


def _neighbours(x: torch.Tensor, k: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(previous pixel, pixel above) of every position of x (n, T), K where there is none."""
    n = len(x)
    prev = torch.cat([torch.full((n, 1), k, dtype=torch.long), x[:, :-1]], 1)
    above = torch.cat([torch.full((n, w), k, dtype=torch.long), x[:, :-w]], 1)
    return prev, above


def known_logits(tables: dict, x: torch.Tensor, w: int) -> torch.Tensor:
    """(n, T, K) logits of the known model for sequences x (n, T)."""
    k = tables["left"].shape[1]
    prev, above = _neighbours(x.long(), k, w)
    return tables["left"][prev] + tables["up"][above]


def known_log_likelihood(tables: dict, x: torch.Tensor, w: int, start: int = 0) -> torch.Tensor:
    """(n,) mean log-likelihood in nats per pixel of x (n, T) under the known model at temperature 1, over pixels start..T-1.
    A few sequences at a time: the logits of all the grader's draws at once, (n, T, K) in float64, are hundreds of MB
    (Gradescope: 768 MB for the grader and its workers); each sequence's figure is the same either way."""
    x = x.long()
    parts = [log_probs(known_logits(tables, xc, w), xc)[:, start:].mean(1) for xc in x.split(16)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def known_draws(tables: dict, prefix: torch.Tensor, n_known: int, w: int, temperature: float, seed: int) -> torch.Tensor:
    """The grader's own draws from the known model: prefix (n, T) with pixels n_known.. filled in at ``temperature``."""
    k = tables["left"].shape[1]
    g = torch.Generator().manual_seed(seed)
    x = prefix.long().clone()
    for t in range(n_known, x.shape[1]):
        prev = x[:, t - 1] if t > 0 else torch.full((len(x),), k, dtype=torch.long)
        above = x[:, t - w] if t >= w else torch.full((len(x),), k, dtype=torch.long)
        probs = torch.softmax((tables["left"][prev] + tables["up"][above]).double() / temperature, -1)
        x[:, t] = torch.multinomial(probs, 1, generator=g)[:, 0]
    return x


def known_fit(tables: dict, got: torch.Tensor, prefix: torch.Tensor, n_known: int, w: int, temperature: float,
              draws: int = 8, seed: int = 11) -> dict:
    """How likely the worker's draws ``got`` (n, T) are under the known model, against the grader's own draws from the
    same prefixes at the same temperature: {"got", "want", "tolerance"} in nats per pixel (mean over images)."""
    ours = torch.cat([known_draws(tables, prefix, n_known, w, temperature, seed + i) for i in range(draws)])
    ll = known_log_likelihood(tables, ours, w, n_known)
    se = float(ll.std()) / math.sqrt(len(got))
    return {"got": float(known_log_likelihood(tables, got, w, n_known).mean()), "want": float(ll.mean()),
            "tolerance": max(6 * se, 0.01)}
