"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020) on features.

Both estimate the support of a distribution by k-nearest-neighbour balls. With real features
X (N, D), generated features Y (M, D) and NND_k(x) the distance from x to its k-th nearest
neighbour in its own set (itself excluded):

- precision = share of Y inside at least one real ball B(x, NND_k(x)): are samples realistic?
- recall    = share of X inside at least one generated ball B(y, NND_k(y)): is the data covered?
- density   = (1 / kM) sum_y #{x : y in B(x, NND_k(x))}: like precision, but counts how many
  real balls hold each sample, so a few outlying real points with big balls cannot vouch for
  many bad samples; ~1 when Y and X share a distribution, can exceed 1.
- coverage  = share of real balls B(x, NND_k(x)) holding at least one sample: like recall, but
  built on real balls only, so it is not fooled by generated outliers.

Identical distributions give precision, recall and coverage a little below 1 (a fresh point
falls outside every k-NN ball now and then) and density about 1; disjoint supports give 0.
"""

from __future__ import annotations

import torch


def _as_features(x) -> torch.Tensor:
    x = torch.as_tensor(x).double()
    if x.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got {tuple(x.shape)}")
    return x


def knn_radii(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """(N, D) -> (N,): distance from each point to its k-th nearest other point of the same set."""
    x = _as_features(x)
    if len(x) <= k:
        raise ValueError(f"need more than k={k} points to find k-th neighbours, got {len(x)}")
    d = torch.cdist(x, x)  # (N, N); the diagonal (0, the point itself) is the 1st "neighbour"
    return d.kthvalue(k + 1, dim=1).values


def precision_recall(real, fake, k: int = 5) -> dict[str, float]:
    """Improved precision and recall of ``fake`` (M, D) against ``real`` (N, D)."""
    x, y = _as_features(real), _as_features(fake)
    rx, ry = knn_radii(x, k), knn_radii(y, k)  # (N,), (M,)
    d = torch.cdist(y, x)  # (M, N)
    precision = (d <= rx[None, :]).any(dim=1).double().mean()  # sample j in some real ball
    recall = (d <= ry[:, None]).any(dim=0).double().mean()  # real i in some sample ball
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real, fake, k: int = 5) -> dict[str, float]:
    """Density and coverage of ``fake`` (M, D) against ``real`` (N, D)."""
    x, y = _as_features(real), _as_features(fake)
    rx = knn_radii(x, k)  # (N,)
    inside = torch.cdist(y, x) <= rx[None, :]  # (M, N): sample j in real ball i
    density = inside.double().sum() / (k * len(y))
    coverage = inside.any(dim=0).double().mean()
    return {"density": float(density), "coverage": float(coverage)}


def prdc(real, fake, k: int = 5) -> dict[str, float]:
    """All four: precision, recall, density, coverage."""
    return {**precision_recall(real, fake, k), **density_coverage(real, fake, k)}
