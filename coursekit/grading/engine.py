"""Grading: submissions in, a report per submission and a gradebook out.

``grade_submission`` checks the notebook, extracts its code, and runs the assignment's
hidden graders (``autograder/<assignment>/``) with pytest in a grader process of their own;
the student's code runs in the sandboxed worker those graders talk to. Its report is
written atomically as ``OUT/<student>/<assignment>/report.json`` (with ``results.json`` for
Gradescope and ``feedback.html``), so a batch killed half-way and started again skips what
is done. ``grade_batch`` grades many submissions, ``jobs`` at a time, and writes
``OUT/gradebook.csv``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..notebook import NotebookError, extract_code, read_notebook
from .rubric import load_rubric
from .submissions import Submission, find_submissions

ENGINE_VERSION = 1


@dataclass
class GradeOptions:
    profile: str | None = None  # smoke | full; None: full where there is a GPU, else smoke
    timeout: float = 1800.0  # seconds for a whole submission's grading
    call_timeout: float | None = None  # seconds per probe call (default: the profile's)
    force: bool = False  # grade again even where a report exists
    env: dict = field(default_factory=dict)  # extra environment for the grader process (e.g. CUDA_VISIBLE_DEVICES)


def graded_assignments() -> list[str]:
    root = paths.autograder_dir()
    return sorted(p.name for p in root.iterdir() if (p / "rubric.json").is_file()) if root.is_dir() else []


def default_profile() -> str:
    import torch

    return "full" if torch.cuda.is_available() else "smoke"


def check_reference_outputs(assignments: list[str]) -> None:
    """Refuse to grade against thresholds measured on another data set than the course's (``DatasetMismatch``):
    that is the TA's to fix with ``coursekit reference``, and it must not cost every student their points."""
    from ..data.course import check_measured_on

    for a in assignments:
        path = paths.autograder_dir() / a / "expected.json"
        if path.is_file():
            expected = json.loads(path.read_text())
            if "dataset" in expected:
                check_measured_on(expected, path)


def _grader_hash(assignment: str) -> str:
    h = hashlib.sha256()
    for p in sorted((paths.autograder_dir() / assignment).rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _zero_report(sub: Submission, message: str, profile: str) -> dict:
    rubric = load_rubric(sub.assignment)
    tests = [{"id": i.test_id, "name": i.name, "points": 0.0, "max_points": i.points, "passed": False,
              "message": message, "details": True, "seconds": 0.0, "attachments": []} for i in rubric.items.values()]
    return {"tests": tests, "profile": profile, "isolation": None, "seconds": 0.0, "problem": message}


def _check_notebook(sub: Submission) -> tuple[str | None, str]:
    """(code, problem): the notebook's code, or why it cannot be graded."""
    if sub.notebook is None:
        return None, sub.problem or "no notebook found"
    try:
        nb = read_notebook(sub.notebook)
    except NotebookError as e:
        return None, f"the notebook could not be read: {e}"
    claimed = nb.metadata.get("coursekit", {}).get("assignment")
    if claimed and claimed != sub.assignment:
        return None, f"{sub.notebook.name} is the notebook of assignment '{claimed}', not '{sub.assignment}'"
    code = extract_code(nb)
    if not code.strip():
        return None, "the notebook holds no code"
    return code, ""


def grade_submission(sub: Submission, out: str | Path, options: GradeOptions | None = None) -> dict:
    """Grade one submission; returns its report (also written under ``out``)."""
    from ..envinfo import describe_environment
    from .reports import write_feedback, write_gradescope

    options = options or GradeOptions()
    profile = options.profile or default_profile()
    dest = Path(out) / sub.student / sub.assignment
    nb_hash = hashlib.sha256(sub.notebook.read_bytes()).hexdigest() if sub.notebook else "none"
    key = {"notebook_sha256": nb_hash, "graders": _grader_hash(sub.assignment), "profile": profile, "engine": ENGINE_VERSION}
    done = dest / "report.json"
    if done.is_file() and not options.force:
        old = json.loads(done.read_text())
        if old.get("key") == key:
            old["skipped"] = True
            return old

    t0 = time.monotonic()
    work = dest.parent / f".{sub.assignment}.partial"
    shutil.rmtree(work, ignore_errors=True)
    (work / "artifacts").mkdir(parents=True)
    code, problem = _check_notebook(sub)
    grader_seconds = 0.0
    if problem:
        results = _zero_report(sub, problem, profile)
    else:
        (work / "submission.py").write_text(code, encoding="utf-8")
        results_path = work / "grader-results.json"
        cmd = [sys.executable, "-m", "pytest", str(paths.autograder_dir() / sub.assignment), "-q", "-p", "no:cacheprovider",
               "--assert=plain", "-o", "addopts=", "--submission", str(work / "submission.py"), "--results", str(results_path),
               "--artifacts", str(work / "artifacts"), "--profile", profile, "--rootdir", str(paths.kit_root())]
        if options.call_timeout:
            cmd += ["--call-timeout", str(options.call_timeout)]
        env = {**os.environ, "MPLBACKEND": "Agg", **options.env}
        g0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=paths.kit_root(), env=env, capture_output=True, text=True, timeout=options.timeout)
            log = proc.stdout[-20000:] + proc.stderr[-5000:]
        except subprocess.TimeoutExpired:
            log = f"grading took longer than {options.timeout:.0f} s and was stopped"
        grader_seconds = time.monotonic() - g0
        (work / "grader.log").write_text(log)
        if results_path.is_file():
            results = json.loads(results_path.read_text())
            results_path.unlink()
        else:
            results = _zero_report(sub, "grading did not finish; the course staff have the log", profile)
    env_info = describe_environment()
    report = {
        "student": sub.student,
        "assignment": sub.assignment,
        "notebook": str(sub.notebook) if sub.notebook else None,
        "key": key,
        "profile": results.get("profile", profile),
        "isolation": results.get("isolation"),
        "device": env_info["device"],
        "versions": {k: env_info[k] for k in ("coursekit", "python", "torch", "numpy", "nbgrader")},
        "seeds": "fixed per test (see each grader)",
        "points": round(sum(t["points"] for t in results["tests"]), 4),
        "max_points": round(sum(t["max_points"] for t in results["tests"]), 4),
        "tests": results["tests"],
        "problem": results.get("problem", ""),
        "grader_seconds": round(grader_seconds, 3),
        "test_seconds": round(sum(t["seconds"] for t in results["tests"]), 3),
        "total_seconds": round(time.monotonic() - t0, 3),
        "worker_starts": results.get("worker_starts", 0),
    }
    write_gradescope(report, work / "results.json")
    write_feedback(report, work / "feedback.html", work / "artifacts")
    (work / "report.tmp").write_text(json.dumps(report, indent=1))
    os.replace(work / "report.tmp", work / "report.json")
    # swap the finished folder into place: a report is either complete or absent
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(work, dest)
    return report


def grade_batch(inputs: list[str | Path], out: str | Path, assignments: list[str] | None = None, jobs: int = 1,
                options: GradeOptions | None = None, progress: bool = True) -> list[dict]:
    """Grade every submission found in ``inputs``; writes reports and ``out/gradebook.csv``."""
    from tqdm.auto import tqdm

    from .reports import write_gradebook

    assignments = assignments or graded_assignments()
    unknown = [a for a in assignments if a not in graded_assignments()]
    if unknown:
        raise ValueError(f"no graders for {unknown}; graded assignments: {graded_assignments()}")
    check_reference_outputs(assignments)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    subs = find_submissions(inputs, assignments, unzip_into=out / ".unzipped")
    options = options or GradeOptions()
    gpus = _gpu_count()
    reports: list[dict] = []

    def run(i: int, sub: Submission) -> dict:
        opts = options
        if gpus > 1:  # one GPU per job slot
            opts = GradeOptions(**{**options.__dict__, "env": {**options.env, "CUDA_VISIBLE_DEVICES": str(i % gpus)}})
        return grade_submission(sub, out, opts)

    bar = tqdm(total=len(subs), desc="grading", unit="submission", disable=not progress)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(run, i % max(1, jobs), s): s for i, s in enumerate(subs)}
        for fut in as_completed(futures):
            s = futures[fut]
            rep = fut.result()
            reports.append(rep)
            bar.set_postfix_str(f"{s.student}/{s.assignment}: {rep['points']:g}/{rep['max_points']:g}" + (" (done before)" if rep.get("skipped") else ""))
            bar.update()
    bar.close()
    reports.sort(key=lambda r: (r["student"], r["assignment"]))
    write_gradebook(out)
    return reports


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
