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
