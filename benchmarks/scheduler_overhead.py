"""What going through Slurm costs per submission: the same batch graded with ``--jobs 2`` and through a Slurm job
array (two tasks at once, one CPU each: the same parallelism), and what a course costs in GPU-hours.

    python benchmarks/scheduler_overhead.py                          # the toy kit, 6 submissions, a one-node Slurm
    python benchmarks/scheduler_overhead.py --examples pixelrnn      # the assignment's example submissions instead
    python benchmarks/scheduler_overhead.py --examples vae --profile full --gpus-per-task 1   # on a GPU cluster

Uses the Slurm the environment names (``SLURM_CONF`` or the machine's own, where ``sinfo`` answers); otherwise it
starts the tests' one-node cluster (``tests/slurm_cluster.py``: root and apt-get needed). Prints the wall-clock time
of each run, the mean grading time of a submission, the scheduler's overhead per submission
((Slurm's wall - --jobs' wall) / submissions, the same parallelism), and the GPU-hours of a course of ``--students``
students and ``--assignments`` assignments at the measured per-submission time (a GPU-hour per submission-hour:
one grader per GPU). The figures hold for the machine and profile measured; the README says which.
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

ROOT = Path(__file__).resolve().parent.parent


def _slurm_here() -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _toy_class(folder: Path, n: int) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from toy_batch import CODES, toy_class

    codes = list(CODES.values())
    return toy_class(folder, {f"student{i:03d}": codes[i % len(codes)] for i in range(n)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=6, help="toy submissions (default: 6)")
    ap.add_argument("--examples", help="grade this assignment's example submissions (coursekit's own kit) instead of the toy kit")
    ap.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    ap.add_argument("--gpus-per-task", type=int, default=0)
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--assignments", type=int, default=3)
    args = ap.parse_args(argv)

    from coursekit.envinfo import environment_line
    from coursekit.grading import slurm
    from coursekit.grading.engine import GradeOptions, grade_batch, strong_isolation_available

    print(environment_line())
    tmp = Path(tempfile.mkdtemp(prefix="coursekit-sched-"))
    cluster = None
    try:
        if args.examples:
            from coursekit.grading.examples import make_examples

            made = make_examples(args.examples, tmp / "class")
            cls, n = tmp / "class", len(made)
        else:
            os.environ["COURSEKIT_ROOT"] = str(ROOT / "tests" / "fixtures" / "toykit")
            cls, n = _toy_class(tmp / "class", args.n), args.n
        if not _slurm_here():
            sys.path.insert(0, str(ROOT / "tests"))
            from slurm_cluster import start_cluster

            cluster = start_cluster()
            os.environ.update(cluster.env)
            print(f"started a one-node Slurm ({cluster.cpus} CPUs) in {cluster.root}")
        opts = GradeOptions(profile=args.profile, insecure=not strong_isolation_available())

        t0 = time.monotonic()
        local = grade_batch([cls], tmp / "jobs", jobs=2, options=opts, progress=False)
        t_jobs = time.monotonic() - t0
        t0 = time.monotonic()
        res = slurm.grade_on_slurm([cls], tmp / "slurm", options=opts, progress=False,
                                   slurm=slurm.SlurmOptions(gpus_per_task=args.gpus_per_task, cpus_per_task=1, shards=n, poll=0.5,
                                                            time="01:00:00"))
        t_slurm = time.monotonic() - t0
        if res.merged.missing:
            print(f"Slurm left {len(res.merged.missing)} submission(s) ungraded: see {tmp / 'slurm' / '.slurm'}")
            return 1
        per_sub = sum(r["total_seconds"] for r in local) / len(local)
        overhead = (t_slurm - t_jobs) / n
        print(f"{n} submission(s), profile {args.profile}, isolation {local[0].get('isolation')}")
        print(f"--jobs 2:             {t_jobs:7.1f} s wall, {t_jobs / n:6.1f} s per submission")
        print(f"Slurm, 2 tasks at once: {t_slurm:5.1f} s wall, {t_slurm / n:6.1f} s per submission ({n} array tasks, "
              f"{len(res.jobs)} sbatch)")
        print(f"grading one submission: {per_sub:.1f} s (mean of the reports' total_seconds)")
        print(f"scheduler overhead: {overhead:+.1f} s per submission ({100 * overhead / max(per_sub, 1e-9):+.0f}% of its grading)")
        subs = args.students * args.assignments
        hours = subs * (per_sub + max(overhead, 0.0)) / 3600
        print(f"a course of {args.students} students x {args.assignments} assignments = {subs} gradings at this profile: "
              f"{hours:.1f} {'GPU' if args.gpus_per_task else 'CPU-slot'}-hours (one grader per "
              f"{'GPU' if args.gpus_per_task else 'slot'}, overhead included)")
        return 0
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
