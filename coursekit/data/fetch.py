"""Downloading the course's Pokémon files: ``coursekit data fetch pokemon``.

The two files are fetched into a temporary folder, checked with the same reader that
loads them, and only then moved into place (``data/downloads/pokemon/`` in the kit, which is
where ``load_dataset("pokemon")`` reads them); an existing copy is kept unless ``force``.
``SOURCE.json`` beside them records where they came from: the URL, never the temporary folder.

Offline, a copy you already have is checked and stored the same way with a ``file://`` URL
(``coursekit data fetch pokemon --url file:///path/to/folder/``), or by copying the two files
into ``data/downloads/pokemon/`` by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .. import paths
from .errors import DataError
from .files import read_course_files
from .registry import COURSE_FILES

# The course's own site (ML 2016, "Pokémon creation"); COURSEKIT_POKEMON_URL overrides it.
POKEMON_URL = "https://speech.ee.ntu.edu.tw/~tlkagk/courses/ML_2016/Pokemon_creation/"


class FetchError(RuntimeError):
    """A download that could not be made; the message says why and what to do instead."""


def _download(url: str, dest: Path, timeout: float, store: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out)
    except urllib.error.HTTPError as e:
        raise FetchError(f"{url}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        if url.startswith("file:"):
            raise FetchError(f"{url}: cannot read it ({reason}); give the folder holding {' and '.join(COURSE_FILES)} "
                             "as --url file:///absolute/path/to/folder/") from None
        raise FetchError(
            f"{url}: cannot download ({reason}). This machine may have no network: download "
            f"{' and '.join(COURSE_FILES)} elsewhere, then either copy them into {store}/ (where the kit reads them) "
            f"or check and store them with `coursekit data fetch pokemon --url file:///path/to/their/folder/`."
        ) from None


def file_url(folder: str | os.PathLike) -> str:
    """The ``file://`` URL of a local folder, as ``--url`` takes it."""
    return Path(folder).resolve().as_uri() + "/"


def fetch_pokemon(
    dest: str | os.PathLike | None = None,
    url: str | None = None,
    force: bool = False,
    timeout: float = 30.0,
    log=print,
) -> Path:
    """Download, check and store the course's files; returns the folder holding them."""
    base = url or os.environ.get("COURSEKIT_POKEMON_URL") or POKEMON_URL
    if "://" not in base and Path(base).expanduser().is_dir():  # a local folder given as a path: its file:// URL
        base = file_url(Path(base).expanduser())
    if not base.endswith("/"):
        base += "/"
    dest = Path(dest) if dest is not None else paths.user_data_dir() / "pokemon"
    existing = [dest / f for f in COURSE_FILES if (dest / f).exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} already exists; pass --force to download again and overwrite it")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        tmp = Path(tmp)
        for name in COURSE_FILES:
            log(f"downloading {base}{name}")
            _download(base + name, tmp / name, timeout, dest)
        try:  # the data set's source is where the files came from, not this temporary folder
            ds = read_course_files(tmp / COURSE_FILES[0], tmp / COURSE_FILES[1], source=base)
        except DataError as e:
            raise DataError(f"the files downloaded from {base} are not in the course's format: {e}") from None
        sums = {n: hashlib.sha256((tmp / n).read_bytes()).hexdigest() for n in COURSE_FILES}
        (tmp / "SOURCE.json").write_text(json.dumps({"url": base, "sha256": sums}, indent=2) + "\n")
        for name in (*COURSE_FILES, "SOURCE.json"):
            os.replace(tmp / name, dest / name)
    log(f"stored in {dest}:\n{ds.describe()}")
    return dest
