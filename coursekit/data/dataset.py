"""The one shape every data set of the kit takes: palette images.

A data set is a stack of images whose pixels are indices into a colour palette, as in
the course's Pokémon set (20x20 sprites, 167 colours). Each pixel is a 1-of-K choice,
which is what the PixelRNN predicts and the VAE's decoder reconstructs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError

SPLITS = ("train", "test", "all")


@dataclass(frozen=True, eq=False)
class PaletteDataset:
    """Palette images with an optional label per image and a fixed, seeded split.

    indices:     (N, H, W) uint8, each entry an index into ``palette``
    palette:     (K, 3) uint8 RGB colours, K <= 256
    labels:      (N,) int64 class of each image, or None
    label_names: name of each class (length = number of classes), or None
    split_seed / test_fraction: define the train/test split; the same values always give
                 the same split (see ``split_indices``)
    """

    name: str
    indices: np.ndarray  # (N, H, W) uint8
    palette: np.ndarray  # (K, 3) uint8
    labels: np.ndarray | None = None  # (N,) int64
    label_names: tuple[str, ...] | None = None
    split_seed: int = 0  # seed of the train/test permutation
    test_fraction: float = 0.1  # share of images held out for testing
    source: str = ""  # where the images came from, for messages and provenance
    heldout_of: str = ""  # set on a public copy: the fingerprint of the full data set whose held-out images were left out
    _split_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = self.source or self.name
        idx, pal = self.indices, self.palette
        if not isinstance(idx, np.ndarray) or idx.ndim != 3:
            raise DataError(f"{where}: indices must be an array of shape (N, H, W), got {getattr(idx, 'shape', type(idx))}")
        if idx.dtype != np.uint8:
            raise DataError(f"{where}: indices must be uint8, got {idx.dtype}")
        if not isinstance(pal, np.ndarray) or pal.ndim != 2 or pal.shape[1] != 3 or pal.dtype != np.uint8:
            raise DataError(f"{where}: palette must be a uint8 array of shape (K, 3), got {getattr(pal, 'shape', None)} {getattr(pal, 'dtype', None)}")
        if len(idx) == 0:
            raise DataError(f"{where}: the data set holds no images")
        if len(pal) == 0:
            raise DataError(f"{where}: the palette holds no colours")
        top = int(idx.max())
        if top >= len(pal):
            n, r, c = np.argwhere(idx >= len(pal))[0]
            raise DataError(f"{where}: image {n} pixel (row {r}, col {c}) has colour index {idx[n, r, c]}, past the palette's {len(pal)} colours")
        if self.labels is not None:
            lab = self.labels
            if lab.shape != (len(idx),):
                raise DataError(f"{where}: labels must have shape ({len(idx)},), got {lab.shape}")
            if self.label_names is None:
                raise DataError(f"{where}: labels come without label_names")
            if lab.min() < 0 or lab.max() >= len(self.label_names):
                raise DataError(f"{where}: labels must lie in 0..{len(self.label_names) - 1}, got {lab.min()}..{lab.max()}")
        if not 0.0 < self.test_fraction < 1.0:
            raise DataError(f"{where}: test_fraction must lie strictly between 0 and 1, got {self.test_fraction}")

    # --- sizes -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    @property
    def num_colors(self) -> int:
        """K, the number of palette colours (the size of each 1-of-K pixel)."""
        return len(self.palette)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W)."""
        return tuple(self.indices.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return 0 if self.label_names is None else len(self.label_names)

    # --- split -------------------------------------------------------------------------
    def split_indices(self, which: str) -> np.ndarray:
        """Positions of the images in split ``which`` ('train', 'test' or 'all'), sorted.

        The split is a permutation drawn from ``numpy.random.default_rng(split_seed)``;
        the last ``ceil(test_fraction * N)`` positions of it are the test set.
        """
        if which not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {which!r}")
        if which == "all":
            return np.arange(len(self))
        if not self._split_cache:
            n = len(self)
            perm = np.random.default_rng(self.split_seed).permutation(n)
            n_test = max(1, int(np.ceil(self.test_fraction * n)))
            self._split_cache["test"] = np.sort(perm[n - n_test:])
            self._split_cache["train"] = np.sort(perm[: n - n_test])
        return self._split_cache[which]

    def subset(self, which: str) -> "PaletteDataset":
        """The images of one split as a data set of their own (same palette and label names)."""
        pos = self.split_indices(which)
        return PaletteDataset(
            name=f"{self.name}[{which}]",
            indices=self.indices[pos],
            palette=self.palette,
            labels=None if self.labels is None else self.labels[pos],
            label_names=self.label_names,
            split_seed=self.split_seed,
            test_fraction=self.test_fraction,
            source=self.source,
        )

    # --- conversions -------------------------------------------------------------------
    def rgb(self, which: str = "all"):
        """RGB float tensor (N, 3, H, W) in [0, 1] of the images in split ``which``."""
        from .convert import indices_to_rgb

        return indices_to_rgb(self.indices[self.split_indices(which)], self.palette)

    def sequences(self, which: str = "all"):
        """Raster sequences, a long tensor (N, H*W): row by row, left to right."""
        from .convert import to_sequence

        return to_sequence(self.indices[self.split_indices(which)])

    def tensors(self, which: str = "all"):
        """(indices, labels) of split ``which`` as torch tensors: (N, H, W) long and (N,) long or None."""
        import torch

        pos = self.split_indices(which)
        x = torch.from_numpy(self.indices[pos].astype(np.int64))
        y = None if self.labels is None else torch.from_numpy(self.labels[pos].astype(np.int64))
        return x, y

    def describe(self) -> str:
        """A few lines a person can read: size, colours, classes, split."""
        n_train, n_test = len(self.split_indices("train")), len(self.split_indices("test"))
        h, w = self.image_shape
        lines = [
            f"{self.name}: {len(self)} images of {h}x{w} pixels, {self.num_colors} palette colours",
            f"  split (seed {self.split_seed}): {n_train} train, {n_test} test",
        ]
        if self.heldout_of:
            lines.append("  this is the students' copy: the graders' held-out images are not in it, and its test split "
                         "is carved from the training images")
        if self.label_names is not None:
            counts = np.bincount(self.labels, minlength=self.num_classes)
            lines.append("  classes: " + ", ".join(f"{n} ({c})" for n, c in zip(self.label_names, counts)))
        if self.source:
            lines.append(f"  source: {self.source}")
        return "\n".join(lines)
