"""`coursekit data build`: any folder of images becomes a palette data set."""

import numpy as np
import pytest
from PIL import Image

from coursekit.cli import main
from coursekit.data import DataError, load_dataset
from coursekit.data.build import BuildConfig, build_from_folder, fit_palette, quantize


def _draw(path, colour, size=(40, 30), mode="RGBA"):
    img = Image.new(mode, size, (0, 0, 0, 0) if mode == "RGBA" else (255, 255, 255))
    for x in range(size[0] // 4, 3 * size[0] // 4):
        for y in range(size[1] // 4, 3 * size[1] // 4):
            img.putpixel((x, y), colour + ((255,) if mode == "RGBA" else ()))
    img.save(path)


@pytest.fixture
def image_tree(tmp_path):
    for cls, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            _draw(tmp_path / "imgs" / cls / f"{i}.png", colour)
    return tmp_path / "imgs"


def test_build_from_class_folders(image_tree):
    ds = build_from_folder(image_tree, BuildConfig(size=8, colors=4))
    assert ds.indices.shape == (6, 8, 8) and ds.num_colors <= 4
    assert ds.label_names == ("blue", "red") and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    rgb = ds.palette[ds.indices]  # (N, 8, 8, 3)
    assert rgb[0, 0, 0].min() >= 235  # transparency became the (near-)white background
    assert rgb[3, 4, 4, 0] > 150 and rgb[3, 4, 4, 2] < 100  # a red image is red in the middle


def test_build_is_deterministic(image_tree):
    a = build_from_folder(image_tree, BuildConfig(size=8, colors=3))
    b = build_from_folder(image_tree, BuildConfig(size=8, colors=3))
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.palette, b.palette)


def test_kmeans_palette_and_quantise():
    rng = np.random.default_rng(0)
    centres = np.array([[10, 10, 10], [200, 30, 30], [30, 200, 30]])
    pix = (centres[rng.integers(0, 3, 3000)] + rng.integers(-5, 6, (3000, 3))).clip(0, 255).astype(np.uint8)
    pal = fit_palette(pix, 3)
    assert np.abs(pal.astype(int)[:, None] - centres[None]).sum(-1).min(0).max() <= 6
    q = quantize(pix.reshape(1, 100, 30, 3), pal)
    assert q.shape == (1, 100, 30) and q.max() < 3


def test_cli_build_writes_npz_and_refuses_overwrite(image_tree, tmp_path, capsys):
    out = tmp_path / "mine.npz"
    assert main(["data", "build", str(image_tree), "--size", "10", "--colors", "5", "-o", str(out)]) == 0
    ds = load_dataset(str(out))
    assert ds.image_shape == (10, 10) and ds.num_classes == 2
    before = out.read_bytes()
    assert main(["data", "build", str(image_tree), "--size", "10", "-o", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["data", "build", str(image_tree), "--format", "course", "--size", "10", "--colors", "5", "-o", str(tmp_path / "course")]) == 0
    assert load_dataset("pokemon", root=tmp_path / "course").indices.shape == (6, 10, 10)


def test_bad_folders(tmp_path, image_tree):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: holds no images"):
        build_from_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="not a folder"):
        build_from_folder(tmp_path / "nope")
    _draw(image_tree / "loose.png", (0, 200, 0))
    with pytest.raises(DataError, match="either all directly in the folder"):
        build_from_folder(image_tree)
    (image_tree / "loose.png").unlink()
    (image_tree / "red" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"broken.png: cannot be read as an image"):
        build_from_folder(image_tree)
