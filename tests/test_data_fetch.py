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
    assert rc == 1 and "cannot download" in err and "may have no network" in err
    # what to do offline names commands that exist and the folder the kit reads, not an option the staff commands lack
    assert f"copy them into {tmp_path / 's2'}/ (where the kit reads them)" in err and "--url file:///" in err
    assert "--root" not in err


def test_the_default_store_is_where_the_loader_reads(monkeypatch, tmp_path, capsys):
    from coursekit import paths

    monkeypatch.delenv("COURSEKIT_DATA", raising=False)
    assert main(["data", "fetch", "pokemon", "--url", "http://127.0.0.1:9/x/", "--timeout", "5"]) == 1
    store = paths.user_data_dir() / "pokemon"
    assert f"copy them into {store}/" in capsys.readouterr().err
    if not (store / "pixel_color.txt").exists():  # the loader reads that same folder, and says so when it is empty
        with pytest.raises(DataError, match=rf"copy pixel_color.txt and colormap.txt into {store}/"):
            load_dataset("pokemon")


def test_a_local_copy_is_fetched_offline_with_a_file_url(site, tmp_path, capsys):
    """--url file:///FOLDER/ (or the folder's path) checks and stores a copy the TA has; the source recorded is that
    URL, never the temporary folder the files were checked in, and students never see the TA's paths."""
    from coursekit.data.fetch import file_url
    from coursekit.data.public import public_copy

    www, ds = site
    url = file_url(www / "course")
    assert url.startswith("file:///") and url.endswith("/course/")
    assert main(["data", "fetch", "pokemon", "--url", url, "--dest", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert f"source: {url}" in out and ".fetch-" not in out
    got = load_dataset("pokemon", root=tmp_path / "store")
    np.testing.assert_array_equal(got.indices, ds.indices)
    assert got.source == url and ".fetch-" not in got.source
    # what students get (the release's .npz, the sandbox's copy): no path of the TA's machine
    shared = public_copy(got).describe()
    assert str(www) not in shared and "a folder named 'course'" in shared
    # a folder's path works as well, and records its file:// URL
    assert main(["data", "fetch", "pokemon", "--url", str(www / "course"), "--dest", str(tmp_path / "s2")]) == 0
    assert load_dataset("pokemon", root=tmp_path / "s2").source == url
    # files changed by hand since: SOURCE.json no longer speaks for them, the folder is their source
    with open(tmp_path / "s2" / "colormap.txt", "a") as f:
        f.write("0 0 0\n")
    assert load_dataset("pokemon", root=tmp_path / "s2").source == str(tmp_path / "s2")
    # a file URL that does not hold the files
    assert main(["data", "fetch", "pokemon", "--url", file_url(tmp_path / "nothing"), "--dest", str(tmp_path / "s3")]) == 1
    assert "cannot read it" in capsys.readouterr().err


def test_the_students_copy_names_no_path_of_the_staffs_machine(tmp_path, monkeypatch):
    from coursekit import paths
    from coursekit.data.public import shareable_source

    inside = paths.kit_root() / "data" / "downloads" / "pokemon"
    assert shareable_source(str(inside)) == "data/downloads/pokemon"
    assert shareable_source(str(tmp_path / "ta" / "pokemon")) == "a copy of the files in a folder named 'pokemon'"
    assert shareable_source((tmp_path / "ta" / "pokemon").as_uri() + "/") == "a copy of the files in a folder named 'pokemon'"
    assert shareable_source("https://example.org/course/") == "https://example.org/course/"
    assert shareable_source("scikit-learn load_digits (UCI ML hand-written digits)").startswith("scikit-learn")
