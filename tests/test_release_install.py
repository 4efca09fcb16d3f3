"""The student release installs with a plain (not editable) pip install, outside the checkout, and works there.

As on Colab: a wheel of the release is installed into a fresh virtual environment, and from a folder
outside the checkout the data and the evaluator load from the installed package, and the public checks
and `coursekit submit` run. The fresh environment borrows the kit's installed dependencies (torch,
numpy...) through a path entry, not the kit's editable install, so nothing is downloaded and the only
coursekit it can import is the wheel's.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from coursekit import paths, release
from coursekit.data import course_dataset

pytestmark = pytest.mark.slow


def _run(cmd, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSEKIT_", "PYTHON"))}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a fresh venv with the release's wheel installed, the release folder, a folder outside the checkout)."""
    tmp = tmp_path_factory.mktemp("install")
    out = release.build_release(tmp / "release", log=lambda m: None)
    wheels = tmp / "wheels"
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(out)], cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = wheels.glob("coursekit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    course = course_dataset().name  # whatever data/course.json names (the sprites unless the course switched)
    assert f"coursekit/data/bundled/{course}.npz" in names, names
    assert f"coursekit/data/bundled/evaluators/evaluator_{course}.pt" in names, names
    assert "coursekit/metrics/figures/models_side_by_side.png" in names  # coursekit/metrics/README.md shows it
    venv = tmp / "venv"
    r = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    assert r.returncode == 0, r.stderr
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip())
    # the kit's dependencies, as a plain path entry after the venv's own packages: the kit's editable hook is a .pth
    # file there, which a path entry does not run, so `import coursekit` can only find the wheel's copy
    deps = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "zz_kit_dependencies.pth").write_text("\n".join(deps) + "\n")
    r = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)], cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return py, out, elsewhere


def test_installed_release_finds_its_data_and_evaluator(installed):
    py, out, elsewhere = installed
    code = (
        "import coursekit, coursekit.paths as p\n"
        "from coursekit.data import course_dataset\n"
        "from coursekit.metrics import course_evaluator\n"
        "ds = course_dataset()\n"
        "print(coursekit.__file__)\n"
        "print(p.data_dir())\n"
        "print(len(ds), bool(ds.heldout_of), course_evaluator().num_features)\n"
    )
    r = _run([str(py), "-c", code], cwd=elsewhere)
    assert r.returncode == 0, r.stderr[-3000:]
    module, data, summary = r.stdout.strip().splitlines()[-3:]
    venv = py.parent.parent
    assert Path(module).is_relative_to(venv) and Path(data).is_relative_to(venv), (module, data)
    n, heldout_of, features = summary.split()
    assert heldout_of == "True" and int(features) > 0  # the students' copy: training images only


def test_installed_release_runs_the_checks_and_submits(installed, tmp_path):
    py, out, elsewhere = installed
    coursekit = [str(py), "-m", "coursekit.cli"]
    r = _run([*coursekit, "--help"], cwd=elsewhere)
    assert r.returncode == 0 and "submit" in r.stdout and " grade " not in r.stdout
    r = _run([*coursekit, "grade", "x", "-o", "y"], cwd=elsewhere)
    assert r.returncode == 2 and "course-staff command" in r.stderr
    # the reference solution's public checks pass with the installed package (the solution comes from the checkout)
    solution = paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb"
    r = _run([*coursekit, "check", str(solution)], cwd=elsewhere)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "public checks passed" in r.stdout
    # a student's notebook from the release, name filled in, packed for submission
    import nbformat

    nb = nbformat.read(out / "assignments" / "pixelrnn" / "pixelrnn.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "student_name")
    cell.source = 'STUDENT_NAME = "Ada Lovelace"\nSTUDENT_ID = "s1234567"'
    mine = tmp_path / "pixelrnn.ipynb"
    nbformat.write(nb, mine)
    r = _run([*coursekit, "submit", str(mine), "-o", str(tmp_path / "hand-in")], cwd=elsewhere)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert zipfile.ZipFile(tmp_path / "hand-in" / "s1234567_Ada_Lovelace.zip").namelist() == ["pixelrnn/pixelrnn.ipynb"]


RUN_NOTEBOOK = r'''
import json, os, sys
import nbclient, nbformat
os.environ.pop("MPLBACKEND", None)  # the kernel draws inline, as in Jupyter
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
nbclient.NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=300,
                        resources={"metadata": {"path": sys.argv[2]}}).execute()
errors, pictures = [], 0
for i, cell in enumerate(nb.cells):
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            errors.append([i, o["ename"], o["evalue"][:200]])
        if "image/png" in o.get("data", {}):
            pictures += 1
print(json.dumps({"errors": errors, "pictures": pictures}))
'''


def test_installed_release_runs_a_students_notebook(installed, tmp_path):
    """The untouched student notebook, run top to bottom in a kernel of the fresh environment from a folder outside the
    checkout: it loads the data and shows pictures; the errors are the parts left for the student and what needs them."""
    import json

    py, out, elsewhere = installed
    nb = out / "assignments" / "pixelrnn" / "pixelrnn.ipynb"
    r = _run([str(py), "-c", RUN_NOTEBOOK, str(nb), str(elsewhere)], cwd=elsewhere)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ran = json.loads(r.stdout.strip().splitlines()[-1])
    assert ran["pictures"] >= 1, ran  # the data set's sprites, from the installed package
    # the first error is a part left for the student; later ones are cells needing what those parts make (a model, results)
    assert ran["errors"] and ran["errors"][0][1] == "NotImplementedError", ran["errors"]
    assert {e[1] for e in ran["errors"]} <= {"NotImplementedError", "NameError", "KeyError"}, ran["errors"]
