"""The hidden graders of assignment 2 (VAE) through the real grading engine (sandbox included).

One batch, graded once per module: the reference solution (full marks), the untouched student
version (no marks, "not implemented yet") and one notebook per typical mistake of
``autograder/vae/mistakes.py``, each of which must fail exactly its listed graders, with a
message the student can act on.
"""

from __future__ import annotations

import pytest

from coursekit.grading.examples import grade_examples, load_mistakes

pytestmark = pytest.mark.slow
MISTAKES = load_mistakes("vae")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return grade_examples("vae", tmp_path_factory.mktemp("vae"))


def _failed(report) -> dict[str, str]:
    return {t["id"]: t["message"] for t in report["tests"] if not t["passed"]}


def test_reference_gets_full_marks(graded):
    rep = graded["reference"]
    assert rep["points"] == rep["max_points"] > 0, _failed(rep)


def test_untouched_student_version_scores_zero(graded):
    rep = graded["untouched"]
    assert rep["points"] == 0, {t["id"]: t["points"] for t in rep["tests"] if t["points"]}
    for t in rep["tests"]:
        assert "not implemented" in t["message"], (t["id"], t["message"])


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_fails_exactly_its_graders(graded, name):
    m = MISTAKES[name]
    failed = _failed(graded[name])
    assert set(failed) == set(m["fails"]), f"{name}: failed {sorted(failed)}, expected {sorted(m['fails'])}"
    assert m["message"] in failed[m["fails"][0]], f"{name}: {failed[m['fails'][0]]!r} lacks {m['message']!r}"
