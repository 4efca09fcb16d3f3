"""The course's text format: it reads what the course ships, and every bad input is named."""

import numpy as np
import pytest

from coursekit.data import DataError, load_dataset
from coursekit.data.files import read_colormap, read_course_files, read_pixels, write_course_files


def test_reads_course_files(tiny_course_files):
    folder, idx, pal = tiny_course_files
    ds = load_dataset("pokemon", root=folder)
    assert ds.indices.shape == (6, 4, 4) and ds.indices.dtype == np.uint8
    np.testing.assert_array_equal(ds.indices, idx)
    np.testing.assert_array_equal(ds.palette, pal)
    assert ds.labels is None


def test_course_shaped_files_round_trip(tmp_path):
    """792 images of 400 values in 0..166 and 167 colours, as the course's files are."""
    rng = np.random.default_rng(1)
    from coursekit.data import PaletteDataset

    ds = PaletteDataset("pokemon", rng.integers(0, 167, (792, 20, 20)).astype(np.uint8), rng.integers(0, 256, (167, 3)).astype(np.uint8))
    pix, cmap = write_course_files(ds, tmp_path)
    lines = pix.read_text().splitlines()
    assert len(lines) == 792 and all(len(line.split()) == 400 for line in lines)
    back = load_dataset(tmp_path)  # a folder path works as well as root=
    np.testing.assert_array_equal(back.indices, ds.indices)
    np.testing.assert_array_equal(back.palette, ds.palette)
    assert back.image_shape == (20, 20) and back.num_colors == 167


@pytest.mark.parametrize(
    "line, message",
    [
        ("1 2 3", "line 2: line too short: 3 values, expected 16"),
        (" ".join(["1"] * 17), "line 2: line too long: 17 values"),
        (" ".join(["1"] * 15 + ["5"]), "line 2, value 16: colour index 5 is past the palette (valid: 0..4)"),
        (" ".join(["1"] * 15 + ["x"]), "line 2: 'x' is not an integer"),
        (" ".join(["1"] * 15 + ["-1"]), "colour index -1 is past the palette"),
        (" ".join(["1"] * 15 + ["2.5"]), "'2.5' is not an integer"),
    ],
)
def test_bad_pixel_lines_name_file_and_line(tiny_course_files, line, message):
    folder, _, _ = tiny_course_files
    p = folder / "pixel_color.txt"
    lines = p.read_text().splitlines()
    lines[1] = line
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        load_dataset("pokemon", root=folder)
    assert str(p) in str(e.value) and message in str(e.value)


@pytest.mark.parametrize(
    "row, message",
    [
        ("1 2", "line 3: a colour is 'R G B' (3 integers), found 2 values"),
        ("1 2 3 4", "found 4 values"),
        ("1 2 256", "line 3: colour values must lie in 0..255, found 256"),
        ("0.5 0.1 0.2", "line 3: '0.5' is not an integer"),
    ],
)
def test_bad_colour_rows(tiny_course_files, row, message):
    folder, _, _ = tiny_course_files
    p = folder / "colormap.txt"
    lines = p.read_text().splitlines()
    lines[2] = row
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        read_colormap(p)
    assert str(p) in str(e.value) and message in str(e.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="missing pixel_color.txt, colormap.txt; run `coursekit data fetch pokemon`"):
        load_dataset("pokemon", root=tmp_path)
    (tmp_path / "colormap.txt").write_text("")
    with pytest.raises(DataError, match="holds no colours"):
        read_colormap(tmp_path / "colormap.txt")
    (tmp_path / "pixel_color.txt").write_text("\n\n")
    with pytest.raises(DataError, match="holds no images"):
        read_pixels(tmp_path / "pixel_color.txt", 5)
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not a text file"):
        read_pixels(tmp_path / "bin.txt", 5)


def test_non_square_line_needs_shape(tmp_path):
    (tmp_path / "p.txt").write_text("0 1 0 1 0 1\n")
    with pytest.raises(DataError, match="6 values is not a square image"):
        read_pixels(tmp_path / "p.txt", 2)
    assert read_pixels(tmp_path / "p.txt", 2, height=2, width=3).shape == (1, 2, 3)


def test_export_does_not_overwrite_without_force(tiny_course_files, tmp_path):
    folder, _, _ = tiny_course_files
    ds = read_course_files(folder / "pixel_color.txt", folder / "colormap.txt")
    before = (folder / "pixel_color.txt").read_text()
    with pytest.raises(FileExistsError, match="pass --force"):
        write_course_files(ds, folder)
    assert (folder / "pixel_color.txt").read_text() == before
    write_course_files(ds, folder, force=True)
