"""The embedded default data set: what the issue promised, loadable without its source."""

import numpy as np

from coursekit.data import load_dataset


def test_sprites_shape_palette_labels():
    ds = load_dataset("sprites")
    assert 1000 <= len(ds) <= 4000
    assert ds.image_shape == (20, 20) and ds.indices.dtype == np.uint8
    assert 150 <= ds.num_colors <= 200 and len(np.unique(ds.indices)) == ds.num_colors
    assert ds.num_classes >= 5 and np.bincount(ds.labels).min() >= 50
    assert {"Smileys & Emotion", "Animals & Nature", "Food & Drink", "Objects"} <= set(ds.label_names)


def test_sprites_are_colourful_icons_on_white():
    ds = load_dataset("sprites")
    rgb = ds.palette[ds.indices].astype(int)  # (N, 20, 20, 3)
    corners = rgb[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners.min(-1) >= 235).mean() > 0.8  # rendered on white
    centre = rgb[:, 5:15, 5:15]
    saturation = centre.max(-1) - centre.min(-1)
    assert (saturation.mean((1, 2)) > 40).mean() > 0.6  # most icons are colourful
    assert len(np.unique(ds.indices.reshape(len(ds), -1), axis=0)) > 0.97 * len(ds)  # few duplicates
