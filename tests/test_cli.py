"""The one command-line tool: every subcommand explains itself and works on the embedded data."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from coursekit.cli import build_parser, main

SUBCOMMANDS = [[], ["data"], ["data", "list"], ["data", "show"], ["data", "fetch"], ["data", "build"], ["data", "info"], ["data", "export"], ["release"], ["check"], ["submit"], ["grade"], ["reference"], ["demo"], ["env"], ["export"], ["export", "gradescope"]]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "coursekit")
def test_help(words, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*words, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: coursekit" in out and len(out.splitlines()) > 3
    if words:  # every subcommand describes itself: a paragraph between the usage and the options
        description = out.split("\n\n")[1]
        assert not description.lstrip().startswith(("positional arguments", "options")), out


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "coursekit.cli", "--help"], capture_output=True, text=True, check=True)
    assert "data" in out.stdout and "release" in out.stdout and "check" in out.stdout


def test_data_show_sprites_makes_a_picture(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", "sprites", "-o", str(out), "-n", "36"]) == 0
    img = Image.open(out)
    assert img.size[0] > 200 and img.size[1] > 200
    colours = len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0))
    assert colours > 50  # colourful icons, not a blank or grey page
    assert main(["data", "show", "sprites", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pass --force to overwrite it" in err and "force=True" not in err  # the CLI's flag, not the library's argument


def test_data_list_info_env(capsys):
    from coursekit.data import course_dataset_spec

    assert main(["data", "list"]) == 0  # whatever data set the course names (the sprites, or the one it switched to)
    assert f"course data set (notebooks and graders): {course_dataset_spec()}  (" in capsys.readouterr().out
    assert main(["data", "info", "sprites"]) == 0
    out = capsys.readouterr().out
    assert "20x20" in out and "palette colours" in out and "classes:" in out
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "device" in out


def test_errors_are_one_clear_line(capsys, tmp_path):
    assert main(["data", "info", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err
    assert "missing.npz" in err and "Traceback" not in err
