"""FID and KID on evaluator features, computed by torchmetrics.

torchmetrics' ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` accept any
``nn.Module`` as ``feature=``: ``update(imgs, real)`` calls ``feature(imgs)``, which must return
(N, D); the module's ``num_features`` attribute gives D (otherwise torchmetrics probes it with a
random image). With a custom module, ``normalize`` only says which dtype that probe uses, and
the images are passed to the module untouched, so any input the module accepts works.

Two entry points per metric:

- ``fid(real, fake, extractor)`` / ``kid(...)``: images in, through a feature module
  (e.g. ``PaletteFeatures(evaluator, palette)`` taking palette indices (N, H, W));
- ``fid_from_features(real_f, fake_f)`` / ``kid_from_features(...)``: features already computed
  (N, D), passed through an identity module so that several metrics share one forward pass.

FID fits a Gaussian to each feature set: ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)).
It is biased upwards at small N (the covariance estimate is noisy), so only compare FIDs
computed with the same numbers of samples. KID is the unbiased squared MMD with the cubic
polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets; it is unbiased
(a set against itself averages 0 and can be slightly negative).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


class _Precomputed(nn.Module):
    """Identity 'feature extractor': update() is given features (N, D) and passes them on."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _batches(x: torch.Tensor, batch_size: int):
    for i in range(0, len(x), batch_size):
        yield x[i : i + batch_size]


@torch.no_grad()
def fid(real, fake, extractor: nn.Module, batch_size: int = 512, device: str | torch.device = "cpu") -> float:
    """FID between two image sets, features by ``extractor`` (module: images (B, ...) -> (B, D))."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    # no set_dtype(float64): it would cast the caller's extractor too; the states are float64 anyway
    metric = FrechetInceptionDistance(feature=extractor, normalize=True).to(device)
    for xb in _batches(torch.as_tensor(real), batch_size):
        metric.update(xb.to(device), real=True)
    for xb in _batches(torch.as_tensor(fake), batch_size):
        metric.update(xb.to(device), real=False)
    return float(metric.compute())


def fid_from_features(real_f: torch.Tensor, fake_f: torch.Tensor) -> float:
    """FID between feature sets (N_r, D) and (N_f, D); needs N >= 2 on each side."""
    real_f, fake_f = torch.as_tensor(real_f).double(), torch.as_tensor(fake_f).double()
    return max(0.0, fid(real_f, fake_f, _Precomputed(real_f.shape[1])))  # tiny negative round-off -> 0


@torch.no_grad()
def kid(real, fake, extractor: nn.Module, generator: torch.Generator | None = None, subsets: int = 50,
        subset_size: int = 1000, batch_size: int = 512, device: str | torch.device = "cpu") -> tuple[float, float]:
    """KID (mean, std over ``subsets`` random subsets) between two image sets.

    ``subset_size`` is capped at the smaller set's size (so with two sets of the same size the
    std is 0: the spread that matters is over seeds, see ``spread_over_seeds``). torchmetrics draws the subsets with
    the global torch RNG; it runs here inside a forked RNG seeded from ``generator``, so the
    result depends on ``generator`` only and the caller's global random state is untouched.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = torch.as_tensor(real), torch.as_tensor(fake)
    size = int(min(subset_size, len(real), len(fake)))
    if size == len(real) == len(fake):
        subsets = 1  # every "subset" would be both whole sets: one computation, std 0
    with warnings.catch_warnings():  # "will save all extracted features": a few thousand (N, D) rows here
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=extractor, subsets=subsets, subset_size=size, normalize=True).to(device)
    for xb in _batches(real, batch_size):
        metric.update(xb.to(device), real=True)
    for xb in _batches(fake, batch_size):
        metric.update(xb.to(device), real=False)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if generator is not None else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def kid_from_features(real_f: torch.Tensor, fake_f: torch.Tensor, generator: torch.Generator | None = None,
                      subsets: int = 50, subset_size: int = 1000) -> tuple[float, float]:
    """KID (mean, std) between feature sets (N_r, D) and (N_f, D)."""
    real_f, fake_f = torch.as_tensor(real_f).double(), torch.as_tensor(fake_f).double()
    return kid(real_f, fake_f, _Precomputed(real_f.shape[1]), generator=generator, subsets=subsets, subset_size=subset_size)
