"""Partial credit, and what a test that stops early or crashes is worth (``Credit`` in coursekit/grading/pytest_plugin.py).

The rule: a test that runs to its end scores its passed parts' weight over all its parts' weight. A test stopped early
by a failed assert or the student's code failing keeps what it checked, and the check it was making counts as a failed
part as heavy as its heaviest part: it never scores full points. A test in which the grader's own code crashed (setup,
call or teardown) scores 0 and says ``grader_error``, and ``coursekit demo``'s verdict reports it. On a toy kit whose
graders need no student code, so that it runs in seconds.
"""

import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit.demo import example_problems
from coursekit.grading.pytest_plugin import Credit
from toy_batch import toy_kit_with

CREDITS_TESTS = '''import pytest

from coursekit.grading.sandbox import SubmissionError


@pytest.fixture
def broken_setup():
    raise RuntimeError("a bug in the grader's fixture")


@pytest.fixture
def broken_teardown():
    yield
    raise KeyError("a bug in the grader's clean-up")


def test_crash_after_every_part_passed(credit):
    credit.part(1, True, "plain model")
    credit.part(2, True, "plain model steps")
    credit.part(1, True, "above model")
    {}["a bug in the grader"]  # before the above model's steps were compared: never checked


def test_student_code_fails_after_parts_passed(credit):
    credit.part(1, True, "plain model")
    credit.part(2, True, "plain model steps")
    raise SubmissionError("PixelLSTMAbove.step raised ValueError")


def test_assert_after_parts_passed(credit):
    credit.part(1, True, "the first part")
    assert False, "the last check did not hold"


def test_runs_to_its_end(credit):
    credit.part(1, True, "the first part")
    credit.part(3, False, "the second part did not hold")


def test_every_part_passes(credit):
    credit.part(1, True, "one")
    credit.part(2, True, "two")


def test_setup_crash(broken_setup, credit):
    credit.part(1, True, "never reached")


def test_teardown_crash(broken_teardown, credit):
    credit.part(1, True, "checked, but the grader then crashed")
'''
NAMES = ["crash_after_every_part_passed", "student_code_fails_after_parts_passed", "assert_after_parts_passed",
         "runs_to_its_end", "every_part_passes", "setup_crash", "teardown_crash"]
RUBRIC = {"assignment": "credits", "tests": {f"test_credits.py::test_{n}": {"points": 5, "name": n.replace("_", " ")} for n in NAMES}}


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    toy_kit_with(root, "credits", RUBRIC, {"test_credits.py": CREDITS_TESTS})
    return root


@pytest.fixture(scope="module")
def results(kit, tmp_path_factory):
    """One grading session of the credits graders, as the engine runs it (pytest with --results)."""
    tmp = tmp_path_factory.mktemp("session")
    code, out = tmp / "sub.py", tmp / "results.json"
    code.write_text("x = 1\n")
    cmd = [sys.executable, "-m", "pytest", str(kit / "autograder" / "credits"), "-q", "-p", "no:cacheprovider", "-o",
           "addopts=", "--submission", str(code), "--results", str(out), "--profile", "smoke", "--rootdir", str(kit)]
    run = subprocess.run(cmd, env={**os.environ, "COURSEKIT_ROOT": str(kit)}, capture_output=True, text=True, cwd=kit,
                         timeout=300)
    assert out.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    return {t["id"].split("::test_")[1]: t for t in json.loads(out.read_text())["tests"]}


def test_a_grader_crash_gives_no_credit_for_what_it_could_not_check(results):
    for name in ("crash_after_every_part_passed", "setup_crash", "teardown_crash"):
        t = results[name]
        assert (t["points"], t["passed"], t["grader_error"]) == (0.0, False, True), t
        assert t["message"].startswith("the grader could not check this ("), t
    assert "(KeyError)" in results["crash_after_every_part_passed"]["message"]
    assert "(RuntimeError)" in results["setup_crash"]["message"]


def test_a_test_stopped_early_keeps_what_it_checked_but_never_full_points(results):
    # parts of weight 1 and 2 passed, then the student's code failed: that check counts as failed, weight 2
    t = results["student_code_fails_after_parts_passed"]
    assert t["points"] == pytest.approx(5 * 3 / 5) and not t["passed"] and not t["grader_error"]
    assert t["message"] == "PixelLSTMAbove.step raised ValueError"
    t = results["assert_after_parts_passed"]
    assert t["points"] == pytest.approx(5 * 1 / 2) and t["message"] == "the last check did not hold"
    # a test that ran to its end: the share of the weight it passed, as before
    t = results["runs_to_its_end"]
    assert t["points"] == pytest.approx(5 * 1 / 4) and t["message"] == "the second part did not hold"
    t = results["every_part_passes"]
    assert (t["points"], t["passed"], t["grader_error"]) == (5, True, False)


def test_the_credit_rule():
    c = Credit()
    assert c.fraction is None
    c.part(1, True)
    c.part(2, True)
    assert c.fraction == 1.0
    c.stopped()
    assert c.fraction == pytest.approx(3 / 5)
    c.crashed()
    assert c.fraction == 0.0


def _report(student, tests, assignment="credits"):
    return {"student": student, "assignment": assignment, "tests": tests,
            "points": sum(t["points"] for t in tests), "max_points": sum(t["max_points"] for t in tests)}


def test_the_demo_notices_a_grader_crash_and_a_mistake_graded_wrong(results):
    tests = list(results.values())
    fine = [dict(t, points=t["max_points"], passed=True, message="", grader_error=False) for t in tests]
    zero = [dict(t, points=0.0, passed=False, message="wrong", grader_error=False) for t in tests]
    assert example_problems([_report("reference", fine), _report("untouched", zero)]) == []
    # the session above: the crashes are problems, named with the example and the test
    found = example_problems([_report("wrong_shape", tests)])
    assert len(found) == 3 and all("the grader crashed on the example 'wrong_shape' of credits" in f for f in found), found
    assert any('in "crash after every part passed" (0/5): the grader could not check this (KeyError)' in f for f in found)
    # a report from before grader_error existed: the message alone is enough
    old = [{k: v for k, v in t.items() if k != "grader_error"} for t in tests]
    assert len(example_problems([_report("wrong_shape", old)])) == 3
    # a mistake must fail the tests mistakes.py says it fails, and pass those it says it passes
    mistakes = {"credits": {"typo": {"fails": ["test_credits.py::test_every_part_passes"],
                                     "passes": ["test_credits.py::test_runs_to_its_end"]}}}
    typo = [t for t in fine]
    typo[NAMES.index("runs_to_its_end")] = dict(typo[NAMES.index("runs_to_its_end")], passed=False, points=1.25, message="no")
    found = example_problems([_report("typo", typo)], mistakes)
    assert found == ['the mistake \'typo\' of credits got full marks on "every part passes", which it must fail',
                     'the mistake \'typo\' of credits failed "runs to its end", which it must pass: no'], found


def test_the_report_carries_the_grader_error(kit, tmp_path, monkeypatch):
    """Through the engine: the report and the gradebook's points say what the session said."""
    from coursekit.grading.engine import GradeOptions, grade_batch

    monkeypatch.setenv("COURSEKIT_ROOT", str(kit))
    nb = new_notebook(metadata={"coursekit": {"assignment": "credits"}})
    nb.cells = [new_code_cell("x = 1\n")]
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "subs" / "ann" / "credits.ipynb")
    rep = grade_batch([tmp_path / "subs"], tmp_path / "out", ["credits"], progress=False,
                      options=GradeOptions(profile="smoke", insecure=True))[0]
    by = {t["id"].split("::test_")[1]: t for t in rep["tests"]}
    assert by["crash_after_every_part_passed"]["grader_error"] is True and by["crash_after_every_part_passed"]["points"] == 0
    assert by["every_part_passes"]["grader_error"] is False
    assert rep["points"] == pytest.approx(3 + 2.5 + 1.25 + 5)
    assert len(example_problems([rep])) == 3
