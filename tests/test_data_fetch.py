"""`coursekit data fetch pokemon`, tested against a local HTTP server serving fixture files."""

import contextlib
import functools
import http.server
import threading

import numpy as np
import pytest

from coursekit.cli import main
from coursekit.data import DataError, PaletteDataset, load_dataset
from coursekit.data.fetch import FetchError, fetch_pokemon
from coursekit.data.files import write_course_files


@contextlib.contextmanager
def serve(folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/course/"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def site(tmp_path):
    """A site laid out like the course's: 792 images of 20x20, 167 colours."""
    rng = np.random.default_rng(0)
    ds = PaletteDataset("pokemon", rng.integers(0, 167, (792, 20, 20)).astype(np.uint8), rng.integers(0, 256, (167, 3)).astype(np.uint8))
    write_course_files(ds, tmp_path / "www" / "course")
    return tmp_path / "www", ds


def test_fetch_downloads_checks_and_stores(site, tmp_path):
    www, ds = site
    with serve(www) as url:
        dest = fetch_pokemon(dest=tmp_path / "store", url=url, log=lambda m: None)
    got = load_dataset("pokemon", root=dest)
    np.testing.assert_array_equal(got.indices, ds.indices)
    np.testing.assert_array_equal(got.palette, ds.palette)
    assert (dest / "SOURCE.json").is_file()


def test_fetch_keeps_existing_copy_without_force(site, tmp_path):
    www, _ = site
    dest = tmp_path / "store"
    dest.mkdir()
    (dest / "pixel_color.txt").write_text("mine\n")
    with serve(www) as url:
        with pytest.raises(FileExistsError, match="pass --force"):
            fetch_pokemon(dest=dest, url=url, log=lambda m: None)
        assert (dest / "pixel_color.txt").read_text() == "mine\n"
        fetch_pokemon(dest=dest, url=url, force=True, log=lambda m: None)
    assert load_dataset("pokemon", root=dest).indices.shape == (792, 20, 20)


def test_fetch_refuses_corrupt_download_and_stores_nothing(site, tmp_path):
    www, _ = site
    p = www / "course" / "pixel_color.txt"
    lines = p.read_text().splitlines()
    lines[10] = lines[10] + " 200"
    p.write_text("\n".join(lines) + "\n")
    with serve(www) as url:
        with pytest.raises(DataError, match=r"not in the course's format: .*pixel_color.txt, line 11: line too long: 401 values"):
            fetch_pokemon(dest=tmp_path / "store", url=url, log=lambda m: None)
    assert not (tmp_path / "store" / "pixel_color.txt").exists()


def test_fetch_missing_file_and_no_network(site, tmp_path, capsys):
    www, _ = site
    (www / "course" / "colormap.txt").unlink()
    with serve(www) as url:
        with pytest.raises(FetchError, match="colormap.txt: the server answered 404"):
            fetch_pokemon(dest=tmp_path / "store", url=url, log=lambda m: None)
    # nothing listens on this port: the same message a machine without network gets
    rc = main(["data", "fetch", "pokemon", "--url", "http://127.0.0.1:9/x/", "--dest", str(tmp_path / "s2"), "--timeout", "5"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot download" in err and "may have no network" in err and "--root FOLDER" in err
