"""Grade every attack on an assignment in one batch beside the honest reference, then check what escaped.

``run_batch(assignment, root)`` writes the notebooks (``root/subs/<attack>/<assignment>.ipynb``,
the reference and the untouched notebook among them), plants canaries, grades them all with
``grade_batch(..., jobs=2, GradeOptions(profile="smoke"))`` into ``root/out``, and returns a
``BatchResult``: the reports, each attack's unmet expectations, and the batch-wide problems
(a canary changed, the reference not at full marks, processes or files of an attack left behind).

The batch lives under /var/tmp when it can (not /tmp: the sandbox gives every worker a /tmp
of its own, so a batch there would be out of an attack's reach whatever the sandbox binds),
which is where a course's grading folders would be: outside the worker's view only if the
sandbox keeps them out.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .common import Attack, attack_notebook, base_notebooks, judge, one_line

BASELINES = ("reference", "untouched")


@dataclass
class BatchResult:
    assignment: str
    token: str
    root: Path
    reports: dict[str, dict]  # by submission name: each attack, "reference", "untouched"
    attacks: list[Attack]
    problems: dict[str, list[str]]  # attack -> what it got that it does not deserve ([] when deserved)
    batch_problems: list[str]  # the reference lost points, a canary changed...
    seconds: float
    side: dict[str, list[str]] = field(default_factory=dict)  # attack -> processes or files it left behind

    def rows(self) -> list[dict]:
        out = []
        for a in self.attacks:
            rep = self.reports.get(a.name)
            out.append({"attack": a.name, "assignment": a.assignment, "base": a.base, "summary": a.summary,
                        "points": rep["points"] if rep else None, "max_points": rep["max_points"] if rep else None,
                        "deserves": a.deserves.text, "deserved": not self.problems[a.name],
                        "problems": self.problems[a.name], "message": one_line(rep, a)})
        return out


def host_namespaces() -> dict[str, str]:
    return {"pid": os.readlink("/proc/self/ns/pid"), "mnt": os.readlink("/proc/self/ns/mnt")}


def batch_root() -> Path:
    """A fresh folder for one batch: under /var/tmp where possible (see the module's doc)."""
    for parent in ("/var/tmp", None):
        try:
            return Path(tempfile.mkdtemp(prefix="coursekit-cheats-", dir=parent))
        except OSError:
            continue
    raise OSError("no temporary folder")


# --- canaries ------------------------------------------------------------------------------------------
def _canaries(token: str, out: Path, assignment: str) -> dict[Path, str]:
    """Files no submission may change: in the kit (its .git, its data/downloads) and in another student's report folder."""
    from coursekit import paths

    kit = paths.kit_root()
    places = [kit / ".git" / f"cheatfile-{token}-canary", kit / "data" / "downloads" / f"cheatfile-{token}-canary",
              out / "staff" / f"other-student-{token}" / assignment / "report.json"]
    made = {}
    for p in places:  # kit/.git exists; data/downloads is git-ignored; the output folder is this batch's
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            content = json.dumps(f"canary {token}: another student's report" if p.name == "report.json" else f"canary {token}")
            p.write_text(content)
            made[p] = content
        except OSError:
            continue
    return made


# --- what attacks leave behind -----------------------------------------------------------------------
def marked_processes(token: str) -> dict[int, str]:
    """pid -> command line of every process carrying this run's marker."""
    found = {}
    mark = f"CHEATPROC-{token}".encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if mark in cmd:
            found[int(d)] = cmd.replace(b"\0", b" ").decode(errors="replace")
    return found


def marked_files(token: str, root: Path) -> list[Path]:
    """Files or folders named ``cheatfile-<token>-*`` where the grader's machine keeps them (canaries excluded)."""
    from coursekit import paths

    kit = paths.kit_root()
    found = []
    shallow = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), kit, kit / ".git", kit / "data" / "downloads", Path.home()]
    for top in shallow:
        try:
            children = list(top.iterdir())
        except OSError:
            continue
        for p in children:
            found += [p] if p.name.startswith(f"cheatfile-{token}") else []
            if p.is_dir() and top == Path("/tmp") and p.name.startswith("coursekit-"):  # sandboxes' folders left behind
                try:
                    found += [q for q in p.iterdir() if q.name.startswith(f"cheatfile-{token}")]
                except OSError:
                    pass
    for dirpath, dirnames, filenames in os.walk(root):
        found += [Path(dirpath) / n for n in filenames + dirnames if n.startswith(f"cheatfile-{token}")]
    return sorted(p for p in set(found) if "-canary" not in p.name)


def _attack_of(name: str, token: str, attacks: list[Attack]) -> str | None:
    rest = name.split(f"cheatfile-{token}-", 1)[-1]
    best = [a.name for a in attacks if rest.startswith(a.name)]
    return max(best, key=len) if best else None


def _cleanup(token: str, root: Path, canaries: dict[Path, str], keep: bool) -> None:
    for pid in marked_processes(token):  # only the processes this run's attacks started, one by one
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in marked_files(token, root):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    for p in canaries:
        if not str(p).startswith(str(root)):
            p.unlink(missing_ok=True)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)


# --- the batch ---------------------------------------------------------------------------------------
def run_batch(assignment: str, attacks: list[Attack], root: Path | None = None, jobs: int = 2, keep: bool = False,
              progress: bool = False, isolation: str | None = None) -> BatchResult:
    """Grade ``attacks`` of ``assignment`` in one batch (see the module's doc). ``isolation`` ("rlimits", "unshare")
    grades with that weaker isolation, insecurely: to see what each attack achieves where the sandbox is missing
    (``benchmarks/cheat_table.py --weak``), never in the tests."""
    from coursekit.grading.engine import GradeOptions, grade_batch

    attacks = [a for a in attacks if a.assignment == assignment]
    token = secrets.token_hex(4)
    root = Path(root) if root else batch_root()
    subs, out = root / "subs", root / "out"
    bases = base_notebooks(assignment)
    host_ns = host_namespaces()
    order = [a for a in attacks if a.slow] + [None] + [a for a in attacks if not a.slow]  # None: the two baselines
    folders = []
    for a in order:
        named = [(n, bases["solution" if n == "reference" else "untouched"]) for n in BASELINES] if a is None else \
            [(a.name, attack_notebook(a, bases, token, host_ns))]
        for name, nb in named:
            path = subs / name / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            folders.append(path.parent)
    out.mkdir(parents=True, exist_ok=True)
    canaries = _canaries(token, out, assignment)
    before = set(marked_processes(token))
    t0 = time.monotonic()
    try:
        options = GradeOptions(profile="smoke", force=True)
        if isolation:
            options = GradeOptions(profile="smoke", force=True, insecure=True, env={"COURSEKIT_ISOLATION": isolation})
        reports = grade_batch(folders, out, [assignment], jobs=jobs, options=options, progress=progress)
        seconds = time.monotonic() - t0
        by_name = {r["student"]: r for r in reports}
        time.sleep(1.0)  # a daemon that outlived its sandbox would have written its heartbeat by now
        batch_problems: list[str] = []
        side: dict[str, list[str]] = {a.name: [] for a in attacks}
        # processes left behind
        for pid, cmd in marked_processes(token).items():
            if pid in before:
                continue
            who = next((a.name for a in attacks if f"CHEATPROC-{token}-{a.name}" in cmd), "?")
            side.setdefault(who, []).append(f"left a process running after grading: pid {pid} `{cmd[:80]}`")
        # files left where the machine keeps them
        for p in marked_files(token, root):
            who = _attack_of(p.name, token, attacks) or "?"
            side.setdefault(who, []).append(f"left a file outside its sandbox: {p}")
        # canaries
        for p, content in canaries.items():
            try:
                now = p.read_text()
            except OSError as e:
                now = f"<unreadable: {e}>"
            if now != content:
                who = next((a.name for a in attacks if a.name in now), "?")
                msg = f"changed the canary {p} (now {now[:60]!r})"
                side.setdefault(who, []).append(msg)
                batch_problems.append(f"{who} {msg}")
        # the honest reference: full marks, in the returned report and on disk
        ref = by_name.get("reference")
        if ref is None or ref["points"] != ref["max_points"]:
            lost = [f"{t['id']}: {t['message'][:100]}" for t in (ref or {"tests": []})["tests"] if not t["passed"]]
            batch_problems.append(f"the reference lost points in the batch: {lost or 'no report'}")
        try:
            disk = json.loads((out / "staff" / ref["folder"] / assignment / "report.json").read_text())
            if disk.get("points") != ref["points"] or [t["points"] for t in disk["tests"]] != [t["points"] for t in ref["tests"]]:
                batch_problems.append("the reference's report on disk differs from the one graded")
        except (OSError, ValueError, TypeError, KeyError) as e:
            batch_problems.append(f"the reference's report on disk is unreadable: {e}")
        for a in attacks:  # the student's own text, unescaped, on their feedback page
            if a.deserves.feedback_forbid and a.name in by_name:
                try:
                    page = (out / "feedback" / by_name[a.name]["folder"] / assignment / "feedback.html").read_text(errors="replace")
                except OSError as e:
                    page = ""
                    side[a.name].append(f"no feedback page: {e}")
                side[a.name] += [f"its feedback page holds {bad!r} unescaped" for bad in a.deserves.feedback_forbid if bad in page]
                if len(page) > 5_000_000:
                    side[a.name].append(f"its feedback page is {len(page) / 1e6:.0f} MB")
        for who, items in side.items():
            if who == "?" and items:
                batch_problems += items
        problems = {a.name: judge(a, by_name.get(a.name), by_name, side.get(a.name, [])) for a in attacks}
        return BatchResult(assignment, token, root, by_name, attacks, problems, batch_problems, seconds, side)
    finally:
        _cleanup(token, root, canaries, keep)


def markdown_table(results: list[BatchResult]) -> str:
    lines = ["| attack | assignment | base | points | deserved? | message |", "|---|---|---|---|---|---|"]
    for res in results:
        for row in res.rows():
            pts = "-" if row["points"] is None else f"{row['points']:g} / {row['max_points']:g}"
            verdict = "deserved" if row["deserved"] else "NOT: " + "; ".join(row["problems"])[:220]
            msg = row["message"].replace("|", "\\|")
            lines.append(f"| {row['attack']} | {row['assignment']} | {row['base']} | {pts} | {verdict.replace('|', '/')} | {msg} |")
        ref = res.reports.get("reference")
        if ref:
            lines.append(f"| (reference, same batch) | {res.assignment} | solution | {ref['points']:g} / {ref['max_points']:g} | "
                         f"{'full marks' if ref['points'] == ref['max_points'] else 'NOT full marks'} | |")
    return "\n".join(lines)
