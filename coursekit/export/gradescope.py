"""A Gradescope autograder for one assignment: ``coursekit export gradescope -a ASSIGNMENT -o autograder.zip``.

The zip (``build_bundle``) holds, at its root:

- ``setup.sh`` and ``run_autograder`` (``scripts``): the two files Gradescope runs;
- ``kit/``: the course kit, enough to grade and nothing more: the ``coursekit`` package, ``pyproject.toml``,
  ``autograder/<assignment>/`` (the hidden graders), ``autograder/reference/`` (evaluator networks, copy
  thresholds), ``autograder/conftest.py`` and ``data/`` (the course data set, held-out images included: the graders
  need them; the sandbox never shows them to the student's code). No solutions, no tests, no other assignment;
- ``coursekit-bundle.json``: the ``BundleConfig`` it was built with.

``run`` is what ``run_autograder`` calls for each submission: it finds the notebook in ``ROOT/submission`` (a
notebook, or the zip ``coursekit submit`` writes, unpacked safely), grades it with the kit's engine in the bundle's
profile (smoke: Gradescope has no GPU) inside bubblewrap's sandbox where the container allows user namespaces,
and with the limits-only worker otherwise, which ``results.json`` then says; and writes
``ROOT/results/results.json`` in Gradescope's format (``reports.gradescope_results``). It never ends without a
``results.json``: a submission it cannot grade gets 0 with the reason, and an error of the kit itself gets a result
that says so.

The hybrid pattern for GPU work: the bundle gives students the smoke-profile checks when they submit; after the
deadline the instructor downloads Gradescope's export of the submissions and grades it on a GPU machine with
``coursekit grade EXPORT -o grades --profile full``, whose gradebook holds the final grades (README, "Gradescope").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .. import paths
from .scripts import RUN_AUTOGRADER, SETUP_SH

CONFIG_NAME = "coursekit-bundle.json"
KIT = "kit"
# what of the kit a bundle carries (besides autograder/<assignment> and the data), and what it leaves out of it
_KIT_FILES = ("pyproject.toml",)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info", "bundled", "downloads",
                                 "build_sprites.py", ".pytest_cache")
RESULTS = "results/results.json"


@dataclass
class BundleConfig:
    assignment: str
    profile: str = "smoke"  # the grading profile: Gradescope has no GPU, so the smoke profile's short runs and thresholds
    # Gradescope visibility of the tests whose rubric says details: false (their score and real message):
    # after_due_date | after_published | hidden | visible (then shown at once, with the message replaced)
    hidden_visibility: str = "after_due_date"
    output_format: str = "md"  # md | html (| text): how Gradescope renders the outputs
    leaderboard: bool = False  # send the graders' figures (held-out bits per pixel, FID) to Gradescope's leaderboard
    # Seconds the grading may run on the wall clock: below Gradescope's limit (10 minutes by default, up to 40 when
    # raised in the assignment's settings), leaving time to start Python and write the results.
    timeout: float = 480.0
    torch_index: str = "https://download.pytorch.org/whl/cpu"  # where setup.sh gets torch: PyPI's CPU builds
    torch_spec: str = ""  # what setup.sh installs from there; "" = the torch version of the machine that built the bundle

    def __post_init__(self):
        from ..grading.reports import GradescopeSettings

        if self.profile not in ("smoke", "full"):
            raise ValueError(f"profile must be smoke or full, not {self.profile!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        GradescopeSettings(self.hidden_visibility, self.output_format)  # checks both, with a clear message

    @classmethod
    def read(cls, path: Path) -> "BundleConfig":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a readable bundle configuration ({e})") from None
        known = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or "assignment" not in raw:
            raise ValueError(f"{path}: names no assignment")
        return cls(**{k: v for k, v in raw.items() if k in known})


def _default_torch_spec() -> str:
    import torch

    return f"torch=={torch.__version__.split('+')[0]}"


# --- building the zip ------------------------------------------------------------------------------------------
def _kit_files(assignment: str) -> dict[str, Path]:
    """{path in the zip: file} for the kit a bundle carries."""
    import coursekit

    from ..data.course import course_dataset_spec

    root = paths.kit_root()
    files: dict[str, Path] = {}

    def tree(src: Path, dest: str) -> None:
        if not src.is_dir():
            return
        for folder, dirs, names in os.walk(src):
            here = Path(folder)
            skip = _IGNORE(folder, dirs + names)
            dirs[:] = sorted(d for d in dirs if d not in skip)
            for n in sorted(names):
                if n not in skip and not (here / n).is_symlink():
                    files[f"{dest}/{(here / n).relative_to(src).as_posix()}"] = here / n

    package = Path(coursekit.__file__).resolve().parent
    tree(package, f"{KIT}/coursekit")
    for rel in _KIT_FILES:  # what pip needs to install the package: from beside it
        if (package.parent / rel).is_file():
            files[f"{KIT}/{rel}"] = package.parent / rel
    grader = paths.autograder_dir()
    for name in ("conftest.py", "README.md"):
        if (grader / name).is_file():
            files[f"{KIT}/autograder/{name}"] = grader / name
    tree(grader / assignment, f"{KIT}/autograder/{assignment}")
    tree(grader / "reference", f"{KIT}/autograder/reference")
    tree(root / "data", f"{KIT}/data")
    spec = course_dataset_spec()
    downloaded = paths.user_data_dir() / spec
    if "/" not in spec and downloaded.is_dir():  # a course data set the TA downloaded (pokemon): the graders need it
        tree(downloaded, f"{KIT}/data/downloads/{spec}")
    return files


def _readme(cfg: BundleConfig) -> str:
    return (f"# coursekit: the Gradescope autograder of {cfg.assignment}\n\nWritten by `coursekit export gradescope`: the "
            "course kit with the hidden graders of one assignment, for Gradescope's image only. Not for students.\n")


def build_bundle(cfg: BundleConfig, out: str | Path, force: bool = False) -> Path:
    """Write the Gradescope autograder zip of ``cfg.assignment`` to ``out``; an existing file is replaced only with
    ``force``. Refuses an assignment without graders, and reference outputs measured on another data set."""
    from ..grading.engine import check_reference_outputs, graded_assignments
    from ..grading.rubric import load_rubric

    out = Path(out)
    known = graded_assignments()
    if cfg.assignment not in known:
        raise ValueError(f"no graders for assignment {cfg.assignment!r} in {paths.autograder_dir()}; graded assignments: {known}")
    load_rubric(cfg.assignment)
    check_reference_outputs([cfg.assignment])
    if out.suffix.lower() != ".zip":
        raise ValueError(f"{out}: the autograder must be a .zip file (Gradescope uploads a zip)")
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to replace it")
    if not cfg.torch_spec:
        cfg = BundleConfig(**{**asdict(cfg), "torch_spec": _default_torch_spec()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
                info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
                info.external_attr = 0o100755 << 16  # executable, a regular file
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, text.format(**asdict(cfg)))
            z.writestr(CONFIG_NAME, json.dumps(asdict(cfg), indent=1) + "\n")
            z.writestr(f"{KIT}/README.md", _readme(cfg))
            for name, src in sorted(_kit_files(cfg.assignment).items()):
                z.write(src, name)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def unpack_bundle(zip_path: str | Path, dest: str | Path) -> Path:
    """Unpack an autograder zip as Gradescope does (into ``dest``, e.g. ``/autograder/source``), with the scripts
    executable; returns ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(dest)
        for info in z.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(dest / info.filename, mode)
    return dest


def lay_out_like_gradescope(zip_path: str | Path, root: str | Path, link_package: bool = False) -> Path:
    """A folder laid out as Gradescope's container is before a submission is graded (for tests and the benchmark):
    the zip unpacked in ``root/source``, ``run_autograder`` copied to ``root/run_autograder``, empty
    ``root/submission`` and ``root/results``. Installs nothing (``setup.sh`` is not run); returns ``root``.

    ``link_package``: for a run with this machine's Python (``COURSEKIT_PYTHON``), whose ``coursekit`` is installed
    from elsewhere: the bundle's copy of the package becomes a link to that installed one, so that the grader (which
    imports the package beside the kit) and the worker (which imports the installed one) run the same, bound, code.
    On Gradescope setup.sh installs the bundle's own copy, and both import it."""
    import coursekit

    root = Path(root)
    unpack_bundle(zip_path, root / "source")
    if link_package:
        shutil.rmtree(root / "source" / KIT / "coursekit")
        (root / "source" / KIT / "coursekit").symlink_to(Path(coursekit.__file__).resolve().parent, target_is_directory=True)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    for d in ("submission", "results"):
        (root / d).mkdir(parents=True, exist_ok=True)
    return root


# --- grading one submission in Gradescope's container ------------------------------------------------------------
def find_notebook(submission: Path, assignment: str, scratch: Path) -> tuple[Path | None, str]:
    """(notebook, problem): the student's notebook of ``assignment`` in Gradescope's submission folder: a notebook
    anywhere in it, or in a zip in it (``coursekit submit``'s ``<ID>_<Name>.zip``, unpacked safely into ``scratch``).
    Of several, the one named ``<assignment>.ipynb`` (nbgrader's ``<assignment>/<assignment>.ipynb`` first), then
    those whose metadata names the assignment; a lone notebook is taken whatever its name."""
    from ..grading.submissions import ZipRefused, claimed_assignment, safe_unzip

    if not submission.is_dir():
        return None, "no submission folder was found"
    found: list[Path] = []
    problems = []
    for p in sorted(submission.rglob("*")):
        if p.is_symlink() or not p.is_file() or "__MACOSX" in p.parts or ".ipynb_checkpoints" in p.parts or p.name.startswith("._"):
            continue
        if p.suffix.lower() == ".ipynb":
            found.append(p)
        elif p.suffix.lower() == ".zip":
            try:
                inner = safe_unzip(p, scratch)
            except ZipRefused as e:
                problems.append(str(e))
                continue
            found += sorted(q for q in inner.rglob("*.ipynb") if not q.is_symlink() and "__MACOSX" not in q.parts
                            and ".ipynb_checkpoints" not in q.parts and not q.name.startswith("._"))
    if not found:
        why = "; ".join(problems) or "no notebook (.ipynb) was found in your submission"
        return None, f"{why}: hand in your {assignment}.ipynb (or the zip `coursekit submit` writes)"
    if len(found) == 1:
        return found[0], ""
    named = [p for p in found if p.name.lower() == f"{assignment.lower()}.ipynb"]
    slot = [p for p in named if p.parent.name.lower() == assignment.lower()]
    for group in (slot, named, [p for p in found if claimed_assignment(p) == assignment]):
        if len(group) == 1:
            return group[0], ""
    shown = ", ".join(p.name for p in found[:5])
    return None, f"found several notebooks ({shown}) and cannot tell which to grade: hand in one, named {assignment}.ipynb"


SANDBOX_NOTE = ("The grader's sandbox (bubblewrap) cannot run in this Gradescope container (it needs user namespaces), so "
                "your code ran in the limits-only worker: time, memory and process limits, no sandboxed file system. The "
                "points are the same.")


def _error_results(message: str) -> dict:
    return {"score": 0.0, "output": message, "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
            "tests": []}


def _write_results(root: Path, data: dict) -> Path:
    path = root / RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def grade_in_gradescope(root: Path, cfg: BundleConfig, say=print) -> dict:
    """Grade the submission in ``root/submission`` as ``cfg`` says and write ``root/results/results.json``; returns
    what was written. Where the sandbox cannot start, grades with the limits-only worker and says so in it."""
    from ..grading.engine import GradeOptions, grade_submission, strong_isolation_available
    from ..grading.reports import GradescopeSettings, gradescope_results, plain
    from ..grading.submissions import Submission

    scratch = Path(tempfile.mkdtemp(prefix="coursekit-gradescope-"))
    try:
        notebook, problem = find_notebook(root / "submission", cfg.assignment, scratch / "unzipped")
        sandbox = strong_isolation_available()
        if not sandbox:
            say("bubblewrap's sandbox cannot start here: grading with the limits-only worker")
        opts = GradeOptions(profile=cfg.profile, timeout=cfg.timeout, wall_factor=1.0, force=True, insecure=not sandbox)
        sub = Submission("submission", cfg.assignment, notebook, root / "submission", problem)
        report = grade_submission(sub, scratch / "grades", opts)
        settings = GradescopeSettings(cfg.hidden_visibility, cfg.output_format, cfg.leaderboard,
                                      "" if report.get("isolation") in (None, "bubblewrap") else SANDBOX_NOTE)
        data = gradescope_results(report, settings)
        _write_results(root, data)
        say(f"{cfg.assignment}: {report['points']:g} / {report['max_points']:g} points, profile {report['profile']}, "
            f"isolation {report.get('isolation')}, {report['total_seconds']:.0f} s"
            + (f"; problem: {plain(report['problem'], 300)}" if report.get("problem") else ""))
        log = scratch / "grades" / "staff" / sub.folder / cfg.assignment / "grader.log"
        if report.get("problem") and log.is_file():  # for the staff (stdout_visibility is hidden): why it did not finish
            say("the graders' log (staff only):\n" + log.read_text(encoding="utf-8", errors="replace")[-4000:])
        return data
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(root: str | Path, bundle: str | Path, say=print) -> int:
    """``run_autograder``'s work: grade and write ``root/results/results.json``, whatever happens (0: written)."""
    root, bundle = Path(root), Path(bundle)
    try:
        cfg = BundleConfig.read(bundle / CONFIG_NAME)
        grade_in_gradescope(root, cfg, say)
        return 0
    except BaseException as e:  # noqa: BLE001 - the kit's own failure: the student gets a result that says so
        say("the autograder failed:\n" + "".join(traceback.format_exception(e))[-6000:])
        try:
            _write_results(root, _error_results(
                "The autograder could not grade this submission because of an error of its own, not of your notebook "
                f"({type(e).__name__}). The course staff can see what happened; submit again later or ask them."))
        except OSError as w:
            say(f"results.json could not be written either: {w}")
            return 2
        return 0 if not isinstance(e, KeyboardInterrupt) else 130


def check(bundle: str | Path, say=print) -> int:
    """``setup.sh``'s last step: the bundle's kit is whole (rubric, graders, reference outputs of the course data set)
    and whether the students' code will run in the sandbox here."""
    from ..grading.engine import check_reference_outputs, graded_assignments, strong_isolation_available
    from ..grading.rubric import load_rubric

    cfg = BundleConfig.read(Path(bundle) / CONFIG_NAME)
    if cfg.assignment not in graded_assignments():
        say(f"the bundle's kit ({paths.kit_root()}) has no graders for {cfg.assignment}")
        return 1
    rubric = load_rubric(cfg.assignment)
    check_reference_outputs([cfg.assignment])
    sandbox = strong_isolation_available()
    say(f"{cfg.assignment}: {len(rubric.items)} graded tests, {rubric.total:g} points, profile {cfg.profile}; students' code "
        + ("runs in bubblewrap's sandbox" if sandbox else "runs with limits only (bubblewrap cannot start here), as results.json will say"))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m coursekit.export.gradescope",
                                description="The commands a Gradescope bundle's scripts run (run_autograder: run; setup.sh: check).")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="grade /autograder/submission and write /autograder/results/results.json")
    r.add_argument("--root", default="/autograder", help="the folder laid out like /autograder (default: /autograder)")
    r.add_argument("--bundle", default=None, help="the unpacked bundle (default: ROOT/source)")
    c = sub.add_parser("check", help="check the unpacked bundle's kit and say whether the sandbox can start")
    c.add_argument("--bundle", required=True, help="the unpacked bundle")
    args = p.parse_args(argv)
    if args.command == "run":
        return run(args.root, args.bundle or Path(args.root) / "source", say=lambda m: print(m, flush=True))
    return check(args.bundle)


if __name__ == "__main__":
    sys.exit(main())
