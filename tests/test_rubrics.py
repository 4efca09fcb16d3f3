"""Every grader test has points in its rubric, and every rubric entry names a real test."""

import subprocess
import sys

import pytest

from coursekit import paths
from coursekit.grading.engine import graded_assignments
from coursekit.grading.rubric import load_rubric


def _collected(assignment: str) -> set[str]:
    folder = paths.autograder_dir() / assignment
    out = subprocess.run([sys.executable, "-m", "pytest", str(folder), "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts="],
                         cwd=paths.kit_root(), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    prefix = f"autograder/{assignment}/"
    return {line.strip()[len(prefix):] for line in out.stdout.splitlines() if line.startswith(prefix) and "::" in line}


@pytest.mark.parametrize("assignment", graded_assignments())
def test_rubric_matches_the_graders(assignment):
    rubric = load_rubric(assignment)
    collected = _collected(assignment)
    assert collected, f"no grader tests collected for {assignment}"
    assert sorted(collected - set(rubric.items)) == [], "tests without points"
    assert sorted(set(rubric.items) - collected) == [], "rubric entries without a test"
    assert rubric.total > 0 and all(i.name and i.name != i.test_id for i in rubric.items.values())


def test_a_test_without_points_stops_grading(tmp_path, monkeypatch):
    import shutil

    from pathlib import Path

    toy = Path(__file__).parent / "fixtures" / "toykit"
    shutil.copytree(toy, tmp_path, dirs_exist_ok=True)
    (tmp_path / "autograder" / "toy" / "test_extra.py").write_text("def test_unlisted():\n    pass\n")
    monkeypatch.setenv("COURSEKIT_ROOT", str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "autograder" / "toy"), "-q", "-p", "no:cacheprovider", "-o", "addopts="],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0 and "no points for test_extra.py::test_unlisted" in out.stdout + out.stderr
