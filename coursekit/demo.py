"""``coursekit demo``: the instructor's main job, end to end on the embedded data.

Prints the environment and the embedded data set, checks that the committed student
notebooks match their sources, builds and audits the student release, then grades a small
batch of example submissions per assignment (the reference solution, the untouched student
version and typical mistakes, made by ``coursekit.grading.examples``) and prints the table
and where the gradebook and feedback pages are.
"""

from __future__ import annotations

from pathlib import Path


def _prune_stale_reports(grades: Path, current: set[tuple[str, str]]) -> None:
    """Drop reports of example submissions the demo no longer makes (its own output folder only)."""
    import shutil

    for report in grades.glob("*/*/report.json"):
        student, assignment = report.parent.parent.name, report.parent.name
        if (student, assignment) not in current:
            shutil.rmtree(report.parent)


def demo_grade_options(profile: str | None = None, log=print):
    """The demo grades only the kit's own example submissions, which it may trust: where bubblewrap is
    missing it grades them without the sandbox (``insecure``), and says so."""
    from .grading.engine import GradeOptions, strong_isolation_available

    insecure = not strong_isolation_available()
    if insecure:
        log("bubblewrap's sandbox is not available here: the demo grades its own example submissions without it "
            "(insecure, limits only), which is safe for the kit's own code; `coursekit grade` refuses to grade "
            "students' code like this unless you pass --insecure")
    return GradeOptions(profile=profile, insecure=insecure)


def run_demo(out: str | None = None, jobs: int = 2, profile: str | None = None, mistakes: int = 2, log=print) -> int:
    from . import paths, release
    from .data import course_dataset
    from .envinfo import environment_line
    from .grading.engine import grade_batch, graded_assignments
    from .grading.examples import make_examples
    from .grading.reports import summary_table

    out = Path(out) if out else paths.kit_root() / "out" / "demo"
    log(environment_line())
    log(course_dataset().describe())

    problems = 0
    drift = release.find_drift()
    for name in drift:
        log(f"DRIFT: assignments/{name} is out of date with solutions/{name} (run `coursekit release --force`)")
    problems += len(drift)
    release.build_release(out / "release", force=True, log=lambda m: log("  " + m))

    assignments = graded_assignments()
    examples = {a: make_examples(a, out / "submissions" / a, max_mistakes=mistakes) for a in assignments}
    _prune_stale_reports(out / "grades", {(name, a) for a, made in examples.items() for name in made})
    options = demo_grade_options(profile, log)
    reports = []
    for a, made in examples.items():  # each mistake belongs to one assignment: grade each assignment's examples on their own
        log(f"{a}: grading example submissions {', '.join(made)} ...")
        reports += grade_batch([out / "submissions" / a], out / "grades", [a], jobs=jobs, options=options)
    reports.sort(key=lambda r: (r["assignment"], r["student"]))
    log(summary_table(reports))
    for r in reports:
        if r["student"] == "reference" and r["points"] != r["max_points"]:
            log(f"PROBLEM: the reference solution of {r['assignment']} scored {r['points']:g}/{r['max_points']:g}")
            problems += 1
        if r["student"] == "untouched" and r["points"] > 0:
            log(f"PROBLEM: the untouched student version of {r['assignment']} scored {r['points']:g}")
            problems += 1
    log(f"gradebook: {out / 'grades' / 'gradebook.csv'}")
    log(f"feedback pages: {out / 'grades'}/<student>/<assignment>/feedback.html (e.g. {out / 'grades' / 'reference' / (assignments[0] if assignments else '') / 'feedback.html'})")
    log("demo finished: " + ("all good" if problems == 0 else f"{problems} problem(s)"))
    return 0 if problems == 0 else 1
