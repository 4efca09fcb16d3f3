"""Assignment 1's hidden graders, run by the real engine (sandbox included) on one batch:
the reference solution, the untouched student version and each typical mistake."""

from __future__ import annotations

import pytest

from coursekit.grading.examples import grade_examples, load_mistakes
from coursekit.grading.rubric import load_rubric

MISTAKES = load_mistakes("pixelrnn")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    dest = tmp_path_factory.mktemp("pixelrnn")
    by = {name: {t["id"]: t for t in r["tests"]} | {"_report": r} for name, r in grade_examples("pixelrnn", dest).items()}
    by["_out"] = dest / "grades"
    return by


def test_reference_gets_full_marks(graded):
    rep = graded["reference"]["_report"]
    failed = {t["id"]: t["message"] for t in rep["tests"] if not t["passed"]}
    assert not failed, failed
    assert rep["points"] == rep["max_points"] == load_rubric("pixelrnn").total


def test_untouched_student_version_scores_zero_and_says_why(graded):
    rep = graded["untouched"]["_report"]
    assert rep["points"] == 0
    for t in rep["tests"]:
        assert "not implemented yet" in t["message"], (t["id"], t["message"])


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_mistake_fails_the_right_grader(graded, name):
    m, got = MISTAKES[name], graded[name]
    for tid in m["fails"]:
        assert not got[tid]["passed"], f"{name} should fail {tid}"
    assert any(m["message"] in got[tid]["message"] for tid in m["fails"]), [got[t]["message"] for t in m["fails"]]
    for tid in m.get("passes", []):
        assert got[tid]["passed"], f"{name} should still pass {tid}: {got[tid]['message']}"
    assert 0 < got["_report"]["points"] < got["_report"]["max_points"]


def test_feedback_shows_pictures_but_not_the_expected_values(graded):
    import json

    from coursekit import paths

    html = (graded["_out"] / "feedback" / "reference" / "pixelrnn" / "feedback.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 3  # loss curve, samples, completions
    expected = json.loads((paths.autograder_dir() / "pixelrnn" / "expected.json").read_text())
    assert "threshold_bpp" not in html and "threshold_rule" not in html
    assert str(expected["training"]["smoke"]["threshold_bpp"]) not in html
    assert str(round(expected["loss"]["nll_nats"], 4)) not in html
