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
    """Drop reports and feedback of example submissions the demo no longer makes (its own output folder only)."""
    import shutil

    from .grading import layout

    for report in layout.old_layout_reports(grades):  # the demo's own output of kits before feedback/ and staff/
        shutil.rmtree(report.parent.parent, ignore_errors=True)
    for report in layout.report_paths(grades):
        student, assignment = report.parent.parent.name, report.parent.name
        if (student, assignment) not in current:
            shutil.rmtree(report.parent)
            shutil.rmtree(layout.feedback_dir(grades, student, assignment), ignore_errors=True)
    for tree in (grades / layout.STAFF, grades / layout.FEEDBACK):
        for folder in tree.glob("*") if tree.is_dir() else []:
            if folder.is_dir() and folder.name not in {s for s, _ in current}:
                shutil.rmtree(folder)


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


GRADER_ERROR = "the grader could not check this"  # how a grader's crash reads in a report (pytest_plugin)


def example_problems(reports: list[dict], mistakes: dict[str, dict] | None = None) -> list[str]:
    """What is wrong with the grades of the example submissions (empty when each got the grade it should): the
    reference solution has full marks, the untouched student version none, a typical mistake fails the tests its
    ``mistakes.py`` entry says it fails (``fails``) and passes those it says it passes (``passes``), and no grader
    crashed on any of them (a crash gives no credit, and the staff must fix the grader)."""
    mistakes = mistakes or {}
    out = []
    for r in reports:
        who, a = r["student"], r["assignment"]
        if who == "reference" and r["points"] != r["max_points"]:
            out.append(f"the reference solution of {a} scored {r['points']:g}/{r['max_points']:g}")
        if who == "untouched" and r["points"] > 0:
            out.append(f"the untouched student version of {a} scored {r['points']:g}")
        tests = {t["id"]: t for t in r.get("tests", [])}
        for t in tests.values():
            if t.get("grader_error") or str(t.get("message", "")).startswith(GRADER_ERROR):
                out.append(f"the grader crashed on the example {who!r} of {a}, in \"{t['name']}\" "
                           f"({t['points']:g}/{t['max_points']:g}): {t.get('message', '')}")
        m = mistakes.get(a, {}).get(who)
        if m is None:
            continue
        for tid in m.get("fails", []):
            if tid in tests and tests[tid]["points"] >= tests[tid]["max_points"]:
                out.append(f"the mistake {who!r} of {a} got full marks on \"{tests[tid]['name']}\", which it must fail")
        for tid in m.get("passes", []):
            if tid in tests and not tests[tid]["passed"]:
                out.append(f"the mistake {who!r} of {a} failed \"{tests[tid]['name']}\", which it must pass: "
                           f"{tests[tid].get('message', '')}")
    return out


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
    if (out / "release").is_dir() and release.read_manifest(out / "release") is None:
        # a release an older kit wrote here, without the list of its files: out/demo is the demo's own folder
        import shutil

        log(f"  removing {out / 'release'}: an older demo's release, written before releases listed their files")
        shutil.rmtree(out / "release")
    release.build_release(out / "release", force=True, log=lambda m: log("  " + m))

    import shutil

    assignments = graded_assignments()
    shutil.rmtree(out / "examples", ignore_errors=True)
    # one folder per example "student": the reference and the untouched version of every assignment, each mistake
    # of its own assignment only; the batch grades each for what it holds
    examples = {a: make_examples(a, out / "examples", max_mistakes=mistakes) for a in assignments}
    _prune_stale_reports(out / "grades", {(name, a) for a, made in examples.items() for name in made})
    options = demo_grade_options(profile, log)
    for a, made in examples.items():
        log(f"{a}: example submissions {', '.join(made)}")
    reports = grade_batch([out / "examples"], out / "grades", None, jobs=jobs, options=options, log=log)
    reports.sort(key=lambda r: (r["assignment"], r["student"]))
    log(summary_table(reports))
    from .grading.examples import load_mistakes

    found = example_problems(reports, {a: load_mistakes(a) for a in assignments})
    for line in found:
        log(f"PROBLEM: {line}")
    problems += len(found)
    from .grading.layout import describe_outputs, feedback_dir

    log(describe_outputs(out / "grades"))
    if assignments:
        log(f"e.g. {feedback_dir(out / 'grades', 'reference', assignments[0]) / 'feedback.html'}")
    log("demo finished: " + ("all good" if problems == 0 else f"{problems} problem(s)"))
    return 0 if problems == 0 else 1
