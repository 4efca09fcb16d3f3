"""Same grade everywhere: the reference solution and every typical mistake, graded under several CPU settings.

    python benchmarks/same_grade_everywhere.py                      # gan, vae and pixelrnn, every setting
    python benchmarks/same_grade_everywhere.py --quick              # pixelrnn only
    python benchmarks/same_grade_everywhere.py --assignments vae --settings default avx2-machine

A student's points must not depend on the machine that graded them. Each setting grades the same
example submissions (``coursekit.grading.examples``: the reference, the untouched student version, one
notebook per mistake of ``autograder/<a>/mistakes.py``) through the real engine (sandbox included),
smoke profile by default, and the table shows the points per setting, whether they are identical,
and the smallest margin of a threshold decision that the report messages let us read (failed
decisions print their measured value; see ``MARGINS``). Exit status 1 when any points differ.
``--out DIR`` keeps the reports; ``--table-only --out DIR`` prints the table of a kept run again.

Settings (``SETTINGS``):

- ``default``: nothing changed;
- ``aten-default``: ``ATEN_CPU_CAPABILITY=default``, ATen's portable kernels instead of AVX2/AVX-512;
- ``avx2-machine``: what a CPU without AVX-512 runs: ATen's AVX2 kernels, oneDNN (convolutions) and MKL
  (matrix products) limited to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``: the kit's evaluator features and
  the old ``torch.cdist`` then round differently, which is how ``tests/test_metrics.py`` failed there);
- ``threads-1`` / ``threads-2``: the grader process's OpenMP/MKL/torch threads (its default is one per
  core, so ``threads-2`` is ``default`` on a 2-core machine; the worker's torch threads are pinned by
  the grading profile's ``threads``, whatever the environment);
- ``load``: a busy process on each other core while grading (timings, time limits, scheduling).

How the settings reach the process that runs the student's code: the sandbox passes the worker only
``PATH``, ``LANG``, ``LC_ALL``, ``CUDA_VISIBLE_DEVICES`` and the ``COURSEKIT_ROOT/DATA/DATASET``
variables, and pins ``OMP_NUM_THREADS`` and ``torch.set_num_threads`` to the profile's ``threads``.
Kernel variables (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``, ``MKL_*``) would never reach it, so
this benchmark puts a ``bwrap`` (and ``unshare``) wrapper first on the grader's ``PATH`` (which the
sandbox passes on, and which it uses to find its launcher) that adds ``--setenv NAME VALUE`` for
each; before grading, a check starts a worker the engine's way and reads back what it sees (the
``reaches worker`` lines). Grading with ``COURSEKIT_ISOLATION=rlimits`` (no launcher) cannot be reached
this way: the benchmark says so and grades anyway (grader-side settings only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KERNEL_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Setting:
    """grader: environment of the grader process (its metrics); worker: kernel variables for the student's process
    too (through the launcher wrapper); load: busy processes on the other cores while grading."""
    grader: dict = field(default_factory=dict)
    worker: dict = field(default_factory=dict)
    load: bool = False


def _kernels(**env) -> Setting:
    return Setting(grader=dict(env), worker=dict(env))


SETTINGS = {
    "default": Setting(),
    "aten-default": _kernels(ATEN_CPU_CAPABILITY="default"),
    "avx2-machine": _kernels(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", MKL_ENABLE_INSTRUCTIONS="AVX2"),
    "threads-1": Setting(grader={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
    "threads-2": Setting(grader={"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}),
    "load": Setting(load=True),
}
DEFAULT_SETTINGS = ("default", "aten-default", "avx2-machine", "threads-2", "load")

# Threshold decisions whose measured value a failure message prints: (regex on the message, assignment's expected.json
# path to the threshold, "max" or "min", scale of the printed value). The margin is |value - threshold| / |threshold|.
MARGINS = {
    "gan": [(r"FID is ([\d.]+)", ("training", "thresholds", "fid_max"), "max", 1.0),
            (r"KID is ([\d.]+)", ("training", "thresholds", "kid_max"), "max", 1.0),
            (r"precision is ([\d.]+)", ("training", "thresholds", "precision_min"), "min", 1.0),
            (r"coverage is ([\d.]+)", ("training", "thresholds", "coverage_min"), "min", 1.0),
            (r"(\d+)% of 500 samples from different noise vectors", ("training", "thresholds", "duplicate_rate_max"), "max", 0.01),
            (r"pairwise distance ratio ([\d.]+)", ("training", "thresholds", "pairwise_distance_ratio_min"), "min", 1.0)],
    "vae": [(r"negative ELBO is ([\d.]+) bits", ("training", "{profile}", "thresholds", "heldout_bpp", "max"), "max", 1.0),
            (r"FID ([\d.]+) is too high", ("training", "{profile}", "thresholds", "fid", "max"), "max", 1.0),
            (r"coverage ([\d.]+) is too low", ("training", "{profile}", "thresholds", "coverage", "min"), "min", 1.0),
            (r"Z_U = (-?[\d.]+) in feature space", ("training", "{profile}", "thresholds", "copying_z_features", "min"), "min", 1.0)],
    "pixelrnn": [(r"held-out loss is ([\d.]+) bits per pixel", ("training", "{profile}", "threshold_bpp"), "max", 1.0)],
}


# --- getting the settings into the worker ------------------------------------------------------------------------
def launcher_wrappers(env: dict) -> Path | None:
    """A new folder holding ``bwrap`` and ``unshare`` wrappers that start the real launcher with ``env`` added for the
    worker; put it first on the grader's PATH, remove it afterwards. None when ``env`` is empty. It lies in the
    system's temporary folder, which the sandbox's user can reach: a launcher it cannot reach is silently skipped
    for the real one (which is why ``check_reaches_worker`` exists)."""
    if not env:
        return None
    folder = Path(tempfile.mkdtemp(prefix="same-grade-launchers-"))
    os.chmod(folder, 0o755)  # the launcher runs as the sandbox's user
    assigns = " ".join(f"{k}={v}" for k, v in env.items())
    for name, line in (("bwrap", " ".join(f"--setenv {k} {v}" for k, v in env.items())), ("unshare", None)):
        real = shutil.which(name, path=os.environ.get("PATH", os.defpath))
        if not real:
            continue
        body = f'exec {real} {line} "$@"' if line else f'exec env {assigns} {real} "$@"'
        p = folder / name
        p.write_text(f"#!/bin/sh\n# same_grade_everywhere.py: the worker gets {assigns}\n{body}\n")
        os.chmod(p, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return folder


def grader_env(setting: Setting, wrappers: Path | None) -> dict:
    env = dict(setting.grader)
    if wrappers is not None:
        env["PATH"] = f"{wrappers}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    return env


_WORKER_PROBE = '''
import os
import torch

def probe_settings(sub):
    return {"env": {k: os.environ.get(k, "") for k in %r}, "capability": str(torch.backends.cpu.get_cpu_capability()),
            "threads": torch.get_num_threads()}
''' % (KERNEL_VARS + THREAD_VARS,)


def worker_sees(env: dict, threads: int = 1) -> dict:
    """Start a worker the engine's way, with the grader's environment ``env`` (PATH included), and return what it sees."""
    from coursekit.grading.sandbox import Limits, Sandbox, environ_set

    with environ_set(env), tempfile.TemporaryDirectory(prefix="same-grade-") as d:
        code, probes = Path(d) / "submission.py", Path(d) / "probes.py"
        code.write_text("")
        probes.write_text(_WORKER_PROBE)
        with Sandbox(code, probes, Limits(threads=threads, call_timeout=120), insecure=os.environ.get("COURSEKIT_INSECURE") == "1") as sb:
            out = sb.call("settings")
            out["isolation"] = sb.isolation
            return out


def check_reaches_worker(name: str, setting: Setting, env: dict) -> tuple[bool, str]:
    try:
        seen = worker_sees(env)
    except Exception as e:  # noqa: BLE001 - said in the output, the grading still runs
        return False, f"{name}: the check could not start a worker: {type(e).__name__}: {e}"
    missing = {k: v for k, v in setting.worker.items() if seen["env"].get(k) != v}
    line = (f"{name}: worker ({seen['isolation']}) sees capability {seen['capability']}, {seen['threads']} torch thread(s), "
            + (", ".join(f"{k}={v}" for k, v in seen["env"].items() if v) or "no kernel variables"))
    return not missing, line + (f"; NOT reached: {missing}" if missing else "")


# --- background load -----------------------------------------------------------------------------------------------
def start_load() -> list[subprocess.Popen]:
    n = max(1, (os.cpu_count() or 2) - 1)
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()  # our own children, by their process
        p.wait()


# --- grading and the table -----------------------------------------------------------------------------------------
def _threshold(expected: dict, path: tuple, profile: str):
    v = expected
    for k in path:
        v = v[k.format(profile=profile)]
    return float(v)


def smallest_margin(assignment: str, report: dict, profile: str) -> float | None:
    """The smallest relative margin of a threshold decision read from the report's failure messages (None: none read)."""
    from coursekit import paths

    expected = json.loads((paths.autograder_dir() / assignment / "expected.json").read_text())
    found = []
    for t in report["tests"]:
        for pattern, path, _kind, scale in MARGINS.get(assignment, []):
            m = re.search(pattern, t.get("message", ""))
            if m:
                try:
                    thr = _threshold(expected, path, profile)
                except (KeyError, TypeError, ValueError):
                    continue
                found.append(abs(float(m.group(1)) * scale - thr) / max(abs(thr), 1e-12))
    return min(found) if found else None


def grade_setting(assignments: list[str], name: str, setting: Setting, out: Path, profile: str, jobs: int,
                  timeout: float, log=print) -> dict:
    """{(assignment, submission): report} for one setting."""
    from coursekit.grading.engine import GradeOptions
    from coursekit.grading.examples import grade_examples

    wrappers = launcher_wrappers(setting.worker)
    env = grader_env(setting, wrappers)
    if setting.worker:
        ok, line = check_reaches_worker(name, setting, env)
        log(("reaches worker: " if ok else "DOES NOT reach the worker: ") + line)
    load = start_load() if setting.load else []
    try:
        reports = {}
        for a in assignments:
            t0 = time.monotonic()
            opts = GradeOptions(profile=profile, force=True, env=env, timeout=timeout,
                                insecure=os.environ.get("COURSEKIT_INSECURE") == "1")
            for sub, rep in grade_examples(a, out / name / a, jobs=jobs, options=opts).items():
                reports[(a, sub)] = rep
            log(f"{name}: {a} graded in {time.monotonic() - t0:.0f} s")
        return reports
    finally:
        stop_load(load)
        if wrappers is not None:
            shutil.rmtree(wrappers, ignore_errors=True)


_SOME_TESTS = r'''
import json, sys
import pytest

class Collector:
    """The grading plugin writes results only for a whole rubric; a few grader files are read from its state here."""
    results = {}

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        from coursekit.grading.pytest_plugin import _KEY
        Collector.results = {tid: {"points": r["points"], "passed": r["passed"], "message": r.get("message", "")}
                             for tid, r in session.config.stash[_KEY].results.items()}

out, args = sys.argv[1], sys.argv[2:]
code = pytest.main(args, plugins=[Collector()])
json.dump(Collector.results, open(out, "w"))
sys.exit(0 if code in (0, 1) else int(code))
'''


def grade_some_tests(assignment: str, notebook: str | Path, test_files: list[str], setting: Setting, scratch: Path,
                     profile: str = "smoke", timeout: float = 600.0) -> dict[str, dict]:
    """Run only ``test_files`` of ``autograder/<assignment>`` on ``notebook`` (sandbox included) under ``setting``;
    returns {test id: {"points", "passed", "message"}}. For quick checks: the engine grades whole rubrics only."""
    from coursekit import paths

    scratch.mkdir(parents=True, exist_ok=True)
    wrappers = launcher_wrappers(setting.worker)
    env = {**os.environ, "MPLBACKEND": "Agg", **grader_env(setting, wrappers)}
    out = scratch / "results.json"
    folder = paths.autograder_dir() / assignment
    cmd = [sys.executable, "-c", _SOME_TESTS, str(out), *[str(folder / f) for f in test_files], "-q", "-p", "no:cacheprovider",
           "--assert=plain", "-o", "addopts=", "--submission", str(notebook), "--profile", profile, "--rootdir", str(paths.kit_root())]
    load = start_load() if setting.load else []
    try:
        run = subprocess.run(cmd, env=env, cwd=scratch, capture_output=True, text=True, timeout=timeout)
    finally:
        stop_load(load)
        if wrappers is not None:
            shutil.rmtree(wrappers, ignore_errors=True)
    if run.returncode != 0 or not out.is_file():
        raise RuntimeError(f"grading {notebook} failed (exit {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return json.loads(out.read_text())


def kept_reports(folder: Path, assignments: list[str]) -> dict:
    """{(assignment, submission): report} of one setting's folder of an earlier run (``--out``)."""
    found = {}
    for a in assignments:
        for path in sorted((folder / a / "grades" / "staff").glob(f"*/{a}/report.json")):
            rep = json.loads(path.read_text())
            found[(a, rep["student"])] = rep
    return found


def table(results: dict[str, dict], profile: str) -> tuple[str, bool]:
    """The table (text) and whether every submission got the same points in every setting."""
    names = list(results)
    keys = sorted({k for r in results.values() for k in r})
    head = ["submission", *names, "identical", "min margin"]
    rows, same_all = [], True
    for key in keys:
        pts = [results[n][key]["points"] if key in results[n] else None for n in names]
        same = len({p for p in pts}) == 1 and None not in pts
        same_all &= same
        margins = [smallest_margin(key[0], results[n][key], profile) for n in names if key in results[n]]
        margins = [m for m in margins if m is not None]
        tests_differ = ""
        if not same:
            outcomes = {n: {t["id"]: round(t["points"], 4) for t in results[n][key]["tests"]} for n in names if key in results[n]}
            ids = sorted({i for o in outcomes.values() for i in o if len({outcomes[n].get(i) for n in outcomes}) > 1})
            tests_differ = " (" + ", ".join(i.split("::")[-1] for i in ids) + ")"
        rows.append([f"{key[0]}/{key[1]}", *[("-" if p is None else f"{p:g}") for p in pts],
                     ("yes" if same else "NO" + tests_differ), f"{min(margins):.3f}" if margins else "-"])
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, rows)]), same_all


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignments", nargs="+", default=None, help="default: gan vae pixelrnn")
    ap.add_argument("--quick", action="store_true", help="pixelrnn only")
    ap.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), choices=sorted(SETTINGS))
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--jobs", type=int, default=1, help="submissions graded at once (1: the settings alone decide the load)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per submission")
    ap.add_argument("--out", default=None, help="keep the reports here (default: a temporary folder, removed)")
    ap.add_argument("--json", default=None, help="write {setting: {assignment/submission: points}} here")
    ap.add_argument("--table-only", action="store_true", help="grade nothing: the table of the reports kept in --out")
    args = ap.parse_args(argv)
    if args.table_only and not args.out:
        ap.error("--table-only needs --out, the folder of an earlier run")
    assignments = args.assignments or (["pixelrnn"] if args.quick else ["gan", "vae", "pixelrnn"])
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="same-grade-"))
    from coursekit.envinfo import describe_environment

    print(f"same grade everywhere: {', '.join(assignments)}; profile {args.profile}; settings {', '.join(args.settings)}; "
          f"{os.cpu_count()} CPU(s); {describe_environment().get('device', '')}", flush=True)
    t0 = time.monotonic()
    results = {}
    try:
        for name in args.settings if not args.table_only else []:
            results[name] = grade_setting(assignments, name, SETTINGS[name], out, args.profile, args.jobs, args.timeout,
                                          log=lambda s: print(s, flush=True))
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    if args.table_only:
        results = {name: kept_reports(out / name, assignments) for name in args.settings if (out / name).is_dir()}
    text, same = table(results, args.profile)
    print()
    print(text)
    print(f"\n{'identical points in every setting' if same else 'POINTS DIFFER between settings'} "
          f"({time.monotonic() - t0:.0f} s; min margin: the smallest |value - threshold| / |threshold| of a failed threshold "
          "decision read from the report messages, '-' where none prints its value)")
    if args.json:
        Path(args.json).write_text(json.dumps({n: {f"{a}/{s}": r["points"] for (a, s), r in res.items()} for n, res in results.items()},
                                              indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
