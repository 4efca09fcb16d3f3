"""All sample metrics in one call, and their spread over seeds."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch


def _subsample(x: torch.Tensor, n: int | None, generator: torch.Generator) -> torch.Tensor:
    if n is None or n >= len(x):
        return x
    return x[torch.randperm(len(x), generator=generator)[:n]]


def evaluate_samples(samples_indices, dataset, evaluator, generator: torch.Generator | None = None,
                     n: int | None = None, n_real: int | None = None, k: int = 5,
                     heldout=None, reference: str = "train") -> dict:
    """Every sample metric of ``samples_indices`` (M, H, W), palette indices of ``dataset``.

    - n: use a random ``n`` of the samples (all by default).
    - n_real: how many real reference images (random); default as many as there are samples,
      as the precision/recall and density/coverage papers do (both depend on the two sizes),
      which also gives FID the same small-sample bias on both sides. Compare only numbers
      computed with the same n and n_real.
    - reference: the real images FID/KID/PRDC/diversity compare with ('train' or 'all').
    - heldout: held-out real images (T, H, W) for the copying test; default the test split.
      (When the samples are themselves test images, pass the other half of the test split.)
    - generator: draws the subsets (and KID's subsets); a fixed generator gives fixed numbers.

    Returns a flat dict of floats (and the bool ``copying``), see ``coursekit/metrics/README.md``.
    """
    from .diversity import duplicate_rate, palette_usage, pairwise_distance_ratio
    from .evaluator import features
    from .fid import fid_from_features, kid_from_features
    from .memorisation import data_copying_test
    from .precision_recall import prdc

    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    samples = torch.as_tensor(np.asarray(samples_indices) if not torch.is_tensor(samples_indices) else samples_indices).long()
    samples = _subsample(samples, n, generator)  # (M, H, W)
    real_all, _ = dataset.tensors(reference)  # (N, H, W)
    real = _subsample(real_all, len(samples) if n_real is None else n_real, generator)  # (N, H, W)
    train, _ = dataset.tensors("train")
    if heldout is None:
        heldout, _ = dataset.tensors("test")

    f_fake = features(evaluator, samples, dataset.palette)  # (M, D)
    f_real = features(evaluator, real, dataset.palette)  # (N, D)
    kid_mean, kid_std = kid_from_features(f_real, f_fake, generator=generator)
    out = {"num_samples": len(samples), "num_real": len(real),
           "fid": fid_from_features(f_real, f_fake), "kid": kid_mean, "kid_subset_std": kid_std}
    out.update(prdc(f_real, f_fake, k=k))
    size_matched_real = _subsample(real, len(samples), generator)
    out["duplicate_rate"] = duplicate_rate(samples)
    out["palette_usage"] = palette_usage(samples, size_matched_real, dataset.num_colors)
    out["pairwise_distance_ratio"] = pairwise_distance_ratio(f_fake, f_real)
    copy = data_copying_test(samples, train, heldout, dataset.palette)
    out.update({"copying_z": copy["z_score"], "copying_p": copy["p_value"],
                "exact_copy_fraction": copy["exact_copy_fraction"], "copying": copy["copying"]})
    return out


def spread_over_seeds(fn: Callable[[int], dict], seeds: Iterable[int]) -> dict[str, tuple[float, float]]:
    """Run ``fn(seed)`` (a dict of numbers) for each seed -> {metric: (mean, std)}.

    std is the sample standard deviation (ddof=1; 0 for one seed). Booleans average to the
    share of seeds where they held. Non-numeric entries are dropped.
    """
    runs = [fn(int(s)) for s in seeds]
    if not runs:
        raise ValueError("spread_over_seeds needs at least one seed")
    out = {}
    for key in runs[0]:
        vals = [r[key] for r in runs]
        if not all(isinstance(v, (int, float, bool, np.number)) for v in vals):
            continue
        v = np.asarray(vals, dtype=np.float64)
        out[key] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
    return out


def format_spread(spread: dict[str, tuple[float, float]], digits: int = 3) -> str:
    """One line per metric: 'name  mean ± std'."""
    w = max(map(len, spread), default=0)
    return "\n".join(f"{k:<{w}}  {m:.{digits}g} ± {s:.2g}" if not math.isnan(m) else f"{k:<{w}}  nan"
                     for k, (m, s) in spread.items())
