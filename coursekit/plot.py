"""Pictures of palette images: the grid every notebook and feedback page shows."""

from __future__ import annotations

import math
import os

import numpy as np


def grid_image(indices, palette, ncols: int | None = None, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """Palette images (N, H, W) -> one RGB mosaic (rows*(H+pad)+pad, cols*(W+pad)+pad, 3) uint8."""
    idx = np.asarray(indices.cpu() if hasattr(indices, "cpu") else indices).astype(np.int64)
    if idx.ndim == 2:
        idx = idx[None]
    pal = np.asarray(palette, dtype=np.uint8)
    n, h, w = idx.shape
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = max(1, math.ceil(n / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), pad_value, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = pal[idx[i]]
    return out


def show_grid(indices, palette, ncols: int | None = None, title: str | None = None, ax=None, scale: float = 0.6):
    """Draw palette images as a grid with matplotlib; returns the figure.

    indices: (N, H, W) integers into ``palette`` (K, 3) uint8; numpy or torch.
    """
    import matplotlib.pyplot as plt

    img = grid_image(indices, palette, ncols)
    if ax is None:
        n = 1 if np.ndim(indices) == 2 else len(indices)
        cols = ncols or max(1, math.ceil(math.sqrt(n)))
        rows = max(1, math.ceil(n / cols))
        fig, ax = plt.subplots(figsize=(max(2.0, cols * scale), max(2.0, rows * scale) + (0.4 if title else 0)))
    else:
        fig = ax.figure
    ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def save_grid(indices, palette, path: str | os.PathLike, ncols: int | None = None, title: str | None = None) -> None:
    """Write a grid of palette images to a PNG; needs no display and leaves pyplot alone."""
    from matplotlib.figure import Figure

    n = 1 if np.ndim(indices) == 2 else len(indices)
    cols = ncols or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(max(2.0, cols * 0.6), max(2.0, rows * 0.6) + (0.4 if title else 0)))
    show_grid(indices, palette, cols, title, ax=fig.add_subplot())
    fig.savefig(path, dpi=150, bbox_inches="tight")


def show_rows(rows: dict, palette, title: str | None = None, scale: float = 0.8):
    """Several labelled rows of palette images (e.g. originals / covered / completed); returns the figure.

    rows: {label: (N, H, W) indices}; every row has the same N.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(max(3.0, scale * len(next(iter(rows.values())))), 1.1 * scale * len(rows) + 0.4))
    axes = np.atleast_1d(axes)
    for ax, (label, idx) in zip(axes, rows.items()):
        ax.imshow(grid_image(idx, palette, ncols=len(idx)), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    return fig
