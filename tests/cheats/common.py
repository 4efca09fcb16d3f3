"""What an attack is, how its notebook is made, and how its grade is judged.

An attack is a notebook a student might hand in to get points for no work: the untouched
student version (or the reference solution, for cheats that ride on honest work) with one code
cell appended. The appended cell runs last, so it replaces whatever the notebook defined
before it (a class can subclass its own earlier definition: ``class PixelLSTM(PixelLSTM)``).

Its code is a template: ``@@TOKEN@@`` (this run's random token), ``@@ATTACK@@`` (the attack's
name), ``@@ASSIGNMENT@@``, ``@@HOST_PIDNS@@`` and ``@@HOST_MNTNS@@`` (the grader's PID and mount
namespaces: the attacks that signal every process they can see, or remount and unmount file
systems, only do so inside a sandbox's namespaces of its own, so the suite never kills a
developer's processes or touches the machine's mounts when isolation is missing) are filled in.

Markers an attack leaves, so the harness can find what escaped the sandbox:

- processes: ``CHEATPROC-<token>-<attack>`` in their command line;
- files: names starting ``cheatfile-<token>-<attack>``;
- exfiltration: ``CHEAT-LEAK`` in a message (something the student must never read), and
  ``CHEAT-INFO`` (what the attack managed, for the table: not a failure by itself).

What an attack deserves is written as checks on its report (``Deserves``); ``judge`` says
which of them do not hold.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

LEAK = "CHEAT-LEAK"
INFO = "CHEAT-INFO"


@dataclass(frozen=True)
class Deserves:
    """What an attack deserves, as checks on its report.

    text:       the sentence for the table ("no more points than the untouched notebook (0)")
    max_points: a number, "untouched" (the untouched notebook's points in the same batch), or
                "attack:<name>" (another attack's points: a forgery earns no more than a notebook
                whose own functions return the forged values)
    must_fail:  tests (``file::name``, or just ``name``) that must not pass (partial credit for what is right
                stays, within max_points); ("*",) means every test
    must_pass:  tests that must keep their points (an otherwise correct solution keeps them)
    message:    a piece of the message of at least one test in must_fail (a clear reason)
    messages:   {test: piece}: a piece of that test's own message
    forbid:     strings no message of the report may contain (exfiltrated secrets)
    feedback_forbid: raw strings the feedback page must not hold (the student's text unescaped)
    """

    text: str
    max_points: float | str = "untouched"
    must_fail: tuple[str, ...] = ("*",)
    must_pass: tuple[str, ...] = ()
    message: str | tuple[str, ...] | None = None
    messages: dict = field(default_factory=dict)
    forbid: tuple[str, ...] = (LEAK,)
    feedback_forbid: tuple[str, ...] = ()  # raw strings the student's feedback page (HTML) must not hold


@dataclass(frozen=True)
class Attack:
    name: str
    assignment: str
    base: str  # "untouched" or "solution"
    summary: str  # one line: what the cheat does
    code: str  # the appended cell (a template, see the module's doc)
    deserves: Deserves
    slow: bool = False  # waits for a timeout or trains for real: started first in its batch

    def source(self, token: str, host_ns: dict[str, str]) -> str:
        code = textwrap.dedent(self.code).strip("\n") + "\n"
        for key, value in (("TOKEN", token), ("ATTACK", self.name), ("ASSIGNMENT", self.assignment),
                           ("HOST_PIDNS", host_ns["pid"]), ("HOST_MNTNS", host_ns["mnt"])):
            code = code.replace(f"@@{key}@@", value)
        return code


def base_notebooks(assignment: str) -> dict:
    """{"solution": the reference solution without outputs, "untouched": its student version}."""
    from coursekit import paths
    from coursekit.notebook import read_notebook
    from coursekit.release import student_notebook

    solution = read_notebook(paths.solutions_dir() / assignment / f"{assignment}.ipynb")
    for cell in solution.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return {"solution": solution, "untouched": student_notebook(solution)}


def attack_notebook(attack: Attack, bases: dict, token: str, host_ns: dict[str, str]):
    import nbformat
    from nbformat.v4 import new_code_cell

    nb = nbformat.reads(nbformat.writes(bases[attack.base]), as_version=4)
    nb.cells.append(new_code_cell(at_definition(attack.source(token, host_ns))))
    return nb


def at_definition(code: str) -> str:
    """The attack's code, run while a function is being defined (in a default argument), in the module's globals:
    exactly what it would do at the top level. Grading runs a notebook's definitions and leaves its top-level work
    out (``coursekit.notebook.extract_module``), which is no defence: a cheater hides the work where definitions run
    it, and so does the suite, so that every attack still meets the sandbox in full."""
    return ("def _cheat_at_definition(_=exec(compile(" + repr(code) + ", '<attack>', 'exec'), globals())):\n"
            "    pass\n")


# --- judging --------------------------------------------------------------------------------------
def _match(test_id: str, pattern: str) -> bool:
    return pattern == "*" or test_id == pattern or test_id.endswith("::" + pattern)


def tests_of(report: dict) -> dict[str, dict]:
    return {t["id"]: t for t in report["tests"]}


def judge(attack: Attack, report: dict | None, batch: dict[str, dict], side_problems: list[str]) -> list[str]:
    """What does not hold of what ``attack`` deserves ([] when it got what it deserves). ``batch``: every
    report of the batch by attack name (the baselines "untouched" and "reference" included)."""
    d = attack.deserves
    if report is None:
        return ["no report: the batch lost this submission"]
    problems = []
    tests = tests_of(report)
    cap = d.max_points
    if cap == "untouched":
        cap = batch["untouched"]["points"]
    elif isinstance(cap, str) and cap.startswith("attack:"):
        other = batch.get(cap.split(":", 1)[1])
        cap = other["points"] if other else 0.0
    if report["points"] > float(cap) + 1e-9:
        problems.append(f"got {report['points']:g} points, deserves at most {float(cap):g}")
    failing = [t for tid, t in tests.items() if any(_match(tid, p) for p in d.must_fail)]
    for t in failing:
        if t["passed"]:
            problems.append(f"{t['id'].split('::')[-1]} passed ({t['points']:g} points)")
    for p in d.must_pass:
        for tid, t in tests.items():
            if _match(tid, p) and not t["passed"]:
                problems.append(f"{tid.split('::')[-1]} lost its points: {t['message'][:120]}")
    if d.message is not None:
        pieces = (d.message,) if isinstance(d.message, str) else d.message
        if not any(piece in t["message"] for t in failing for piece in pieces):
            problems.append(f"no failing test says {' or '.join(repr(p) for p in pieces)}")
    for name, piece in d.messages.items():
        hit = [t for tid, t in tests.items() if _match(tid, name)]
        if not hit or not any(piece in t["message"] for t in hit):
            problems.append(f"{name} does not say {piece!r} (says {hit[0]['message'][:100]!r})" if hit else f"no test {name}")
    for s in d.forbid:
        leaks = [t for t in report["tests"] if s in t["message"]]
        if leaks:
            problems.append(f"{s} in {leaks[0]['id'].split('::')[-1]}: {leaks[0]['message'][:160]}")
    return problems + side_problems


def one_line(report: dict | None, attack: Attack) -> str:
    """The most telling message of a report, for the table, on one line: what the attack managed (CHEAT-INFO or
    CHEAT-LEAK), else the first message of a test it must fail, else the first message."""
    if report is None:
        return "(no report)"
    msgs = [t["message"] for t in report["tests"] if t["message"]]
    aimed = [t["message"] for tid, t in tests_of(report).items() if t["message"] and any(_match(tid, p) for p in attack.deserves.must_fail)]
    info = next((m for m in msgs if INFO in m or LEAK in m), None)
    first = info or (aimed[0] if aimed else None) or (msgs[0] if msgs else "all tests passed")
    return " ".join(first.split())[:150]
