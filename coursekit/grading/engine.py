"""Grading: submissions in, a report per submission and a gradebook out.

``grade_submission`` checks the notebook, extracts its code, and runs the assignment's
hidden graders (``autograder/<assignment>/``) with pytest in a grader process of their own
(its own session: a timeout or a stop kills it and every process it started); the student's
code runs in the sandboxed worker those graders talk to. Its report is written atomically as
``OUT/staff/<folder>/<assignment>/report.json`` (with the graders' log), and what may go back to the
student apart, as ``OUT/feedback/<folder>/<assignment>/`` ``feedback.html`` and ``results.json`` for
Gradescope (``layout``; ``<folder>`` is the student's name made safe, see ``submissions``).

A report counts as done, and is skipped when the batch runs again, only when it holds exactly
the rubric's tests with valid points and was made from the same notebook, graders, profile and
engine; anything else is graded again. ``grade_batch`` grades many submissions, ``jobs`` at a
time, and writes ``OUT/gradebook.csv`` and the instructor's summaries (``gradebook``). SIGINT (Ctrl-C) or SIGTERM stops a batch cleanly: no
new work starts, the running graders are killed, their partial work is discarded, the
gradebook is written from the complete reports and ``GradingInterrupted`` says how far it got;
the same command then resumes.

Student code runs in bubblewrap's sandbox; where that is not available a batch refuses to
start (``IsolationError``) unless ``GradeOptions.insecure`` says to grade with limits only.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..notebook import NotebookError, extract_code, read_notebook
from . import gpu as _gpu
from . import layout
from . import sandbox as _sandbox
from .reports import cap, report_problem, tests_problem
from .rubric import load_rubric
from .submissions import NothingToGrade, Submission, discover  # noqa: F401 - NothingToGrade: for callers

ENGINE_VERSION = 3


class _IsolationError(RuntimeError):
    """Strong isolation (bubblewrap) is not available and grading without it was not asked for."""


IsolationError = getattr(_sandbox, "IsolationError", None) or _IsolationError


class WorkerDeviceError(IsolationError):
    """A worker that must train on the GPU cannot reach CUDA: the grading machine's problem, never the student's, so the
    batch stops instead of writing zeros (or CPU-trained grades under GPU limits)."""


class GradingInterrupted(Exception):
    """A batch stopped by SIGINT or SIGTERM, after writing the gradebook of what is done; ``exit_code`` is 128 + signal."""

    def __init__(self, signum: int, done: int, total: int, out: Path, gradebook: bool = True):
        self.signum, self.done, self.total, self.out = signum, done, total, out
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        written = f"their reports and {out / 'gradebook.csv'} are" if gradebook else \
            f"their reports are (a shard writes no gradebook: `coursekit gradebook {out}` builds it)"
        super().__init__(f"interrupted by {name}: {done} of {total} submission(s) are graded, {written} "
                         f"written; run the same command again to grade the other {total - done} (what is done is skipped)")


class _Stopped(Exception):
    """This submission's grading was stopped by the batch's stop: nothing of it is kept."""


@dataclass
class GradeOptions:
    profile: str | None = None  # smoke | full; None: full where there is a GPU, else smoke
    # Seconds for a whole submission's grading, of an idle machine: the grading stops once it has run that long on
    # the wall clock AND its process tree (grader and workers) has used that many CPU seconds per worker thread of the
    # profile (so a busy machine does not stop an honest grading), or at ``wall_factor`` times that on the wall clock.
    timeout: float = 1800.0
    wall_factor: float = 4.0  # the wall-clock cap of a whole grading, as a multiple of ``timeout``
    call_timeout: float | None = None  # seconds per probe call (default: the profile's)
    force: bool = False  # grade again even where a report exists
    env: dict = field(default_factory=dict)  # extra environment for the grader process (e.g. CUDA_VISIBLE_DEVICES)
    insecure: bool = False  # grade even without bubblewrap: the student's code then runs with limits only


def strong_isolation_available() -> bool:
    """Can the student's code run in bubblewrap's sandbox here? (the sandbox module's answer where it has one)"""
    fn = getattr(_sandbox, "strong_isolation_available", None)
    if fn is not None:
        return bool(fn())
    return _sandbox._which_isolation() == "bubblewrap"


def check_isolation(options: GradeOptions) -> None:
    """Refuse (``IsolationError``) to grade untrusted code without the sandbox unless ``options.insecure``."""
    if not options.insecure and not strong_isolation_available():
        raise IsolationError(
            "the sandbox for student code (bubblewrap) is not available here, so nothing was graded: install bubblewrap "
            "(apt-get install bubblewrap) and allow unprivileged user namespaces, or grade with --insecure, where the "
            "student's code runs with limits only, as the grader's user, and can read or change what that user can")


def graded_assignments() -> list[str]:
    root = paths.autograder_dir()
    return sorted(p.name for p in root.iterdir() if (p / "rubric.json").is_file()) if root.is_dir() else []


def ready_to_grade(assignments: list[str] | None, options: GradeOptions) -> tuple[list[str], list[str]]:
    """The assignments to grade (default: every graded one) and all graded ones, once it is sure that each has graders,
    that the sandbox ``options`` ask for can start and that the reference outputs were measured on the course data."""
    known = graded_assignments()
    assignments = list(assignments or known)
    unknown = [a for a in assignments if a not in known]
    if unknown:
        raise ValueError(f"no graders for {unknown}; graded assignments: {known}")
    check_isolation(options)
    check_reference_outputs(assignments)
    return assignments, known


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


# --- the grader process and everything it starts -----------------------------------------------
def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    kids: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return kids
    for d in names:
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _descendants(pid: int) -> list[int]:
    kids, found, todo = _children(), [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in found:
                found.append(c)
                todo.append(c)
    return found


def kill_process_tree(proc: subprocess.Popen) -> None:
    """Kill a process started with ``start_new_session=True``, its process group and every process below it,
    also those in sessions of their own (the sandboxed workers call setsid): the tree is frozen first
    (SIGSTOP), so nothing in it starts anything new while it is being killed."""
    if proc.poll() is not None:
        return
    own = {0, 1, os.getpgrp()}
    try:
        os.killpg(proc.pid, signal.SIGSTOP)
    except OSError:
        pass
    tree: list[int] = []
    for _ in range(5):  # until no new process turns up
        new = [p for p in _descendants(proc.pid) if p not in tree]
        if not new:
            break
        for p in new:
            try:
                os.kill(p, signal.SIGSTOP)
            except OSError:
                pass
        tree += new
    groups = {proc.pid}
    for p in tree:
        try:
            groups.add(os.getpgid(p))
        except OSError:
            pass
    for g in groups - own:
        try:
            os.killpg(g, signal.SIGKILL)
        except OSError:
            pass
    for p in [proc.pid, *tree]:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()


def _tail(path: Path, n: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _profile_threads(assignment: str, profile: str) -> int:
    """The worker threads the grading profile allows (``threads`` of the assignment's profiles.json; 1 if unsaid)."""
    try:
        threads = json.loads((paths.autograder_dir() / assignment / "profiles.json").read_text())[profile].get("threads", 1)
        return max(1, int(threads))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 1


def _run_grader(cmd: list[str], env: dict, work: Path, timeout: float, stop: threading.Event | None, threads: int = 1,
                wall_factor: float = 4.0) -> tuple[str, str, str]:
    """Run the grader process in a session of its own; (status, log, why) with status ok, timeout or stopped, and
    ``why`` the student's message for a timeout. On a timeout or a stop, the process and all it started are killed.

    ``timeout`` is in seconds of an idle machine (see ``GradeOptions.timeout``): past it on the wall clock, the grading
    goes on while its process tree has used at most ``timeout × threads`` CPU seconds (a busy machine gave it less),
    up to ``timeout × wall_factor`` wall-clock seconds. Never stopped sooner than ``timeout`` on the wall clock."""
    out_path, err_path = work / "grader.out", work / "grader.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=paths.kit_root(), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    start = time.monotonic()
    cap = start + timeout * wall_factor
    next_look = start + timeout  # no look at the CPU time before: nothing stops before ``timeout`` of wall clock
    status, why, cpu = "ok", "", 0.0
    try:
        while True:
            try:
                proc.wait(timeout=max(0.01, min(0.2, next_look - time.monotonic())))
                if stop is not None and proc.returncode in (-signal.SIGTERM, -signal.SIGINT) and stop.wait(2.0):
                    status = "stopped"  # the grader got the batch's stop signal too (Slurm signals every process of a job)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if stop is not None and stop.is_set():
                    status = "stopped"
                elif now >= next_look:
                    cpu = _sandbox.tree_cpu_seconds(proc.pid)  # the grader, its workers and what they started
                    if cpu / threads > timeout:
                        status, why = "timeout", f"grading took longer than {timeout:.0f} s and was stopped"
                    elif now >= cap:
                        status, why = "timeout", (f"grading took longer than {timeout * wall_factor:.0f} s of wall-clock time, "
                                                  f"the hard cap ({wall_factor:g} × its {timeout:.0f} s limit), and was stopped")
                    else:
                        next_look = min(now + 1.0, cap)
                        continue
                else:
                    continue
                kill_process_tree(proc)
                break
    finally:
        if proc.poll() is None:  # an error in this thread: leave nothing running
            kill_process_tree(proc)
    log = _tail(out_path, 20000) + _tail(err_path, 5000)
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    if status == "timeout":
        log += (f"\n{why} (after {time.monotonic() - start:.0f} s of wall clock and {cpu:.0f} CPU seconds of the grader's "
                f"process tree; the limit allows {timeout:.0f} s × {threads} thread(s))")
    return status, log, why


def report_key(sub: Submission, profile: str) -> dict:
    nb_hash = hashlib.sha256(sub.notebook.read_bytes()).hexdigest() if sub.notebook else "none"
    return {"notebook_sha256": nb_hash, "graders": _grader_hash(sub.assignment), "profile": profile, "engine": ENGINE_VERSION}


def done_report(dest: Path, key: dict, rubric, feedback: Path | None = None) -> dict | None:
    """The report in ``dest`` if it counts as done: same key, exactly the rubric's tests with valid points (and, given
    ``feedback``, the student's files there)."""
    try:
        old = json.loads((dest / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or old.get("key") != key or report_problem(old, rubric):
        return None
    if feedback is not None and not all((feedback / name).is_file() for name in layout.STUDENT_FILES):
        return None
    return old


def _student_id(sub: Submission) -> str:
    from .gradebook import student_id_of

    return student_id_of(sub)


def _in_rubric_order(tests: list[dict], rubric) -> list[dict]:
    """The tests in the rubric's order, which is the notebook's (not pytest's order of files)."""
    order = {tid: i for i, tid in enumerate(rubric.items)}
    return sorted(tests, key=lambda t: order.get(t.get("id"), len(order)))


def grade_submission(sub: Submission, out: str | Path, options: GradeOptions | None = None,
                     stop: threading.Event | None = None) -> dict:
    """Grade one submission; returns its report (also written under ``out``). With ``stop`` set while it
    runs, its grader is killed, nothing of it is kept and ``_Stopped`` is raised."""
    from ..envinfo import describe_environment
    from .reports import write_feedback, write_gradescope

    options = options or GradeOptions()
    profile = options.profile or default_profile()
    out = Path(out).resolve()  # the grader process runs in the kit's folder, not this one
    dest = layout.staff_dir(out, sub.folder, sub.assignment)
    fb_dest = layout.feedback_dir(out, sub.folder, sub.assignment)
    for d in (dest, fb_dest):
        if out.resolve() not in d.resolve().parents:  # Submission.folder is made safe; this only guards against misuse
            raise ValueError(f"refuses to write outside {out}: {d}")
    rubric = load_rubric(sub.assignment)
    key = report_key(sub, profile)
    if not options.force:
        old = done_report(dest, key, rubric, fb_dest)
        if old is not None:
            old["skipped"] = True
            return old
    if stop is not None and stop.is_set():
        raise _Stopped

    t0 = time.monotonic()
    work = dest.parent / f".{sub.assignment}.partial"
    fb_work = fb_dest.parent / f".{sub.assignment}.partial"
    for w in (work, fb_work):
        shutil.rmtree(w, ignore_errors=True)
    (work / "artifacts").mkdir(parents=True)
    fb_work.mkdir(parents=True)
    try:
        code, problem = _check_notebook(sub)
        grader_seconds, workers = 0.0, []
        if problem:
            results = _zero_report(sub, problem, profile)
        else:
            (work / "submission.py").write_text(code, encoding="utf-8", errors="surrogateescape")
            results_path = work / "grader-results.json"
            cmd = [sys.executable, "-m", "pytest", str(paths.autograder_dir() / sub.assignment), "-q", "-p", "no:cacheprovider",
                   "--assert=plain", "-o", "addopts=", "--submission", str(work / "submission.py"), "--results", str(results_path),
                   "--artifacts", str(work / "artifacts"), "--profile", profile, "--rootdir", str(paths.kit_root())]
            if options.call_timeout:
                cmd += ["--call-timeout", str(options.call_timeout)]
            env = {**os.environ, "MPLBACKEND": "Agg", **options.env}
            env[_gpu.ENV_WORKER_INFO] = str(work / "workers.jsonl")  # each worker's device, told by the sandbox
            env.pop("COURSEKIT_INSECURE", None)
            if options.insecure:
                env["COURSEKIT_INSECURE"] = "1"
            g0 = time.monotonic()
            status, log, why = _run_grader(cmd, env, work, options.timeout, stop, _profile_threads(sub.assignment, profile),
                                           options.wall_factor)
            if status == "stopped":
                raise _Stopped
            grader_seconds = time.monotonic() - g0
            workers = _worker_lines(work / "workers.jsonl")
            (work / "workers.jsonl").unlink(missing_ok=True)
            staff = [w["staff_error"] for w in workers if w.get("staff_error")]
            if staff:
                raise WorkerDeviceError(f"{sub.student}/{sub.assignment}: {staff[0]}")
            results = None  # after a timeout, none: ``why`` says which limit stopped it
            if status != "timeout" and results_path.is_file():
                try:
                    results = json.loads(results_path.read_text(encoding="utf-8"))
                    bad = "" if results.get("finished") is True else "the grading session did not finish"
                    bad = bad or tests_problem(results.get("tests"), rubric)
                except (OSError, ValueError, AttributeError) as e:
                    bad = f"unreadable ({e})"
                results_path.unlink()
                if bad:
                    log += f"\nthe grader's results do not cover the rubric: {bad}"
                    results = None
            if results is None:
                results = _zero_report(sub, why or "grading did not finish; the course staff have the log", profile)
            (work / "grader.log").write_text(log, encoding="utf-8", errors="replace")
        tests = [{**t, "name": cap(t["name"], 200), "message": cap(t.get("message", ""))}
                 for t in _in_rubric_order(results["tests"], rubric)]
        env_info = describe_environment()
        report = {
            "student": sub.student,
            "folder": sub.folder,
            "student_id": _student_id(sub),  # for the LMS exports (gradebook.student_id_of)
            "assignment": sub.assignment,
            "notebook": cap(sub.notebook, 1000) if sub.notebook else None,
            "key": key,
            "profile": results.get("profile", profile),
            "isolation": results.get("isolation"),
            "insecure": bool(options.insecure),
            "device": env_info["device"],
            "versions": {k: env_info[k] for k in ("coursekit", "python", "torch", "numpy", "nbgrader")},
            "seeds": "fixed per test (see each grader)",
            "points": round(sum(t["points"] for t in tests), 4),
            "max_points": round(sum(t["max_points"] for t in tests), 4),
            "tests": tests,
            "problem": cap(results.get("problem", "")),
            # what grading left out of the notebook (top-level work, cells that do not parse), for the student
            "notes": [cap(n, 500) for n in (results.get("notes") or [])[:50] if isinstance(n, str)],
            "grader_seconds": round(grader_seconds, 3),
            "test_seconds": round(sum(float(t.get("seconds", 0.0)) for t in tests), 3),
            "total_seconds": round(time.monotonic() - t0, 3),
            "worker_starts": results.get("worker_starts", 0),
            # the device the sandboxed worker ran on, as it said before the student's code ran (None: no worker started)
            "worker_device": workers[-1].get("device") if workers else None,
            "graded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_gradescope(report, fb_work / "results.json")
        write_feedback(report, fb_work / "feedback.html", work / "artifacts")
        (work / "report.tmp").write_text(json.dumps(report, indent=1), encoding="utf-8")
        os.replace(work / "report.tmp", work / "report.json")
    except BaseException:
        for w in (work, fb_work):
            shutil.rmtree(w, ignore_errors=True)  # a report is either complete or absent
        raise
    # swap the finished folders into place: the student's files first, the report (what counts as done) last
    for w, d in ((fb_work, fb_dest), (work, dest)):
        if d.exists():
            shutil.rmtree(d)
        os.replace(w, d)
    return report


def _drop_withdrawn(out: Path, found, say, shard=None) -> None:
    """Remove the reports (and feedback) of assignments a student found now no longer hands in: a grade of a
    notebook that is gone must not stay in the gradebook (given a ``shard``, only those of its own part)."""
    from .reports import plain

    handed_in = {(s.folder, s.assignment) for s in found.submissions}
    for st in found.students:
        for a in found.scope:
            staff = layout.staff_dir(out, st.folder, a)
            if (st.folder, a) not in handed_in and (shard is None or shard.holds(st.student, a)) and (staff / "report.json").is_file():
                shutil.rmtree(staff, ignore_errors=True)
                shutil.rmtree(layout.feedback_dir(out, st.folder, a), ignore_errors=True)
                say(f"{plain(st.student, 60)}: {a} is no longer among the inputs; its earlier report and feedback were removed")


def grade_batch(inputs: list[str | Path], out: str | Path, assignments: list[str] | None = None, jobs: int = 1,
                options: GradeOptions | None = None, progress: bool = True, log=None, shard=None) -> list[dict]:
    """Grade every submission found in ``inputs`` (see ``submissions.discover``): each student's notebooks for
    ``assignments`` (default: every graded assignment; an assignment a student did not hand in is "not submitted",
    with no report). Writes the student's files under ``OUT/feedback``, the staff's under ``OUT/staff`` and the
    gradebook and summaries in ``OUT`` (see ``layout``); ``log`` gets what was found and any warning.

    Refuses (``IsolationError``) before anything is graded where the sandbox is missing, unless
    ``options.insecure``, and (``NothingToGrade``) where the inputs hold no submission. On SIGINT or SIGTERM (when
    called from the main thread) it stops cleanly and raises ``GradingInterrupted`` after writing the gradebook of
    the complete reports.

    With ``shard`` (``shards.Shard``) only that part of the submissions is graded, into an ``out`` other shards share:
    the roster is written, the gradebook is not (``shards.merge`` builds it once the shards are done)."""
    from tqdm.auto import tqdm

    from .gradebook import STALE, build_gradebook, write_gradebook, write_roster
    from .reports import plain

    say = log or (lambda message: None)
    options = options or GradeOptions()
    assignments, known = ready_to_grade(assignments, options)
    out = Path(out)
    found = discover(inputs, assignments, unzip_into=out / ".unzipped" / (shard.slug if shard else ""), known=known)
    say(found.summary())
    out.mkdir(parents=True, exist_ok=True)
    old = layout.old_layout_reports(out)
    if old:
        say(f"{out} holds {len(old)} report(s) in the layout before {layout.FEEDBACK}/ and {layout.STAFF}/ "
            f"(e.g. {old[0].relative_to(out)}): they are not used, and those submissions are graded again; delete those "
            "folders once this run is done")
    _drop_withdrawn(out, found, say, shard)
    gpus = _gpu_count()
    profile = options.profile or default_profile()
    if gpus and profile == "full":  # every GPU this batch uses must reach its sandboxed worker before anything is graded
        for g in sorted({_gpu.assign_slot(slot, jobs, gpus)[0] for slot in range(max(1, jobs))}):
            _sandbox.check_gpu_worker(_gpu.slot_env(g, jobs, gpus, profile))
    t_batch = time.monotonic()
    reports: list[dict] = []
    subs: list[Submission] = []
    stop = threading.Event()
    signum: list[int] = []

    def on_signal(num, frame):
        if not signum:
            signum.append(num)
        stop.set()

    free_slots = queue.SimpleQueue()  # job slots not grading now: one each for the pool's threads
    for slot in range(max(1, jobs)):
        free_slots.put(slot)

    def run(sub: Submission) -> dict:
        slot = free_slots.get()  # never two gradings at once on one slot, so no two workers on one slot's GPU share
        try:
            opts = options
            if gpus:  # the slot's GPU (shared when jobs > GPUs, each worker with its share of the memory): gpu.slot_env
                opts = GradeOptions(**{**options.__dict__, "env": {**options.env, **_gpu.slot_env(slot, jobs, gpus, profile)}})
            return grade_submission(sub, out, opts, stop)
        finally:
            free_slots.put(slot)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    bar = None
    try:
        subs = found.submissions
        if shard is not None:
            subs = [s for s in subs if shard.holds(s.student, s.assignment)]
            say(f"shard {shard}: {len(subs)} of the {len(found.submissions)} submission(s)")
        bar = tqdm(total=len(subs), desc="grading", unit="submission", disable=not progress)
        pending = {pool.submit(run, s): s for s in subs}
        while pending:
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            if stop.is_set():  # no new work; the running graders see the stop and are killed
                for fut in pending:
                    fut.cancel()
                pool.shutdown(wait=True)
                finished = {f for f in pending if f.done() and not f.cancelled()}
            for fut in finished:
                s = pending.pop(fut)
                try:
                    rep = fut.result()
                except _Stopped:
                    continue
                reports.append(rep)
                bar.set_postfix_str(plain(f"{s.student}/{s.assignment}: {rep['points']:g}/{rep['max_points']:g}", 60)
                                    + (" (done before)" if rep.get("skipped") else ""))
                bar.update()
            if stop.is_set():
                break
    except BaseException:
        stop.set()  # an error: the other graders stop too
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reports.sort(key=lambda r: (r["student"], r["assignment"]))
    graded_now = sum(1 for r in reports if not r.get("skipped"))
    rate = _gpu.per_gpu_hour(graded_now, time.monotonic() - t_batch, gpus)
    if rate:
        say(f"{graded_now} submission(s) graded in {time.monotonic() - t_batch:.0f} s on {gpus} GPU(s), {jobs} at a time: "
            f"{rate:.0f} submissions per GPU-hour")
    done = {(r.get("folder"), r["assignment"]) for r in reports}
    write_roster(out, found, inputs)
    if shard is not None:  # the gradebook is the merge's: shards sharing ``out`` never race over it
        if stop.is_set():
            raise GradingInterrupted(signum[0] if signum else signal.SIGINT, len(reports), len(subs), out, gradebook=False)
        return reports
    exclude = {(s.folder, s.assignment) for s in subs} - done
    write_gradebook(out, exclude=exclude)
    stale = build_gradebook(out, exclude).stale
    if stale:
        say(f"{len(stale)} student(s) graded earlier into {out} are not in these inputs: "
            + ", ".join(plain(r.student, 40) for r in stale[:10]) + (" ..." if len(stale) > 10 else "")
            + f"; they stay in {layout.GRADEBOOK}, flagged '{STALE}' (delete their folders under {layout.STAFF}/ and "
            f"{layout.FEEDBACK}/ to drop them), and are left out of {layout.LMS}")
    if stop.is_set():
        raise GradingInterrupted(signum[0] if signum else signal.SIGINT, len(reports), len(subs), out)
    return reports


def _worker_lines(path: Path) -> list[dict]:
    """What the sandbox recorded about each worker of a grading (``gpu.ENV_WORKER_INFO``), oldest first."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            w = json.loads(line)
        except ValueError:
            continue
        if isinstance(w, dict):
            found.append(w)
    return found


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
