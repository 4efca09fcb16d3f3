"""How fast grading is: one submission, the engine's overhead, --jobs, and nbgrader's autograde.

    python benchmarks/grading_speed.py                 # pixelrnn, smoke profile, everything
    python benchmarks/grading_speed.py --skip-nbgrader # without the (slow) nbgrader comparison

Prints:
- the seconds to grade the reference solution of an assignment in a profile, split into the
  time inside grader tests and the engine's overhead (notebook extraction, process starts,
  transfers, reports), with the overhead's share;
- the speed-up of --jobs 2 over --jobs 1 on 4 submissions;
- the seconds nbgrader's ``autograde`` takes to run the same notebook top to bottom (it runs
  every cell, training included, in a Jupyter kernel), for comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursekit import paths
from coursekit.envinfo import environment_line
from coursekit.grading.engine import GradeOptions, grade_batch, grade_submission, strong_isolation_available
from coursekit.grading.examples import make_examples
from coursekit.grading.submissions import Submission


def one_submission(assignment: str, profile: str, tmp: Path) -> dict:
    made = make_examples(assignment, tmp / "subs")
    t0 = time.monotonic()
    rep = grade_submission(Submission("reference", assignment, made["reference"], made["reference"]), tmp / "out1", GradeOptions(profile=profile, force=True, insecure=not strong_isolation_available()))
    wall = time.monotonic() - t0
    overhead = wall - rep["test_seconds"]
    print(f"one submission ({assignment}, {profile}): {wall:.1f} s wall, {rep['points']:g}/{rep['max_points']:g} points, "
          f"tests {rep['test_seconds']:.1f} s, engine overhead {overhead:.1f} s ({100 * overhead / wall:.0f}%), "
          f"worker starts {rep['worker_starts']}, isolation {rep['isolation']}")
    return {"wall": wall, "overhead": overhead}


def jobs_speedup(assignment: str, profile: str, tmp: Path) -> None:
    made = make_examples(assignment, tmp / "subs")
    batch = tmp / "batch"
    for i in range(4):
        dst = batch / f"student{i}" / f"{assignment}.ipynb"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made["reference"], dst)
    times = {}
    for jobs in (1, 2):
        t0 = time.monotonic()
        grade_batch([batch], tmp / f"jobs{jobs}", [assignment], jobs=jobs, options=GradeOptions(profile=profile, force=True, insecure=not strong_isolation_available()), progress=False)
        times[jobs] = time.monotonic() - t0
    print(f"4 submissions: --jobs 1 {times[1]:.1f} s, --jobs 2 {times[2]:.1f} s, speed-up {times[1] / times[2]:.2f}x")


def nbgrader_autograde(assignment: str, tmp: Path, timeout: int) -> None:
    course = tmp / "course"
    (course / "source" / assignment).mkdir(parents=True)
    shutil.copy(paths.solutions_dir() / assignment / f"{assignment}.ipynb", course / "source" / assignment)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.ExecutePreprocessor.timeout = {timeout}\n"
    )
    nbg = [sys.executable, "-m", "nbgrader"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # nbgrader runs `alembic`
    subprocess.run([*nbg, "generate_assignment", assignment, "--force"], cwd=course, check=True, capture_output=True, env=env)
    sub = course / "submitted" / "alice" / assignment
    sub.mkdir(parents=True)
    shutil.copy(paths.solutions_dir() / assignment / f"{assignment}.ipynb", sub)
    t0 = time.monotonic()
    proc = subprocess.run([*nbg, "autograde", assignment, "--force"], cwd=course, capture_output=True, text=True, env=env)
    took = time.monotonic() - t0
    status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    print(f"nbgrader autograde of the same notebook, top to bottom: {took:.1f} s ({status})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assignment", default="pixelrnn")
    ap.add_argument("--profile", default=None, help="smoke or full (default: by device)")
    ap.add_argument("--skip-nbgrader", action="store_true")
    ap.add_argument("--skip-jobs", action="store_true")
    ap.add_argument("--nbgrader-timeout", type=int, default=1800)
    args = ap.parse_args()
    from coursekit.grading.engine import default_profile

    profile = args.profile or default_profile()
    print(environment_line())
    with tempfile.TemporaryDirectory(prefix="coursekit-bench-") as tmp:
        tmp = Path(tmp)
        one_submission(args.assignment, profile, tmp)
        if not args.skip_jobs:
            jobs_speedup(args.assignment, profile, tmp)
        if not args.skip_nbgrader:
            nbgrader_autograde(args.assignment, tmp, args.nbgrader_timeout)


if __name__ == "__main__":
    main()
