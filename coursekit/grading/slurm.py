"""Grading a course on a Slurm cluster: one job array, one shard per array task (``shards``), through ``sbatch``.

``batch_script`` writes the array's batch script: task ``K`` of ``N`` runs ``coursekit grade INPUTS -o OUT --shard
K/N`` with the kit of the submitting environment (a shared installation: its Python, by absolute path) or inside an
Apptainer image (``apptainer exec --nv IMAGE coursekit grade ...``), one GPU per task (``--gres=gpu:G``). A TA can
submit that script by hand (``sbatch OUT/.slurm/grade.sbatch``) and merge with ``coursekit gradebook OUT``.

``grade_on_slurm`` does all of it: finds the submissions, writes the roster and the script, submits the array, waits
with a progress bar over the complete reports in ``OUT`` (the shared file system is the only channel: a task's word
is its reports), resubmits the shards that ended with reports missing (a task killed, cancelled, out of time or
memory) at most ``retries`` times, and merges the gradebook. Slurm does the scheduling; nothing here decides where
or when a task runs. The tasks' own logs are ``OUT/.slurm/<job>_<task>.log``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .shards import Merged, shard_of

ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING",
          "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED", "RESV_DEL_HOLD"}  # squeue's states of a task not over yet
MAX_ARRAY = 1000  # Slurm's default MaxArraySize is 1001: task ids 0..1000


class SlurmError(RuntimeError):
    """Slurm refused or failed a command; the message holds its answer."""


@dataclass
class SlurmOptions:
    partition: str | None = None  # -p; None: the cluster's default partition
    gpus_per_task: int = 1  # --gres=gpu:G per task (one grader per GPU); 0 on CPU-only nodes
    cpus_per_task: int = 4  # -c: the grader, its sandboxed workers and data loading
    mem: str | None = None  # --mem per task, e.g. "16G"; None: the partition's default
    time: str = "02:00:00"  # --time per task (HH:MM:SS or D-HH:MM:SS): a whole shard, with retries of the runner's own
    max_parallel: int | None = None  # %M: at most M tasks at once (None: as many as Slurm gives)
    shards: int | None = None  # array size N; None: the number of submissions (at most MAX_ARRAY)
    retries: int = 2  # times the shards with reports missing are submitted again
    image: str | None = None  # an Apptainer image (.sif) holding the kit; None: this Python, a shared installation
    sbatch_args: list[str] = field(default_factory=list)  # more sbatch options (e.g. --account=X, --qos=Y)
    job_name: str = "coursekit-grade"
    poll: float = 2.0  # seconds between looks at squeue and the reports


def logs_dir(out: Path) -> Path:
    """Where the scripts and the tasks' logs go: a dot folder, never a student's (student folders never start with a dot)."""
    return Path(out).resolve() / ".slurm"


def task_command(inputs: list, out: Path, grade_args: list[str], image: str | None) -> list[str]:
    """The command of one task, less its ``--shard``: absolute paths, since the task starts in another folder."""
    args = ["grade", *[str(Path(p).resolve()) for p in inputs], "-o", str(Path(out).resolve()), *grade_args]
    if image:
        binds = sorted({str(Path(out).resolve()), *(str(Path(p).resolve().parent) for p in inputs)})
        return ["apptainer", "exec", "--nv", *[x for b in binds for x in ("--bind", b)], str(image), "coursekit", *args]
    return [sys.executable, "-m", "coursekit.cli", *args]


def batch_script(inputs: list, out: Path, count: int, opts: SlurmOptions, grade_args: list[str] = ()) -> str:
    """The job array's batch script: ``count`` tasks, task K grading shard K/count."""
    if not 1 <= count <= MAX_ARRAY + 1:
        raise ValueError(f"{count} shards: a job array holds 1 to {MAX_ARRAY + 1} tasks (Slurm's default MaxArraySize)")
    logs = logs_dir(out)
    lines = ["#!/bin/bash", f"#SBATCH --job-name={opts.job_name}",
             f"#SBATCH --array=0-{count - 1}" + (f"%{opts.max_parallel}" if opts.max_parallel else ""),
             f"#SBATCH --output={logs}/%A_%a.log", f"#SBATCH --cpus-per-task={opts.cpus_per_task}", f"#SBATCH --time={opts.time}"]
    if opts.partition:
        lines.append(f"#SBATCH --partition={opts.partition}")
    if opts.gpus_per_task:
        lines.append(f"#SBATCH --gres=gpu:{opts.gpus_per_task}")
    if opts.mem:
        lines.append(f"#SBATCH --mem={opts.mem}")
    lines += [f"#SBATCH {a}" for a in opts.sbatch_args]
    cmd = " ".join(shlex.quote(c) for c in task_command(inputs, out, list(grade_args), opts.image))
    lines += [
        "# Written by `coursekit grade --backend slurm`: one task per shard of the submissions (coursekit/grading/shards.py).",
        f"# By hand: mkdir -p {shlex.quote(str(logs))} && sbatch THIS_FILE; once the array is done, `coursekit gradebook "
        f"{shlex.quote(str(Path(out).resolve()))}` builds the gradebook and lists what is missing (run the script again to",
        "# grade only that: finished reports are skipped).",
        "set -euo pipefail",
        "export MPLBACKEND=Agg",
    ]
    if os.environ.get("COURSEKIT_ROOT"):
        lines.append(f"export COURSEKIT_ROOT={shlex.quote(os.environ['COURSEKIT_ROOT'])}")
    lines.append(f'exec {cmd} --shard "${{SLURM_ARRAY_TASK_ID}}/{count}"')
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], timeout: float = 60) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(f"{cmd[0]} is not installed here: run coursekit grade --backend slurm on a node that can submit "
                         "jobs (a login node), or submit the script of --dry-run there") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{' '.join(cmd)} did not answer within {timeout:.0f} s") from None
    if r.returncode != 0:
        raise SlurmError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-1000:]}")
    return r.stdout


def submit(script: Path, array: str | None = None, extra: list[str] = ()) -> str:
    """sbatch the script (``array``: other task ids than the script's, e.g. ``"2,5"``); returns the job id."""
    cmd = ["sbatch", "--parsable", *([f"--array={array}"] if array else []), *extra, str(script)]
    return _run(cmd).strip().split(";")[0]


def task_states(job_id: str) -> dict[int, str]:
    """Array task id -> squeue's state, for the tasks squeue still knows (finished ones for MinJobAge)."""
    try:
        text = _run(["squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%i %T"])
    except SlurmError as e:
        if "Invalid job id" in str(e):  # gone from the controller's memory: over
            return {}
        raise
    states = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and "_" in parts[0]:
            task = parts[0].rsplit("_", 1)[1]
            if task.isdigit():
                states[int(task)] = parts[1]
    return states


def cancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, timeout=60)


@dataclass
class SlurmResult:
    merged: Merged
    jobs: list[str]  # the job ids submitted: the array, then each resubmission
    resubmitted: list[list[int]]  # the shards each resubmission held
    shards: int
    missing_shards: list[int]  # shards with reports still missing after the last try


def grade_args(options, assignments: list[str] | None, profile: str) -> list[str]:
    """The ``coursekit grade`` options a task gets for ``options`` (``GradeOptions``): the profile always, since the
    node that grades and the node that submits may differ in having a GPU."""
    args = ["--profile", profile, "--timeout", f"{options.timeout:g}"]
    if options.call_timeout:
        args += ["--call-timeout", f"{options.call_timeout:g}"]
    for a in assignments or []:
        args += ["-a", a]
    if options.insecure:
        args.append("--insecure")
    if options.force:
        args.append("--force")
    return args


def default_profile(slurm: SlurmOptions) -> str:
    """full where the tasks get a GPU, smoke where they do not (``engine.default_profile``, for the task's node)."""
    return "full" if slurm.gpus_per_task else "smoke"


def grade_on_slurm(inputs: list, out: str | Path, assignments: list[str] | None = None, options=None,
                   slurm: SlurmOptions | None = None, progress: bool = True, log=None, on_submit=None) -> SlurmResult:
    """Grade ``inputs`` into ``out`` through a Slurm job array (see the module's docstring) with ``options``
    (``GradeOptions``; its profile, where unset, from ``default_profile``); ``on_submit(job_id)`` is called after each
    sbatch. Ctrl-C cancels the array. Returns what was submitted and the merge's answer."""
    from tqdm.auto import tqdm

    from . import layout
    from .engine import GradeOptions, done_report, ready_to_grade, report_key
    from .gradebook import write_roster
    from .rubric import load_rubric
    from .shards import merge
    from .submissions import discover

    say = log or (lambda message: None)
    slurm = slurm or SlurmOptions()
    options = options or GradeOptions()
    assignments, known = ready_to_grade(assignments, options)  # the tasks check again; this says it before anything is queued
    out = Path(out).resolve()
    found = discover(inputs, assignments, unzip_into=out / ".unzipped" / "submitter", known=known)
    say(found.summary())
    out.mkdir(parents=True, exist_ok=True)
    write_roster(out, found, inputs)
    subs = found.submissions
    count = slurm.shards or max(1, min(len(subs), MAX_ARRAY + 1))
    profile = options.profile or default_profile(slurm)
    args = grade_args(options, list(assignments) if assignments != known else None, profile)
    rubrics = {a: load_rubric(a) for a in {s.assignment for s in subs}}
    keys = {id(s): report_key(s, profile) for s in subs}

    def missing() -> list:
        return [s for s in subs if done_report(layout.staff_dir(out, s.folder, s.assignment), keys[id(s)], rubrics[s.assignment],
                                               layout.feedback_dir(out, s.folder, s.assignment)) is None]

    logs = logs_dir(out)
    logs.mkdir(parents=True, exist_ok=True)
    script = logs / "grade.sbatch"
    script.write_text(batch_script(inputs, out, count, slurm, args))
    # a retry must not grade again what is done: without --force
    retry_script = logs / "grade-retry.sbatch"
    retry_script.write_text(batch_script(inputs, out, count, slurm, [a for a in args if a != "--force"]))
    jobs: list[str] = []
    resubmitted: list[list[int]] = []
    todo = len(missing())
    say(f"{len(subs)} submission(s) in {count} shard(s) (a job array of {count} task(s)); {len(subs) - todo} graded before; "
        f"script {script}, task logs {logs}/<job>_<task>.log")
    bar = tqdm(total=len(subs), initial=len(subs) - todo, desc="grading on slurm", unit="submission", disable=not progress)
    job = None
    try:
        array = None
        for attempt in range(slurm.retries + 1 if todo else 0):  # all graded before: nothing to submit
            job = submit(script if attempt == 0 else retry_script, array)
            jobs.append(job)
            if on_submit is not None:
                on_submit(job)
            say(f"submitted job {job}" + (f" (shards {array}, try {attempt + 1})" if array else ""))
            fails = 0
            while True:
                try:
                    states = task_states(job)
                    fails = 0
                except SlurmError as e:  # a busy controller: look again, give up after a minute or so of errors
                    fails += 1
                    if fails > max(10, int(60 / max(slurm.poll, 0.1))):
                        raise
                    say(f"squeue did not answer ({e}); trying again")
                    time.sleep(slurm.poll)
                    continue
                left = missing()
                bar.update(len(subs) - len(left) - bar.n)
                if not any(s in ACTIVE for s in states.values()):
                    break
                time.sleep(slurm.poll)
            job = None
            lost = sorted({shard_of(s.student, s.assignment, count) for s in left})
            if not lost:
                break
            failed = {t: st for t, st in states.items() if t in lost}
            say(f"{len(left)} submission(s) of shard(s) {', '.join(map(str, lost))} have no complete report after job "
                f"{jobs[-1]} (task states: {', '.join(f'{t}: {st}' for t, st in sorted(failed.items())) or 'unknown'}; logs "
                f"{logs}/{jobs[-1]}_<task>.log)")
            if attempt < slurm.retries:
                array = ",".join(map(str, lost))
                resubmitted.append(lost)
    except BaseException:
        if job is not None:
            cancel(job)
            say(f"cancelled job {job}")
        raise
    finally:
        bar.close()
    left = missing()
    keyed = {(s.folder, s.assignment) for s in left}
    merged = merge(out, exclude=keyed)
    return SlurmResult(merged, jobs, resubmitted, count, sorted({shard_of(s.student, s.assignment, count) for s in left}))
