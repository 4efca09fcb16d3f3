"""Does the Gradescope bundle grade within Gradescope's default limits (768 MB of memory, 10 minutes)?

    python benchmarks/gradescope_bundle.py                       # vae: the reference and its first mistake
    python benchmarks/gradescope_bundle.py -a pixelrnn -a gan    # other assignments
    python benchmarks/gradescope_bundle.py --memory-mb 768 --minutes 10 --cpus 0.5 --examples reference untouched

For each assignment: ``coursekit export gradescope`` writes the zip, a temporary folder is laid out like Gradescope's
``/autograder`` (``gradescope.lay_out_like_gradescope``: the zip in ``source/``, ``run_autograder`` beside it), and
for each example submission (``grading.examples``: the reference solution, a typical mistake...) ``run_autograder``
runs with this machine's Python, as Gradescope runs it, in a memory cgroup limited like Gradescope's container
(``--memory-mb``; cgroup v1 or v2, where this machine lets root make one; otherwise the process tree's summed
resident memory is sampled, which counts shared pages once per process, so it overstates) and, like Gradescope's
default container, to half a CPU's time (``--cpus``, a CPU cgroup; where none can be made, the benchmark says the times
understate Gradescope's). Prints, per submission:
the points, the wall-clock seconds, the peak memory (the cgroup's, page cache of the files read included, and the
peak of its anonymous memory, sampled: what a limit cannot reclaim) and whether both are within the limits; exit code 1 when one is
not, or when the reference does not get full marks or a mistake gets them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from coursekit.envinfo import environment_line
from coursekit.export.gradescope import BundleConfig, build_bundle, lay_out_like_gradescope
from coursekit.grading.examples import load_mistakes, make_examples


class _Cgroup:
    """A cgroup this benchmark made (``path``; None where none could be made), for one command."""

    path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None

    def add_self(self) -> None:
        """For preexec_fn: the child joins the cgroup before it runs the command (and all it starts stays in it)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def close(self) -> None:
        if self.path is not None:
            for _ in range(50):
                try:
                    self.path.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
            self.path = None


class MemoryCgroup(_Cgroup):
    """A memory cgroup limited to ``mb`` for a command (v2 ``memory.max``/``memory.peak``, or v1's files); ``ok`` is
    False where none can be made here."""

    def __init__(self, mb: int):
        self.path: Path | None = None
        self.v2 = Path("/sys/fs/cgroup/cgroup.controllers").is_file()
        name = f"coursekit-gradescope-{os.getpid()}"
        base = Path("/sys/fs/cgroup") if self.v2 else Path("/sys/fs/cgroup/memory")
        try:
            p = base / name
            p.mkdir()
            self.path = p
            if self.v2:
                (p / "memory.max").write_text(str(mb * 1024 * 1024))
                (p / "memory.swap.max").write_text("0") if (p / "memory.swap.max").exists() else None
            else:
                (p / "memory.limit_in_bytes").write_text(str(mb * 1024 * 1024))
                if (p / "memory.memsw.limit_in_bytes").exists():  # no swap beyond the limit, as in a container without swap
                    try:
                        (p / "memory.memsw.limit_in_bytes").write_text(str(mb * 1024 * 1024))
                    except OSError:
                        pass
        except OSError:
            self.close()

    def peak_mb(self) -> float:
        f = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return int((self.path / f).read_text()) / 2**20
        except (OSError, ValueError):
            return float("nan")

    def anon_mb(self) -> float:
        """What the cgroup holds now that the kernel cannot drop under pressure (anonymous memory and tmpfs, MB): the
        peak counts the page cache of the files read too, which a limit reclaims before it kills anything."""
        try:
            stat = dict(line.split() for line in (self.path / "memory.stat").read_text().splitlines())
            if self.v2:
                return (int(stat.get("anon", 0)) + int(stat.get("shmem", 0))) / 2**20
            return (int(stat.get("total_rss", 0)) + int(stat.get("total_shmem", 0))) / 2**20
        except (OSError, ValueError):
            return float("nan")

    def oom_kills(self) -> int:
        try:
            if self.v2:
                events = dict(line.split() for line in (self.path / "memory.events").read_text().splitlines())
                return int(events.get("oom_kill", 0))
            return int(dict(line.split() for line in (self.path / "memory.oom_control").read_text().splitlines()).get("oom_kill", 0))
        except (OSError, ValueError):
            return 0


class CpuCgroup(_Cgroup):
    """A CPU limit of ``cpus`` CPUs' worth of time for a command (v1 ``cpu.cfs_quota_us`` in a cgroup of its own; v2
    ``cpu.max`` on the memory cgroup ``beside``, since under v2 a process is in one cgroup only), as Gradescope's
    container has (half a virtual CPU by default); ``ok`` is False where the limit could not be set here."""

    PERIOD_US = 100_000

    def __init__(self, cpus: float, beside: MemoryCgroup | None = None):
        quota = max(1000, int(cpus * self.PERIOD_US))
        self.shared = Path("/sys/fs/cgroup/cgroup.controllers").is_file()
        try:
            if self.shared:  # v2: the limit goes on the memory cgroup the command joins anyway
                if beside is None or not beside.ok:
                    return
                (beside.path / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
                self.path = beside.path
                return
            p = Path("/sys/fs/cgroup/cpu") / f"coursekit-gradescope-cpu-{os.getpid()}"
            p.mkdir()
            self.path = p
            (p / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (p / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError:
            self.close()

    def add_self(self) -> None:
        if not self.shared:  # v2: joining the memory cgroup did it
            super().add_self()

    def close(self) -> None:
        if self.shared:
            self.path = None  # the memory cgroup's, removed by it
        else:
            super().close()


def _tree_rss_mb(pid: int) -> float:
    """The summed resident memory of ``pid`` and its descendants (from /proc)."""
    kids: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
                kids.setdefault(int(stat[1]), []).append(int(d))
                rss[int(d)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                pass
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += rss.get(p, 0)
        todo += kids.get(p, [])
    return total / 2**20


def run_once(root: Path, memory_mb: int, minutes: float, cpus: float | None = None) -> dict:
    """``root/run_autograder`` in limited cgroups (memory; CPU time where ``cpus`` is given); its results and what it used."""
    env = {**os.environ, "COURSEKIT_AUTOGRADER_ROOT": str(root), "COURSEKIT_PYTHON": sys.executable}
    (root / "results" / "results.json").unlink(missing_ok=True)
    cg = MemoryCgroup(memory_mb)
    cpu = CpuCgroup(cpus, beside=cg) if cpus else None
    joins = [g.add_self for g in (cg, cpu) if g is not None and g.ok]
    peak_rss, peak_anon = [0.0], [0.0]
    t0 = time.monotonic()
    proc = subprocess.Popen([str(root / "run_autograder")], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=(lambda: [j() for j in joins]) if joins else None, start_new_session=True)
    done = threading.Event()

    def sample():
        while not done.wait(0.25):
            peak_rss[0] = max(peak_rss[0], _tree_rss_mb(proc.pid))
            if cg.ok:
                peak_anon[0] = max(peak_anon[0], cg.anon_mb())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        out, _ = proc.communicate(timeout=minutes * 60 + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, _ = proc.communicate()
    wall = time.monotonic() - t0
    done.set()
    watcher.join()
    result = {"wall": wall, "rc": proc.returncode, "stdout": out.decode("utf-8", "replace"), "rss_peak_mb": peak_rss[0],
              "cgroup": cg.ok, "peak_mb": cg.peak_mb() if cg.ok else peak_rss[0], "oom_kills": cg.oom_kills() if cg.ok else 0,
              "anon_peak_mb": peak_anon[0] if cg.ok else float("nan"), "cpu_limited": bool(cpu and cpu.ok)}
    cg.close()
    if cpu is not None:
        cpu.close()
    try:
        result["results"] = json.loads((root / "results" / "results.json").read_text())
    except (OSError, ValueError):
        result["results"] = None
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-a", "--assignment", action="append", help="assignment (repeatable; default: vae)")
    p.add_argument("--examples", nargs="+", help="example submissions (default: reference and the first mistake)")
    p.add_argument("--memory-mb", type=int, default=768, help="Gradescope's memory limit (default: 768)")
    p.add_argument("--minutes", type=float, default=10.0, help="Gradescope's time limit (default: 10)")
    p.add_argument("--cpus", type=float, default=0.5,
                   help="CPUs' worth of time the container gets (default 0.5, Gradescope's default; 0: no limit)")
    args = p.parse_args(argv)
    print(environment_line())
    if args.cpus:
        mem = MemoryCgroup(args.memory_mb)
        probe = CpuCgroup(args.cpus, beside=mem)
        print(f"CPU: {args.cpus:g} CPU through a cgroup" if probe.ok else
              f"CPU: no cgroup could be made here, so the runs are NOT limited to {args.cpus:g} CPU: the times understate Gradescope's")
        probe.close()
        mem.close()
    failed = False
    with tempfile.TemporaryDirectory(prefix="coursekit-gs-bench-") as tmp:
        tmp = Path(tmp)
        for a in args.assignment or ["vae"]:
            names = args.examples or ["reference", next(iter(load_mistakes(a)))]
            made = make_examples(a, tmp / a / "examples")
            zip_path = build_bundle(BundleConfig(a, timeout=args.minutes * 60 - 60), tmp / a / "autograder.zip")
            print(f"{a}: bundle {zip_path.stat().st_size / 1e6:.1f} MB")
            for name in names:
                root = lay_out_like_gradescope(zip_path, tmp / a / name / "autograder", link_package=True)
                shutil.copy(made[name], root / "submission" / f"{a}.ipynb")
                r = run_once(root, args.memory_mb, args.minutes, args.cpus or None)
                res = r["results"] or {}
                score = res.get("score")
                total = sum(t.get("max_score", 0) for t in res.get("tests", []))
                within = r["wall"] <= args.minutes * 60 and r["peak_mb"] <= args.memory_mb and not r["oom_kills"]
                right = score is not None and ((score == total > 0) if name == "reference" else (0 <= score < total))
                failed |= not (within and right)
                how = "cgroup peak" if r["cgroup"] else "summed RSS peak"
                cpu_note = f", {args.cpus:g} CPU" if r["cpu_limited"] else ""
                print(f"  {name:28s} {score if score is not None else '-'} / {total:g} points, {r['wall']:.0f} s wall{cpu_note} "
                      f"(limit {args.minutes * 60:.0f}), memory {how} {r['peak_mb']:.0f} MB (limit {args.memory_mb}; sampled "
                      f"anonymous {r['anon_peak_mb']:.0f} MB, summed RSS {r['rss_peak_mb']:.0f} MB), OOM kills {r['oom_kills']}, isolation "
                      f"{(res.get('extra_data') or {}).get('isolation')}: {'ok' if within and right else 'NOT OK'}", flush=True)
                if not (within and right):
                    print("    run_autograder said:\n" + r["stdout"][-3000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
