"""``coursekit demo``: the main job on the embedded data, end to end.

Until the grading engine lands, the main job is the release pipeline: print the
environment, show the embedded data set, check the committed student notebooks against
their sources, build and audit the student release, and run each assignment's public
checks on its reference solution.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def run_demo(out: str | None = None, log=print) -> int:
    from . import paths, release
    from .checks.runner import check_notebook
    from .data import load_dataset
    from .envinfo import environment_line

    log(environment_line())
    ds = load_dataset("sprites")
    log(ds.describe())

    names = release.list_assignments()
    log(f"assignments: {', '.join(names) or 'none yet'}")
    failures = 0
    drift = release.find_drift()
    for name in drift:
        log(f"  DRIFT: assignments/{name} is out of date with solutions/{name} (run `coursekit release --force`)")
    failures += len(drift)

    with tempfile.TemporaryDirectory(prefix="coursekit-release-") as tmp:
        target = Path(out) if out else Path(tmp) / "release"
        release.build_release(target, force=bool(out), log=lambda m: log("  " + m))

    for name in names:
        nb = paths.solutions_dir() / name / f"{name}.ipynb"
        log(f"public checks of the reference solution of {name}:")
        results = check_notebook(nb)
        for r in results:
            log("  " + r.line())
        failures += sum(not r.passed for r in results)
    log("demo finished: " + ("all good" if failures == 0 else f"{failures} problem(s)"))
    return 0 if failures == 0 else 1
