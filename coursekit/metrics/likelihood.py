"""Likelihoods in one unit, bits per pixel, so the three assignments' numbers compare.

Convention (used everywhere in the kit): a palette image has H*W pixels and each pixel is ONE
categorical choice among the K palette colours (not three RGB sub-pixels). A model's negative
log-likelihood of an image in nats, divided by (H*W * ln 2), is its bits per pixel (bpp):

    bpp = NLL_nats_per_image / (H * W * ln 2)

- PixelRNN: the exact held-out NLL (sum of the per-pixel cross-entropies) -> bpp.
- VAE: the negative ELBO (reconstruction cross-entropy over the K colours + KL) is an upper
  bound on the NLL, so its bpp is an upper bound on the VAE's true bpp; same formula.
- A model that knows nothing (uniform over K colours) scores log2(K) bpp: 7.38 for 167 colours.

Averages over images are of bpp per image (equivalently, total nats / (N * H * W * ln 2)).
"""

from __future__ import annotations

import math

LN2 = math.log(2.0)


def bits_per_pixel(nll_nats_total: float, num_pixels: int) -> float:
    """Total NLL in nats over ``num_pixels`` pixels -> bits per pixel.

    For a batch: ``bits_per_pixel(sum_of_nll_over_images, N * H * W)``.
    """
    if num_pixels <= 0:
        raise ValueError(f"num_pixels must be positive, got {num_pixels}")
    return float(nll_nats_total) / (num_pixels * LN2)


def nats_per_image_to_bpp(nll_nats_per_image: float, height: int, width: int) -> float:
    """Mean NLL per image (nats) of H x W images -> bits per pixel."""
    return bits_per_pixel(nll_nats_per_image, height * width)


def nats_per_pixel_to_bpp(nll_nats_per_pixel: float) -> float:
    """Mean NLL per pixel (nats), e.g. a cross-entropy averaged over pixels -> bits per pixel."""
    return float(nll_nats_per_pixel) / LN2


def negative_elbo_to_bpp(neg_elbo_nats_per_image: float, height: int, width: int) -> float:
    """A VAE's negative ELBO (nats per image, reconstruction + KL) -> bits per pixel (an upper bound)."""
    return nats_per_image_to_bpp(neg_elbo_nats_per_image, height, width)


def colour_frequency_bpp(train, test, num_colors: int) -> float:
    """Held-out bits per pixel of the training pixels' colour frequencies (add-one smoothed): the model that
    ignores every other pixel, a floor any real model's threshold must beat.

    train, test: integer tensors of colour indices, any shape (images or raster sequences).
    """
    import torch

    freq = torch.bincount(torch.as_tensor(train).flatten(), minlength=num_colors).double() + 1
    return float(-(freq / freq.sum()).log()[torch.as_tensor(test).flatten()].mean() / LN2)


def uniform_bpp(num_colors: int) -> float:
    """Bits per pixel of the uniform model over ``num_colors`` colours: log2(K), the baseline to beat."""
    return math.log2(num_colors)
