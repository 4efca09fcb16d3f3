"""Assignment 3's hidden graders through the real engine (sandbox included), in one batch.

The batch holds the reference solution (full marks), the untouched student version (no marks,
"not implemented" messages) and one notebook per typical mistake of autograder/gan/mistakes.py,
each of which must fail exactly its listed tests (``fails``), with its message, and pass every
other test but those whose outcome for it is too close to a threshold to pin down on every CPU
(``unsettled``, with the measured values).
"""

from __future__ import annotations

import pytest

from coursekit.grading.examples import grade_examples, load_mistakes, mistake_list_problems

MISTAKES = load_mistakes("gan")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return grade_examples("gan", tmp_path_factory.mktemp("gan"))


def _summary(rep) -> str:
    return " | ".join(f"{t['id']}: {'ok' if t['passed'] else t['message'][:200]}" for t in rep["tests"])


def test_mistake_lists_name_real_graders():
    """``fails`` and ``unsettled`` name tests of the rubric, never the same one twice, and say why a test is unsettled."""
    assert mistake_list_problems("gan") == []


@pytest.mark.slow
def test_reference_gets_full_marks(reports):
    rep = reports["reference"]
    assert rep["points"] == rep["max_points"] > 0, _summary(rep)


@pytest.mark.slow
def test_untouched_student_version_scores_zero(reports):
    rep = reports["untouched"]
    assert rep["points"] == 0, _summary(rep)
    for t in rep["tests"]:
        assert "not implemented" in t["message"], f"{t['id']}: {t['message'][:300]}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_mistake_fails_exactly_its_graders(reports, name):
    rep, m = reports[name], MISTAKES[name]
    failed = {t["id"] for t in rep["tests"] if not t["passed"]}
    unsettled = set(m.get("unsettled", {}))
    assert set(m["fails"]) <= failed <= set(m["fails"]) | unsettled, (
        f"{name}: failed {sorted(failed)}, expected {sorted(m['fails'])}" + (f" (and maybe {sorted(unsettled)})" if unsettled else "")
        + f"\n{_summary(rep)}")
    messages = " ".join(t["message"] for t in rep["tests"] if t["id"] in m["fails"])
    assert m["message"] in messages, f"{name}: {m['message']!r} not in {messages[:600]!r}"
