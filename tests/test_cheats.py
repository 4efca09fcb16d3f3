"""The cheat suite: notebooks that try to get points for no work, graded by the real engine and sandbox.

Each assignment's attacks (``tests/cheats/<assignment>.py``: what each one does and what it
deserves) are graded in ONE batch together with the honest reference solution and the untouched
student version (``tests/cheats/harness.py``), two at a time, smoke profile. Then:

- every attack gets no more than it deserves, its failing tests say why, and it leaked nothing
  into its messages (``test_attack_gets_only_what_it_deserves``);
- the reference keeps full marks in that same batch, its report on disk is the one graded, the
  canaries in the kit and in another student's report folder keep their content, and no
  process or file of an attack is left after grading (``test_batch_intact``).

``python benchmarks/cheat_table.py`` grades the same attacks and prints the table; with
``COURSEKIT_CHEAT_TABLE=<file>`` these tests append the same table for the batches they judged. A failure
here is a finding: an attack that gets more than it deserves, not a test to loosen.
"""

from __future__ import annotations

import os

import pytest
from cheats import ASSIGNMENTS, ATTACKS
from cheats.harness import markdown_table, run_batch

from coursekit.grading.engine import strong_isolation_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not strong_isolation_available(), reason="the cheat suite attacks the real sandbox: it needs bubblewrap"),
]

BY_NAME = {a.name: a for a in ATTACKS}


@pytest.fixture(scope="module")
def batch():
    """One graded batch per assignment, made when a test first needs it."""
    done = {}

    def get(assignment: str):
        if assignment not in done:
            done[assignment] = run_batch(assignment, ATTACKS, jobs=2)
            table = os.environ.get("COURSEKIT_CHEAT_TABLE")
            if table:  # the table benchmarks/cheat_table.py prints, from the batch the tests judged
                with open(table, "a", encoding="utf-8") as f:
                    f.write(markdown_table([done[assignment]]) + "\n\n")
        return done[assignment]

    return get


@pytest.mark.parametrize("assignment, name", [pytest.param(a.assignment, a.name, id=f"{a.assignment}-{a.name}") for a in ATTACKS])
def test_attack_gets_only_what_it_deserves(batch, assignment, name):
    res = batch(assignment)
    attack, report = BY_NAME[name], res.reports.get(name)
    problems = res.problems[name]
    got = f"{report['points']:g} / {report['max_points']:g}" if report else "no report"
    assert not problems, f"{name} ({attack.summary}) deserves: {attack.deserves.text}; it got {got}: " + "; ".join(problems)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_batch_intact(batch, assignment):
    res = batch(assignment)
    ref = res.reports["reference"]
    assert ref["points"] == ref["max_points"], [f"{t['id']}: {t['message']}" for t in ref["tests"] if not t["passed"]]
    assert res.reports["untouched"]["points"] == 0
    assert not res.batch_problems, res.batch_problems
