"""Degraded image sets that people rank below real data: the baselines a sample-quality threshold must reject.

Each function returns palette indices (M, H, W) long, drawn with an explicit ``torch.Generator``:

- ``colour_noise``: every pixel an independent draw from the training split's colour frequencies (the
  right colours, no structure: what an untrained or broken generator's samples look like);
- ``blurred``: real images blurred in RGB (a 3x3 box, ``passes`` times) and mapped back to the nearest
  palette colour (shapes kept, edges and detail lost: a VAE's over-smooth samples);
- ``salt_and_pepper``: real images with a share of their pixels replaced by random palette colours;
- ``collapsed``: ``distinct`` images repeated to fill M (mode collapse; ``collapsed_5``: five images).

``degraded_baselines`` scores them all with ``evaluate_samples`` at the graders' sample count, so that
thresholds derived from reference runs (``autograder/*/make_expected.py``) can be checked against them.
"""

from __future__ import annotations

import torch

BASELINES = {  # name: what a TA reads in expected.json
    "colour_noise": "every pixel drawn from the training colour frequencies",
    "blurred": "real training images, one 3x3 box blur in RGB, nearest palette colour",
    "salt_and_pepper": "real training images, 30% of pixels random palette colours",
    "collapsed": "one training image repeated",
    "collapsed_5": "five training images repeated",
}


def _pick(images: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
    """``m`` images drawn from ``images`` (N, H, W): without repeats where N allows, cycling otherwise."""
    perm = torch.randperm(len(images), generator=generator)
    reps = -(-m // len(images))
    return images[perm.repeat(reps)[:m]]


def colour_frequencies(images: torch.Tensor, num_colors: int) -> torch.Tensor:
    """Share of each palette colour among the pixels of ``images`` (N, H, W): (K,) float64, sums to 1."""
    counts = torch.bincount(torch.as_tensor(images).long().flatten(), minlength=num_colors).double()
    return counts / counts.sum()


def colour_noise(train: torch.Tensor, num_colors: int, m: int, generator: torch.Generator) -> torch.Tensor:
    """(m, H, W): every pixel drawn independently from the colour frequencies of ``train`` (N, H, W)."""
    p = colour_frequencies(train, num_colors)
    h, w = train.shape[1:]
    return torch.multinomial(p, m * h * w, replacement=True, generator=generator).view(m, h, w)


def nearest_palette(rgb: torch.Tensor, palette) -> torch.Tensor:
    """RGB (N, 3, H, W) in [0, 1] -> palette indices (N, H, W) of the nearest colour (Euclidean in RGB)."""
    pal = torch.as_tensor(palette).float() / 255.0  # (K, 3)
    flat = rgb.movedim(1, -1).reshape(-1, 3)  # (N*H*W, 3)
    idx = torch.cat([torch.cdist(flat[i : i + 65536], pal).argmin(1) for i in range(0, len(flat), 65536)])
    return idx.view(rgb.shape[0], *rgb.shape[2:])


def blurred(images: torch.Tensor, palette, passes: int = 1) -> torch.Tensor:
    """``images`` (N, H, W) blurred by a 3x3 box filter (edge pixels replicated) ``passes`` times in RGB, then
    mapped to the nearest palette colour."""
    from ..data.convert import indices_to_rgb

    rgb = indices_to_rgb(images, palette)  # (N, 3, H, W)
    kernel = torch.full((3, 1, 3, 3), 1.0 / 9.0)
    for _ in range(passes):
        rgb = torch.nn.functional.conv2d(torch.nn.functional.pad(rgb, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    return nearest_palette(rgb, palette)


def collapsed(images: torch.Tensor, m: int, generator: torch.Generator, distinct: int = 1) -> torch.Tensor:
    """(m, H, W): ``distinct`` random images of ``images`` repeated in turn."""
    chosen = _pick(images, distinct, generator)
    return chosen[torch.arange(m) % distinct].clone()


def salt_and_pepper(images: torch.Tensor, num_colors: int, share: float, generator: torch.Generator) -> torch.Tensor:
    """``images`` (N, H, W) with about ``share`` of their pixels replaced by uniformly random palette colours."""
    images = torch.as_tensor(images).long()
    hit = torch.rand(images.shape, generator=generator) < share
    noise = torch.randint(0, num_colors, images.shape, generator=generator)
    return torch.where(hit, noise, images)


def degraded_sets(dataset, m: int, generator: torch.Generator, source: str = "train", blur_passes: int = 1,
                  salt_share: float = 0.3) -> dict[str, torch.Tensor]:
    """The degraded baselines of ``BASELINES``, ``m`` images each, made from ``dataset``'s ``source`` split
    (blurred and salt-and-pepper images cycle through the split if it holds fewer than ``m``)."""
    train, _ = dataset.tensors("train")
    real, _ = dataset.tensors(source)
    return {
        "colour_noise": colour_noise(train, dataset.num_colors, m, generator),
        "blurred": blurred(_pick(real, m, generator), dataset.palette, passes=blur_passes),
        "salt_and_pepper": salt_and_pepper(_pick(real, m, generator), dataset.num_colors, salt_share, generator),
        "collapsed": collapsed(real, m, generator),
        "collapsed_5": collapsed(real, m, generator, distinct=5),
    }


def degraded_baselines(dataset, m: int, score, seed: int = 0, keys=("fid", "coverage")) -> dict:
    """{baseline: {metric: value}} for the sets of ``degraded_sets`` (``m`` images each, made from the training split),
    each scored by ``score(samples) -> dict``: pass the very function that scores a model's samples (the graders'
    ``sample_metrics``), so baselines and models meet the same evaluator, sample count and seed."""
    sets = degraded_sets(dataset, m, torch.Generator().manual_seed(seed))
    out = {}
    for name, x in sets.items():
        rep = score(x)
        out[name] = {k: round(float(rep[k]), 4) for k in keys}
    return out
