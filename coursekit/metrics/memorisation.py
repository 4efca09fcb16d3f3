"""Does a generator copy its training set? The data-copying test of Meehan, Chaudhuri & Dasgupta (2020).

A model that returns its training images (a VAE that memorised, a GAN that fooled a weak
discriminator) gets an excellent FID: its samples *are* data. What gives it away is that its
samples sit closer to the training set than new data from the same distribution does.

Test: let d(z) be the distance from z to its nearest training image. Compare
  A = {d(y) : y a generated sample}   with   B = {d(x) : x a held-out real image}
with a one-sided Mann-Whitney U test of "A is stochastically smaller than B". The statistic is
reported as Meehan's Z_U, the U statistic standardised under the null (ties corrected):
  Z_U ~ 0   samples as far from the training set as fresh data (no sign of copying);
  Z_U << 0  samples closer than fresh data: copying; Z_U >> 0: underfitting (samples far off).
The verdict ``copying`` is ``Z_U < z_threshold`` (default -3, one-sided p ~ 0.0013) or more than
``copy_threshold`` (default 5%) of the samples being pixel-exact training images (held-out real
data of both kit data sets holds none).

This is the *global* version of the test. Meehan et al. also give a cell-wise C_T (k-means
cells over the training set, Z_U per cell, averaged with the cells' test weights) to catch a
model that copies in some regions and underfits in others. With 145 held-out sprites (180
digits) cells of a useful number would hold a handful of test images each and the per-cell Z_U
would be noise, so the kit uses the global Z_U and adds the exact-copy fraction, which catches
partial copying the global statistic can average away.

Distance: Euclidean in RGB pixel space (images as 3*H*W vectors in [0, 1]) by default.
Copying is a pixel-level notion: a copy with a few recoloured pixels is a tiny step away in
pixel space, whereas a classifier's features deliberately forget within-class detail, so two
different smileys can be nearer in feature space than a smiley and its perturbed copy. With
1,200 dimensions for 20x20 sprites, nearest neighbours in pixel space are cheap and exact.
``space="features"`` (needs an evaluator) is available for comparison.

Pass held-out images that are NOT also the samples (to test held-out data as a "model", split
the test set in halves: one half as samples, the other as the held-out reference).
"""

from __future__ import annotations

import math

import numpy as np
import torch

Z_THRESHOLD = -3.0  # Z_U below this -> copying (one-sided p ~ 0.0013)
COPY_THRESHOLD = 0.05  # more than this share of exact training copies -> copying


def _flat_rgb(images_indices, palette) -> torch.Tensor:
    """Palette images (N, H, W) -> (N, 3*H*W) float64 RGB in [0, 1]."""
    from ..data.convert import indices_to_rgb

    idx = torch.as_tensor(np.asarray(images_indices) if not torch.is_tensor(images_indices) else images_indices)
    return indices_to_rgb(idx, palette).reshape(len(idx), -1).double()


def nearest_distances(queries: torch.Tensor, reference: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """(M, D), (N, D) -> (M,): Euclidean distance from each query to its nearest reference row."""
    out = [torch.cdist(queries[i : i + batch_size].double(), reference.double()).min(dim=1).values
           for i in range(0, len(queries), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def exact_copy_fraction(samples, train) -> float:
    """Share of samples (M, H, W) identical, pixel for pixel, to some training image (N, H, W)."""
    s = np.asarray(samples.cpu() if torch.is_tensor(samples) else samples).astype(np.int64)
    t = np.asarray(train.cpu() if torch.is_tensor(train) else train).astype(np.int64)
    seen = {row.tobytes() for row in t.reshape(len(t), -1)}
    return float(np.mean([row.tobytes() in seen for row in s.reshape(len(s), -1)])) if len(s) else 0.0


def mann_whitney_z(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """One-sided Mann-Whitney U of "a smaller than b": (U, Z_U, p). Z_U < 0 when a tends smaller."""
    from scipy.stats import mannwhitneyu, norm, rankdata

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    m, n = len(a), len(b)
    u = float(mannwhitneyu(a, b, alternative="less", method="asymptotic", use_continuity=False).statistic)
    _, counts = np.unique(rankdata(np.concatenate([a, b])), return_counts=True)
    tot = m + n
    var = m * n / 12.0 * ((tot + 1) - (counts**3 - counts).sum() / (tot * (tot - 1)))
    z = (u - m * n / 2.0) / math.sqrt(var) if var > 0 else 0.0
    return u, float(z), float(norm.cdf(z))


def data_copying_test(samples, train, heldout, palette, space: str = "pixels", evaluator=None,
                      z_threshold: float = Z_THRESHOLD, copy_threshold: float = COPY_THRESHOLD) -> dict:
    """Meehan et al.'s global data-copying test.

    samples (M, H, W), train (N, H, W), heldout (T, H, W): palette indices into ``palette``.
    Returns {z_score, p_value, exact_copy_fraction, copying, sample_nn_median, heldout_nn_median}.
    """
    if space == "pixels":
        emb = lambda x: _flat_rgb(x, palette)  # noqa: E731  (M, 3*H*W)
    elif space == "features":
        if evaluator is None:
            raise ValueError("space='features' needs an evaluator")
        from .evaluator import features

        emb = lambda x: features(evaluator, x, palette).double()  # noqa: E731  (M, D)
    else:
        raise ValueError(f"space must be 'pixels' or 'features', got {space!r}")
    tr = emb(train)
    d_samples = nearest_distances(emb(samples), tr).numpy()  # (M,)
    d_heldout = nearest_distances(emb(heldout), tr).numpy()  # (T,)
    _, z, p = mann_whitney_z(d_samples, d_heldout)
    copies = exact_copy_fraction(samples, train)
    return {
        "z_score": z,
        "p_value": p,
        "exact_copy_fraction": copies,
        "copying": bool(z < z_threshold or copies > copy_threshold),
        "sample_nn_median": float(np.median(d_samples)),
        "heldout_nn_median": float(np.median(d_heldout)),
    }
