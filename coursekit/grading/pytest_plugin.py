"""What the hidden graders run under: fixtures to reach the submission, and points per test.

``autograder/conftest.py`` imports this module, so a TA can run the graders with plain
pytest (``pytest autograder/pixelrnn`` grades the reference solution;
``--submission PATH`` grades a notebook or .py), and the grading engine runs the same
files with ``--results`` to collect the scores.

Fixtures for graders:

- ``probe(name, timeout=None, torch_seed=0, worker="main", **params)``: runs
  ``probes.probe_<name>(submission, **params)`` from the grader folder's ``probes.py`` inside
  the submission's sandboxed worker and returns its plain result; a crash, timeout or
  exception there fails the test with a message for the student. ``params`` are the inputs
  the grader chose (tensors travel as tensors). Each ``worker`` name is a separate sandboxed
  process with the same code: two workers cannot see each other's inputs, which is how a
  grader checks, in the same calls that it scores, that a model's outputs do not depend on
  what they must not depend on. A call that timed out is not run again in the same session
  with the same probe, worker and inputs (and no longer timeout): its error comes back at once.
  ``probe.end(worker="main")`` stops a worker the grader is done with (a later call starts a fresh one).
- ``profile``: the settings of the active grading profile (``profiles.json``: smoke or full).
- ``credit``: partial credit, ``credit.part(weight, ok, message)`` for each part of a test. The rule
  (``Credit.fraction``): a test that runs to its end scores the weight of its passed parts over the
  weight of all its parts. A test stopped before its end by a failed assert or by the student's code
  failing keeps the parts it checked, and the check it was making counts as a failed part as heavy as
  its heaviest part (the parts it never reached are unknown, so a stopped test never scores full
  points). Where the grader's own code crashes (any other exception, in setup, call or teardown), the
  test scores 0, whatever it had checked, and its result says ``grader_error``: it could not check the
  rest, and the staff must fix it (``coursekit demo`` reports it as a problem).
- ``attach``: pictures for the feedback page (``attach.grid(title, indices, palette)``,
  ``attach.curve(title, values)``).
- pytest's own ``record_property("leaderboard", {"name": ..., "value": ..., "order": "asc"})``: a figure the
  grader measured (held-out bits per pixel, FID; "asc": lower is better) for Gradescope's leaderboard, where the
  instructor turns it on (``coursekit export gradescope --leaderboard``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .. import paths
from .rubric import load_rubric
from .sandbox import Limits, Sandbox, SubmissionError

# What autograder/conftest.py takes with `import *`: the hooks and the fixtures.
__all__ = [
    "pytest_addoption", "pytest_configure", "pytest_collection_modifyitems", "pytest_runtest_makereport",
    "pytest_sessionfinish", "pytest_runtest_logfinish", "_coursekit_state", "probe", "profile", "credit", "attach",
]


def pytest_addoption(parser):
    g = parser.getgroup("coursekit")
    g.addoption("--submission", default=os.environ.get("COURSEKIT_SUBMISSION"), help="notebook or .py to grade (default: the reference solution)")
    g.addoption("--results", default=None, help="write per-test results (JSON) here")
    g.addoption("--artifacts", default=None, help="folder for the feedback's pictures")
    g.addoption("--profile", default=os.environ.get("COURSEKIT_PROFILE"), help="grading profile: smoke (CPU) or full (GPU); default by device")
    g.addoption("--call-timeout", type=float, default=None, help="seconds per probe call (default: the profile's)")


# --- which submission, which profile ------------------------------------------------------
def active_profile_name(config) -> str:
    name = config.getoption("--profile")
    if name:
        return name
    import torch

    return "full" if torch.cuda.is_available() else "smoke"


def _assignment_dir(path: Path) -> Path:
    """The grader folder (``autograder/<assignment>``) a test file lives in."""
    root = paths.autograder_dir().resolve()
    path = path.resolve()
    for parent in [path, *path.parents]:
        if parent.parent == root:
            return parent
    raise RuntimeError(f"{path} is not inside {root}")


def _submission_code(config, assignment: str, scratch: Path) -> Path:
    """The submission as one .py file: a .py as given, a notebook's code extracted into ``scratch``."""
    from ..notebook import extract_code, read_notebook

    src = config.getoption("--submission")
    src = Path(src) if src else paths.solutions_dir() / assignment / f"{assignment}.ipynb"
    if src.suffix == ".py":
        return src
    tmp = scratch / f"{assignment}_submission.py"
    tmp.write_text(extract_code(read_notebook(src)), encoding="utf-8")
    return tmp


class _State:
    """Per-session state: sandboxes per grader folder, results per test."""

    def __init__(self, config):
        self.config = config
        self.sandboxes: dict[tuple[Path, str], Sandbox] = {}
        self.results: dict[str, dict] = {}
        self.finished: set[str] = set()  # tests whose outcome is known (their call ran, or their setup failed)
        self.timeouts: dict[tuple, tuple[float, str]] = {}  # (folder, probe, worker, inputs) -> (timeout, error)
        self.started = time.time()
        self.rubrics: dict[Path, object] = {}
        self._extracted: dict[Path, object] = {}
        art = config.getoption("--artifacts")
        self.artifacts = Path(art) if art else None
        self.scratch = Path(tempfile.mkdtemp(prefix="coursekit-grader-"))

    def data_binds(self) -> list[tuple[Path, Path]]:
        """The students' copy of the course data (training images only) at the kit's ``data/``: the worker never
        finds a held-out image on disk. A kit without a course data set (the toy kit of the tests) binds nothing."""
        if not hasattr(self, "_data_binds"):
            from ..data.errors import DataError
            from ..data.public import sandbox_data_dir

            try:
                self._data_binds = [(sandbox_data_dir(), paths.data_dir())]
            except DataError:
                self._data_binds = []
        return self._data_binds

    def extracted(self, folder: Path):
        """The line map and the skipped statements of the code graded for ``folder`` (read back from the module's
        cell headers, written by ``coursekit.notebook.extract_module``)."""
        from ..notebook import parse_extracted

        if folder not in self._extracted:
            code = _submission_code(self.config, folder.name, self.scratch)
            self._extracted[folder] = parse_extracted(code.read_text(encoding="utf-8", errors="replace"))
        return self._extracted[folder]

    def sandbox(self, folder: Path, worker: str = "main") -> Sandbox:
        if (folder, worker) not in self.sandboxes:
            prof = load_profile(folder, active_profile_name(self.config))
            timeout = self.config.getoption("--call-timeout") or prof.get("call_timeout", 120)
            limits = Limits(call_timeout=timeout, load_timeout=prof.get("load_timeout", 120), memory_mb=prof.get("memory_mb", 6144),
                            cpu_seconds=prof.get("cpu_seconds", 1800), threads=prof.get("threads", 1))
            code = _submission_code(self.config, folder.name, self.scratch)
            self.sandboxes[(folder, worker)] = Sandbox(code, folder / "probes.py", limits, ro_binds=self.data_binds())
        return self.sandboxes[(folder, worker)]


_KEY = pytest.StashKey[_State]()


def load_profile(folder: Path, name: str) -> dict:
    path = folder / "profiles.json"
    profiles = json.loads(path.read_text()) if path.is_file() else {"smoke": {}, "full": {}}
    if name not in profiles:
        raise pytest.UsageError(f"{path}: no grading profile {name!r} (has {sorted(profiles)})")
    return {"name": name, **profiles[name]}


def pytest_configure(config):
    config.stash[_KEY] = _State(config)


def pytest_collection_modifyitems(session, config, items):
    """Every grader test has a rubric entry, or nothing is graded (tests/test_rubrics.py checks the converse)."""
    state = config.stash[_KEY]
    for item in items:
        folder = _assignment_dir(item.path)
        if folder not in state.rubrics:
            state.rubrics[folder] = load_rubric(folder.name, folder / "rubric.json")
        tid = f"{item.path.relative_to(folder).as_posix()}::{item.name}"
        if tid not in state.rubrics[folder].items:
            raise pytest.UsageError(f"{folder / 'rubric.json'}: no points for {tid}")


# --- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _coursekit_state(request) -> _State:
    state = request.config.stash[_KEY]
    yield state
    for sb in state.sandboxes.values():
        sb.cleanup()
    shutil.rmtree(state.scratch, ignore_errors=True)


@pytest.fixture
def probe(request, _coursekit_state):
    """``probe(name, timeout=None, torch_seed=0, worker="main", **params)``: a probe's plain result, run in the
    submission's sandboxed worker ``worker`` after ``torch.manual_seed(torch_seed)``."""
    folder = _assignment_dir(request.path)

    def run(name: str, timeout: float | None = None, torch_seed: int = 0, worker: str = "main", **params):
        sb = _coursekit_state.sandbox(folder, worker)
        limit = timeout or sb.limits.call_timeout
        fingerprint = _inputs_hash(torch_seed, params)
        key = (folder, name, worker, fingerprint)
        seen = _coursekit_state.timeouts.get(key) if fingerprint else None
        if seen is not None and limit <= seen[0]:
            raise SubmissionError(seen[1])  # it took too long before: it would again
        try:
            return sb.call(name, timeout=timeout, torch_seed=torch_seed, **params)
        except SubmissionError as e:
            if fingerprint and str(e).startswith("took longer than"):
                _coursekit_state.timeouts[key] = (limit, str(e))
            # the module's line numbers, told as the notebook's cells and lines (only those patterns are rewritten)
            try:
                told = _coursekit_state.extracted(folder).translate(str(e))
            except Exception:  # noqa: BLE001 - a message is never worth a crash of the grader: keep it as it came
                raise e from None
            raise SubmissionError(told) from None

    def end(worker: str = "main") -> None:
        """Stop the worker ``worker`` now (a later call starts a fresh one): a grader that is done with a worker ends
        it before starting another, so that two workers with torch never wait side by side (Gradescope: 768 MB)."""
        sb = _coursekit_state.sandboxes.get((folder, worker))
        if sb is not None:
            sb.close()

    run.end = end
    return run


def _inputs_hash(torch_seed: int, params: dict) -> str | None:
    """A fingerprint of a probe call's inputs (tensors by dtype, shape and bytes)."""
    import numpy as np
    import torch

    h = hashlib.sha256()

    def feed(obj) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.flatten().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(obj, np.ndarray):
            h.update(f"N{obj.dtype}{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj).tobytes())
        elif isinstance(obj, dict):
            h.update(b"D%d" % len(obj))
            for k in sorted(obj, key=repr):
                feed(k)
                feed(obj[k])
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__}{len(obj)}".encode())
            for x in obj:
                feed(x)
        else:
            h.update(f"{type(obj).__name__}:{obj!r};".encode())

    try:
        feed(torch_seed)
        feed(params)
    except Exception:  # noqa: BLE001 - inputs it cannot fingerprint (sparse tensors...): no memo, never a crash
        return None
    return h.hexdigest()


@pytest.fixture
def profile(request) -> dict:
    return load_profile(_assignment_dir(request.path), active_profile_name(request.config))


class Credit:
    """Partial credit: each part has a weight; the test scores the share of weight it passed.

    ``stopped()`` records that the test ended early, by a failed assert or the student's code failing: the check it
    was making counts as a failed part as heavy as the heaviest part so far. ``crashed()`` records that the grader's
    own code raised: nothing counts (``fraction`` 0), since it could not check the rest.
    """

    def __init__(self):
        self.parts: list[tuple[float, bool, str]] = []
        self.interrupted = False  # stopped before its end (an assert, the student's code): one more failed part
        self.grader_error = False  # the grader's own code crashed: no credit at all

    def part(self, weight: float, ok: bool, message: str = "") -> bool:
        self.parts.append((float(weight), bool(ok), message))
        return bool(ok)

    def stopped(self) -> None:
        self.interrupted = True

    def crashed(self) -> None:
        self.grader_error = True

    @property
    def fraction(self) -> float | None:
        """The share of the test's weight it passed: None where it recorded no part; 0.0 after a grader crash; below
        1 whenever it was stopped before its end (the unfinished check counts as failed)."""
        if self.grader_error:
            return 0.0
        weights = [w for w, _, _ in self.parts]
        if self.interrupted and weights:
            weights.append(max(weights))  # the check it was making when it stopped: failed, as heavy as the heaviest
        total = sum(weights)
        return None if total == 0 else sum(w for w, ok, _ in self.parts if ok) / total

    def failures(self) -> list[str]:
        return [m for _, ok, m in self.parts if not ok]


@pytest.fixture
def credit(request):
    c = Credit()
    request.node.stash[_CREDIT] = c
    yield c
    if c.failures():
        pytest.fail("; ".join(c.failures()), pytrace=False)


_CREDIT = pytest.StashKey[Credit]()
_CRASHED = pytest.StashKey[bool]()  # the grader's own code crashed in this test: no credit


class Attach:
    """Pictures a test adds to the student's feedback page."""

    def __init__(self, folder: Path | None, test_id: str):
        self.folder, self.test_id, self.items = folder, test_id, []

    def _path(self, title: str) -> Path | None:
        if self.folder is None:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() else "_" for c in f"{self.test_id}_{title}")[:120]
        return self.folder / f"{safe}.png"

    def grid(self, title: str, indices, palette, ncols: int | None = None) -> None:
        from ..plot import save_grid

        path = self._path(title)
        if path is not None:
            save_grid(indices, palette, path, ncols=ncols)
            self.items.append({"title": title, "file": path.name})

    def curve(self, title: str, values, xlabel: str = "step", ylabel: str = "") -> None:
        path = self._path(title)
        if path is None:
            return
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 2.6))
        ax = fig.add_subplot()
        ax.plot(list(values))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        self.items.append({"title": title, "file": path.name})


_ATTACH = pytest.StashKey[Attach]()


@pytest.fixture
def attach(request, _coursekit_state):
    a = Attach(_coursekit_state.artifacts, request.node.name)
    request.node.stash[_ATTACH] = a
    return a


# --- results --------------------------------------------------------------------------------
def _student_message(excinfo) -> str:
    exc = excinfo.value
    if isinstance(exc, SubmissionError):
        return str(exc)
    if isinstance(exc, AssertionError) or excinfo.typename in ("Failed", "AssertionError"):
        text = str(exc).split("\nassert ")[0].strip()
        return text or "the check did not hold"
    if excinfo.typename == "Skipped":
        return str(exc)
    return f"the grader could not check this ({excinfo.typename}); please tell the course staff"


def _grader_crashed(excinfo) -> bool:
    """An exception of the grader's own code: not the student's (SubmissionError), not a failed check, not a skip."""
    exc = excinfo.value
    return not isinstance(exc, (SubmissionError, AssertionError, pytest.fail.Exception, pytest.skip.Exception))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    state = item.config.stash[_KEY]
    folder = _assignment_dir(item.path)
    tid = f"{item.path.relative_to(folder).as_posix()}::{item.name}"
    rubric = state.rubrics.get(folder)
    entry = rubric.items.get(tid) if rubric else None
    res = state.results.setdefault(tid, {
        "id": tid, "assignment": folder.name, "name": entry.name if entry else tid,
        "max_points": entry.points if entry else 0.0, "details": entry.details if entry else True,
        "points": 0.0, "passed": False, "message": "", "seconds": 0.0, "attachments": [], "grader_error": False,
    })
    res["seconds"] += rep.duration
    if rep.when == "call" or (rep.when == "setup" and rep.outcome != "passed"):
        state.finished.add(tid)
    if item.stash.get(_CRASHED, False):
        pass  # the grader crashed earlier in this test: it stays at 0 with that message
    elif rep.when == "call" or (rep.when == "setup" and rep.outcome != "passed") or (rep.when == "teardown" and rep.outcome == "failed"):
        credit = item.stash.get(_CREDIT, None)
        if rep.outcome == "passed" and rep.when == "call":
            res.update(passed=True, points=res["max_points"], message="")
        elif rep.outcome == "failed" and call.excinfo is not None and _grader_crashed(call.excinfo):
            item.stash[_CRASHED] = True  # it could not check what came after: no credit for what it did check
            if credit is not None:
                credit.crashed()
            res.update(passed=False, points=0.0, message=_student_message(call.excinfo), grader_error=True)
        elif rep.outcome == "failed":
            if credit is not None and rep.when == "call":
                credit.stopped()  # an assert or the student's code stopped it: the check it was making failed
            frac = credit.fraction if credit is not None else None
            res.update(passed=False, points=round(res["max_points"] * (frac or 0.0), 4), message=_student_message(call.excinfo) if call.excinfo else "failed")
        elif rep.outcome == "skipped":
            res.update(passed=False, points=0.0, message=_student_message(call.excinfo) if call.excinfo else "skipped")
    att = item.stash.get(_ATTACH, None)
    if att is not None:
        res["attachments"] = att.items
    board = [v for k, v in getattr(rep, "user_properties", ()) if k == "leaderboard" and isinstance(v, dict)]
    if board:  # figures the grader measured (pytest's record_property("leaderboard", {"name", "value", "order"}))
        res["leaderboard"] = [{"name": str(v.get("name")), "value": v.get("value"), "order": v.get("order", "desc")} for v in board]


def pytest_runtest_logfinish(nodeid, location):
    """After each test: what it freed goes back to the system, so that the next test's peak does not come on top of it
    (the grader shares Gradescope's 768 MB with the workers)."""
    from .memory import release_memory

    release_memory(full=False)  # the young generations only: a full collection costs half a second per test


def _incomplete(state, exitstatus) -> str:
    """Why this session's results are not a whole grading; "" when they are."""
    if int(exitstatus) not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return f"the session did not finish normally (pytest exit status {int(exitstatus)})"
    if not state.rubrics:
        return "no grader test ran"
    missing = [tid for r in state.rubrics.values() for tid in r.items if tid not in state.finished]
    if missing:
        return f"{len(missing)} test(s) of the rubric did not run: {', '.join(missing[:5])}"
    return ""


def _notes(state, folder: Path) -> list[str]:
    try:
        return state.extracted(folder).notes()
    except Exception:  # noqa: BLE001 - notes are a courtesy: never a reason to lose the results
        return []


def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash[_KEY]
    out = session.config.getoption("--results")
    if not out:
        return
    why = _incomplete(state, exitstatus)
    if why:  # a partial grading must never pass for a whole one
        Path(out).unlink(missing_ok=True)
        print(f"coursekit: no results written to {out}: {why}", file=sys.stderr)
        return
    data = {
        "finished": True,
        "profile": active_profile_name(session.config),
        "isolation": next(iter(state.sandboxes.values())).isolation if state.sandboxes else None,
        "worker_starts": sum(sb.starts for sb in state.sandboxes.values()),
        "seconds": round(time.time() - state.started, 3),
        "tests": list(state.results.values()),
        # what of the notebook was not run (top-level work, cells that are not valid Python), for the feedback
        "notes": [n for folder in state.rubrics for n in _notes(state, folder)],
        "rubric_total": sum(r.total for r in state.rubrics.values()),
    }
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, out)
