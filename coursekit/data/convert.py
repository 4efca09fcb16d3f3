"""Conversions between palette indices and what models eat: RGB, one-hot and raster sequences."""

from __future__ import annotations

import numpy as np
import torch


def indices_to_rgb(indices, palette) -> torch.Tensor:
    """Palette indices (..., H, W) -> RGB floats (..., 3, H, W) in [0, 1].

    ``indices`` may be a numpy array or a tensor of any integer type; ``palette`` is (K, 3)
    uint8 RGB (numpy or tensor).
    """
    idx = torch.as_tensor(np.asarray(indices) if not torch.is_tensor(indices) else indices).long()
    pal = torch.as_tensor(np.asarray(palette) if not torch.is_tensor(palette) else palette).to(torch.float32) / 255.0
    rgb = pal.to(idx.device)[idx]  # (..., H, W, 3)
    return rgb.movedim(-1, -3).contiguous()  # (..., 3, H, W)


def one_hot(indices, num_colors: int) -> torch.Tensor:
    """1-of-K encoding: integer indices (...) -> float (..., K), a single 1 per pixel."""
    idx = torch.as_tensor(indices).long()
    return torch.nn.functional.one_hot(idx, num_colors).to(torch.float32)


def to_sequence(indices) -> torch.Tensor:
    """Images (N, H, W) -> raster sequences (N, H*W): row by row, left to right (row-major)."""
    idx = torch.as_tensor(np.asarray(indices) if not torch.is_tensor(indices) else indices).long()
    return idx.reshape(*idx.shape[:-2], idx.shape[-2] * idx.shape[-1])


def from_sequence(seq, height: int, width: int) -> torch.Tensor:
    """Raster sequences (N, H*W) -> images (N, H, W); the inverse of ``to_sequence``."""
    seq = torch.as_tensor(seq).long()
    if seq.shape[-1] != height * width:
        raise ValueError(f"a sequence of length {seq.shape[-1]} is not a {height}x{width} image")
    return seq.reshape(*seq.shape[:-1], height, width)
