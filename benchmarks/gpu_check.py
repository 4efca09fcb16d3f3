"""The device check: does grading work on this machine's GPU, within its budget? (one GPU, the kit installed)

    python benchmarks/gpu_check.py --dry-run            # any machine: the plan, and the pieces checked, nothing graded
    python benchmarks/gpu_check.py                      # a GPU machine: full profile sized for the GPU (gpu_sizing.json)
    python benchmarks/gpu_check.py --sizing committed   # a GPU machine: the committed full profile, its references checked

On a GPU it prints the versions and the GPU, then in a scratch copy of the kit (``--out``, default a temporary
folder; the kit's own files are never written):

1. with ``--sizing gpu`` (the default), each assignment's ``full`` profile replaced by ``benchmarks/gpu_sizing.json``,
   rebuilds the full-profile reference outputs there (``coursekit reference --profile full --no-evaluators``);
   with ``--sizing committed``, checks the committed full-profile reference outputs (``--check``);
2. grades, in the full profile, inside the sandbox, ``--jobs`` at a time sharing the GPU (each worker capped at its
   share of the GPU's memory), the reference solution, the untouched student notebook and each typical mistake
   (``autograder/<assignment>/mistakes.py``) of each assignment;
3. prints a table: assignment, example, points, seconds, the longest test's seconds, the GPU memory peak
   (``nvidia-smi``: the whole GPU's, during that grading, so with other gradings running beside it) and the device
   the worker said it used, and the submissions per GPU-hour.

It exits non-zero when anything is wrong: no GPU, no bubblewrap, a reference rebuild that fails (or drifts), the
reference solution short of full marks, a mistake that passes a test it must fail, a worker not on CUDA, a training
test over ``--test-limit`` seconds (2 min) or the whole check over ``--budget`` seconds (8 min).

With ``--dry-run`` (or on a machine without a GPU, where it says so and stops) nothing is graded or trained: it
prints the versions, the plan, and checks the pieces: bubblewrap, the GPU device nodes the sandbox would bind, the
sizing file against each assignment's profiles, the reference outputs and the runner files (Dockerfile, runner.def).
"""

from __future__ import annotations

import argparse
import calendar
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIZING = Path(__file__).resolve().parent / "gpu_sizing.json"
RUNNER_FILES = ("Dockerfile", "runner.def")
KIT_PARTS = ("autograder", "solutions", "assignments")  # copied into the scratch kit, with data/


# --- pieces ---------------------------------------------------------------------------------------------------------
def load_sizing(path: Path, assignments: list[str]) -> tuple[dict, list[str]]:
    """({assignment: GPU-sized full profile}, problems): each entry must hold every key of the committed full profile
    (nested ones too; a training config may add ``device``) and nothing else, so that it can take its place."""
    from coursekit import paths

    problems = []
    try:
        sizing = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        return {}, [f"{path}: cannot be read as JSON ({e})"]
    for a in assignments:
        entry = sizing.get(a)
        if not isinstance(entry, dict):
            problems.append(f"{path}: no entry for {a}")
            continue
        full = json.loads((paths.autograder_dir() / a / "profiles.json").read_text()).get("full", {})
        for key, value in full.items():
            if key not in entry:
                problems.append(f"{path}: {a} lacks {key!r} (the committed full profile has it)")
            elif isinstance(value, dict):
                if not isinstance(entry[key], dict):
                    problems.append(f"{path}: {a}.{key} must be an object, as in the committed full profile")
                    continue
                missing = set(value) - set(entry[key])
                extra = set(entry[key]) - set(value) - {"device"}
                if missing or extra:
                    problems.append(f"{path}: {a}.{key} lacks {sorted(missing)} / has unknown {sorted(extra)}")
        extra = set(entry) - set(full)
        if extra:
            problems.append(f"{path}: {a} has keys the full profile does not: {sorted(extra)}")
    return {a: sizing[a] for a in assignments if isinstance(sizing.get(a), dict)}, problems


def check_pieces(assignments: list[str], sizing_path: Path, sizing_mode: str) -> tuple[list[str], list[str]]:
    """(lines to print, problems) about what the check needs, without training anything."""
    from coursekit import paths
    from coursekit.grading import gpu
    from coursekit.grading.engine import check_reference_outputs, strong_isolation_available
    from coursekit.grading.examples import load_mistakes, mistake_list_problems

    lines, problems = [], []
    if strong_isolation_available():
        lines.append("sandbox: bubblewrap works here")
    else:
        problems.append("bubblewrap does not work here: the check grades inside the sandbox (apt-get install bubblewrap)")
    gpus = gpu.list_gpus()
    lines.append(f"GPUs the driver lists: {len(gpus)}" + "".join(f"\n  {g.index}: /dev/nvidia{g.minor} {g.uuid} {g.bus}" for g in gpus))
    if gpus:
        try:
            lines.append("device nodes a job slot on GPU 0 gets: " + " ".join(gpu.device_nodes(gpus[0])))
        except gpu.GpuError as e:
            problems.append(str(e))
    sized, bad = load_sizing(sizing_path, assignments)
    if sizing_mode == "gpu":
        problems += bad
        limits = {"call_timeout", "load_timeout", "memory_mb", "cpu_seconds", "threads"}
        for a, entry in sized.items():
            lines.append(f"{a}: full profile for the GPU: {json.dumps({k: v for k, v in entry.items() if k not in limits})}")
    try:
        check_reference_outputs(assignments)
    except Exception as e:  # noqa: BLE001 - any reason the committed references do not fit this kit's data
        problems.append(f"reference outputs: {e}")
    for a in assignments:
        problems += [f"{a}/mistakes.py: {p}" for p in mistake_list_problems(a)]
        lines.append(f"{a}: grades the reference, the untouched notebook and {len(load_mistakes(a))} mistake(s): "
                     + ", ".join(load_mistakes(a)))
    for name in RUNNER_FILES:
        if not (paths.kit_root() / name).is_file():
            problems.append(f"{paths.kit_root() / name} is missing (the runner image)")
    return lines, problems


# --- on the GPU -----------------------------------------------------------------------------------------------------
class MemoryWatch:
    """The GPU's used memory, from ``nvidia-smi`` every half second, in a thread: ``peak(t0, t1)`` in MiB."""

    def __init__(self, index: int = 0):
        self.samples: list[tuple[float, int]] = []
        self.index, self._stop = index, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", str(self.index)],
                                     capture_output=True, text=True, timeout=10).stdout
                self.samples.append((time.time(), int(out.split()[0])))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                pass
            self._stop.wait(0.5)

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def peak(self, t0: float, t1: float) -> int | None:
        seen = [mib for t, mib in self.samples if t0 - 1 <= t <= t1 + 1]
        return max(seen) if seen else None


def scratch_kit(dest: Path, sizing: dict | None) -> Path:
    """A copy of the kit's graders, solutions, assignments and data in ``dest``, with each assignment's
    full profile replaced by ``sizing`` where given."""
    from coursekit import paths

    root = paths.kit_root()
    dest.mkdir(parents=True, exist_ok=True)
    for part in KIT_PARTS:
        if (root / part).is_dir():
            shutil.copytree(root / part, dest / part, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    if (root / "data").is_dir():  # a copy, not a link: the sandbox binds the students' data at the kit's data/ path
        shutil.copytree(root / "data", dest / "data", dirs_exist_ok=True)
    for a, entry in (sizing or {}).items():
        prof = dest / "autograder" / a / "profiles.json"
        profiles = json.loads(prof.read_text())
        profiles["full"] = entry
        prof.write_text(json.dumps(profiles, indent=1) + "\n")
    return dest


def judge(assignment: str, example: str, report: dict, mistakes: dict, test_limit: float) -> list[str]:
    """What is wrong with one example's report."""
    wrong = []
    device = str(report.get("worker_device") or "")
    if not device.startswith("cuda"):
        wrong.append(f"the worker ran on {device or 'nothing'}, not CUDA")
    if example == "reference" and report["points"] < report["max_points"]:
        lost = [t["id"] for t in report["tests"] if not t["passed"]]
        wrong.append(f"the reference solution got {report['points']:g}/{report['max_points']:g} (failed: {', '.join(lost)})")
    if example in mistakes:
        passed = {t["id"] for t in report["tests"] if t["passed"]}
        wrongly = [tid for tid in mistakes[example]["fails"] if tid in passed]
        if wrongly:
            wrong.append(f"passes what it must fail: {', '.join(wrongly)}")
    slow = [t for t in report["tests"] if float(t.get("seconds", 0)) > test_limit]
    if slow:
        wrong.append("over the time limit per test: " + ", ".join(f"{t['id']} {float(t['seconds']):.0f} s" for t in slow))
    return wrong


def run_on_gpu(args, assignments: list[str], sizing: dict | None, log=print) -> int:
    import os

    from coursekit.grading.engine import GradeOptions, grade_batch
    from coursekit.grading.examples import load_mistakes, make_examples
    from coursekit.reference import build_reference

    t_start = time.monotonic()
    out = Path(args.out or tempfile.mkdtemp(prefix="coursekit-gpu-check-"))
    kit = scratch_kit(out / "kit", sizing)
    old_root = os.environ.get("COURSEKIT_ROOT")
    os.environ["COURSEKIT_ROOT"] = str(kit)
    problems, rows = [], []
    try:
        if not args.skip_reference:
            t0 = time.monotonic()
            res = build_reference(assignments, ["full"], evaluators=False, check=args.sizing == "committed", log=log)
            log(f"reference outputs ({'checked' if args.sizing == 'committed' else 'rebuilt'}) in {time.monotonic() - t0:.0f} s")
            problems += [f"reference drift: {d}" for d in res.drift]
        with MemoryWatch() as watch:
            for a in assignments:
                mistakes = load_mistakes(a)
                made = make_examples(a, out / "submissions" / a, max_mistakes=args.max_mistakes)
                reports = grade_batch([out / "submissions" / a], out / "grades" / a, [a], jobs=args.jobs,
                                      options=GradeOptions(profile="full", force=True), progress=False, log=log)
                by_name = {r["student"]: r for r in reports}
                for name in made:
                    rep = by_name.get(name)
                    if rep is None:
                        problems.append(f"{a}/{name}: no report")
                        continue
                    t1 = calendar.timegm(time.strptime(rep["graded_at"], "%Y-%m-%dT%H:%M:%SZ")) + 1
                    t0 = t1 - float(rep["total_seconds"]) - 1
                    wrong = judge(a, name, rep, mistakes, args.test_limit)
                    problems += [f"{a}/{name}: {w}" for w in wrong]
                    longest = max((float(t.get("seconds", 0)) for t in rep["tests"]), default=0.0)
                    rows.append((a, name, f"{rep['points']:g}/{rep['max_points']:g}", f"{float(rep['total_seconds']):.0f}",
                                 f"{longest:.0f}", watch.peak(t0, t1), rep.get("worker_device"), "ok" if not wrong else "WRONG"))
    except Exception as e:  # noqa: BLE001 - the check reports whatever stopped it, and fails
        problems.append(f"stopped: {type(e).__name__}: {e}")
    finally:
        if old_root is None:
            os.environ.pop("COURSEKIT_ROOT", None)
        else:
            os.environ["COURSEKIT_ROOT"] = old_root
    total = time.monotonic() - t_start
    log(table(rows))
    graded = len(rows)
    if graded:
        log(f"{graded} grading(s) in {total:.0f} s, {args.jobs} at a time on one GPU: {graded / (total / 3600):.0f} "
            "submissions per GPU-hour (the reference rebuild included)")
    if total > args.budget:
        problems.append(f"the check took {total:.0f} s, over its budget of {args.budget:.0f} s")
    log(f"scratch kit, submissions and reports: {out}")
    for p in problems:
        log(f"WRONG: {p}")
    log("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


def table(rows: list[tuple]) -> str:
    head = ("assignment", "example", "points", "seconds", "longest test s", "GPU MiB peak", "worker device", "")
    cells = [head] + [tuple("-" if v is None else str(v) for v in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="print the plan and check the pieces; grade nothing")
    ap.add_argument("--sizing", choices=["gpu", "committed"], default="gpu",
                    help="gpu: the full profile of gpu_sizing.json, references rebuilt (default); committed: as committed, checked")
    ap.add_argument("--sizing-file", type=Path, default=SIZING, help=f"the GPU sizing (default {SIZING.name})")
    ap.add_argument("--assignment", action="append", help="only this assignment (repeatable; default: all graded)")
    ap.add_argument("--jobs", type=int, default=4, help="submissions graded at once, sharing the GPU (default 4)")
    ap.add_argument("--max-mistakes", type=int, default=None, help="grade only the first N mistakes of each assignment")
    ap.add_argument("--skip-reference", action="store_true", help="do not rebuild or check the reference outputs")
    ap.add_argument("--test-limit", type=float, default=120.0, help="seconds one grader test may take (default 120)")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds the whole check may take (default 480)")
    ap.add_argument("--out", help="scratch folder (default: a new temporary folder)")
    args = ap.parse_args(argv)

    from coursekit.envinfo import environment_line
    from coursekit.grading.engine import graded_assignments

    print(environment_line())
    smi = shutil.which("nvidia-smi")
    if smi:
        print(subprocess.run([smi, "-L"], capture_output=True, text=True).stdout.strip())
    known = graded_assignments()
    assignments = args.assignment or known
    unknown = sorted(set(assignments) - set(known))
    if unknown:
        print(f"gpu_check: no graders for {unknown} (graded: {known})", file=sys.stderr)
        return 2
    lines, problems = check_pieces(assignments, args.sizing_file, args.sizing)
    print("\n".join(lines))
    plan = (f"plan: in a scratch copy of the kit, {'rebuild' if args.sizing == 'gpu' else 'check'} the full-profile reference "
            f"outputs of {', '.join(assignments)}{' (skipped)' if args.skip_reference else ''}, then grade each example above "
            f"in the full profile ({'sized by ' + args.sizing_file.name if args.sizing == 'gpu' else 'as committed'}), {args.jobs} at "
            f"a time sharing the GPU, in the sandbox; limits: {args.test_limit:.0f} s per test, {args.budget:.0f} s in all")
    print(plan)
    for p in problems:
        print(f"WRONG: {p}")
    if problems:
        return 1
    if args.dry_run:
        print("dry run: the pieces are in place; nothing was graded")
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no GPU here (torch.cuda.is_available() is false): run it on a GPU machine, or with --dry-run",
              file=sys.stderr)
        return 2
    sizing = load_sizing(args.sizing_file, assignments)[0] if args.sizing == "gpu" else None
    return run_on_gpu(args, assignments, sizing)


if __name__ == "__main__":
    sys.exit(main())
