"""The kit's data sets: shapes, split, conversions, and the .npz file."""

import numpy as np
import pytest
import torch

from coursekit.data import DataError, PaletteDataset, from_sequence, indices_to_rgb, load_dataset, one_hot, to_sequence
from coursekit.data.files import load_npz, save_npz


def test_digits():
    ds = load_dataset("digits")
    assert ds.indices.shape == (1797, 8, 8) and ds.indices.dtype == np.uint8
    assert ds.palette.shape == (17, 3) and ds.palette.dtype == np.uint8
    assert ds.num_classes == 10 and set(np.unique(ds.labels)) == set(range(10))
    assert tuple(ds.palette[0]) == (255, 255, 255) and tuple(ds.palette[16]) == (0, 0, 0)


def test_split_is_fixed_disjoint_and_complete():
    a, b = load_dataset("digits"), load_dataset("digits")
    tr, te = a.split_indices("train"), a.split_indices("test")
    np.testing.assert_array_equal(te, b.split_indices("test"))
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(a)
    assert len(te) == int(np.ceil(0.1 * len(a)))
    # pinned: a numpy change to the permutation would silently move images between splits
    assert te[:5].tolist() == [1, 3, 7, 16, 29]
    other = load_dataset("digits", split_seed=1).split_indices("test")
    assert not np.array_equal(te, other)


def test_subset_and_tensors():
    ds = load_dataset("digits")
    test = ds.subset("test")
    assert len(test) == len(ds.split_indices("test"))
    x, y = ds.tensors("test")
    assert x.dtype == torch.long and x.shape == (len(test), 8, 8) and y.shape == (len(test),)
    np.testing.assert_array_equal(x.numpy(), test.indices)


def test_conversions():
    ds = load_dataset("digits")
    idx = torch.as_tensor(ds.indices[:3].astype(np.int64))
    rgb = indices_to_rgb(idx, ds.palette)
    assert rgb.shape == (3, 3, 8, 8) and rgb.dtype == torch.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    # a pixel of index k has the palette's colour k
    k = int(idx[0, 3, 4])
    np.testing.assert_allclose(rgb[0, :, 3, 4].numpy(), ds.palette[k] / 255.0, rtol=1e-6)
    oh = one_hot(idx, ds.num_colors)
    assert oh.shape == (3, 8, 8, 17) and torch.all(oh.sum(-1) == 1) and oh[0, 3, 4, k] == 1
    seq = to_sequence(idx)
    assert seq.shape == (3, 64) and seq[0, 3 * 8 + 4] == k  # row-major raster order
    assert torch.equal(from_sequence(seq, 8, 8), idx)
    assert torch.equal(ds.sequences("all")[:3], seq)
    assert ds.rgb("test").shape == (len(ds.split_indices("test")), 3, 8, 8)


def test_npz_round_trip_and_no_overwrite(tmp_path):
    ds = load_dataset("digits")
    p = save_npz(ds, tmp_path / "d.npz")
    back = load_npz(p)
    np.testing.assert_array_equal(back.indices, ds.indices)
    np.testing.assert_array_equal(back.labels, ds.labels)
    assert back.label_names == ds.label_names and back.name == "digits"
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="pass --force"):
        save_npz(ds, p)
    assert p.read_bytes() == before
    assert load_dataset(str(p)).num_classes == 10


def test_bad_npz_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz: not a readable .npz"):
        load_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "nopal.npz", indices=np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(DataError, match="nopal.npz: has no 'palette' array"):
        load_npz(tmp_path / "nopal.npz")
    np.savez(tmp_path / "past.npz", indices=np.full((2, 3, 3), 4, np.uint8), palette=np.zeros((4, 3), np.uint8))
    with pytest.raises(DataError, match=r"past.npz: .*image 0 pixel \(row 0, col 0\) has colour index 4, past the palette's 4 colours"):
        load_npz(tmp_path / "past.npz")
    np.savez(tmp_path / "obj.npz", indices=np.array([object()], dtype=object), palette=np.zeros((4, 3), np.uint8))
    with pytest.raises(DataError, match="obj.npz: not a readable"):
        load_npz(tmp_path / "obj.npz")  # pickled objects are refused, never unpickled
    with pytest.raises(DataError, match="nothing.npz: no such file"):
        load_dataset(str(tmp_path / "nothing.npz"))


def test_dataset_validation():
    pal = np.zeros((3, 3), np.uint8)
    with pytest.raises(DataError, match="must be uint8"):
        PaletteDataset("x", np.zeros((1, 2, 2), np.int64), pal)
    with pytest.raises(DataError, match="holds no images"):
        PaletteDataset("x", np.zeros((0, 2, 2), np.uint8), pal)
    with pytest.raises(DataError, match="labels come without label_names"):
        PaletteDataset("x", np.zeros((2, 2, 2), np.uint8), pal, labels=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="labels must lie in 0..0"):
        PaletteDataset("x", np.zeros((2, 2, 2), np.uint8), pal, labels=np.array([0, 1]), label_names=("a",))


def test_unknown_name():
    with pytest.raises(DataError, match="not a data set name"):
        load_dataset("no-such-set")
