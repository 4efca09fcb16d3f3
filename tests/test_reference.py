"""coursekit reference: it rebuilds the reference files, the same way twice, and --check sees drift."""

import json
import shutil

import pytest

from coursekit import paths
from coursekit.reference import _sha, build_reference, reference_assignments


def test_every_graded_assignment_has_a_reference_builder():
    from coursekit.grading.engine import graded_assignments

    assert set(graded_assignments()) <= set(reference_assignments())


def test_torch_files_are_hashed_by_content(tmp_path):
    import torch

    for name in ("a.pt", "b.pt"):
        torch.save({"w": torch.arange(3.0), "info": {"seed": 0}}, tmp_path / name)
    assert (tmp_path / "a.pt").read_bytes() != (tmp_path / "b.pt").read_bytes()  # torch.save is not byte-stable
    assert _sha(tmp_path / "a.pt") == _sha(tmp_path / "b.pt")
    torch.save({"w": torch.arange(3.0) + 1, "info": {"seed": 0}}, tmp_path / "c.pt")
    assert _sha(tmp_path / "a.pt") != _sha(tmp_path / "c.pt")


@pytest.mark.slow
def test_rebuild_is_reproducible_and_check_reports_drift(tmp_path, monkeypatch):
    """Rebuild the digits evaluator and PixelRNN's smoke reference in a copy of the kit: nothing drifts;
    then change an expected value by hand: --check names that file."""
    kit = tmp_path / "kit"
    for rel in ("autograder", "solutions", "data"):
        shutil.copytree(paths.kit_root() / rel, kit / rel, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("COURSEKIT_ROOT", str(kit))
    monkeypatch.setattr("coursekit.reference.EVALUATOR_DATASETS", ("digits",))
    first = build_reference(["pixelrnn"], ["smoke"], log=lambda m: None)
    assert (kit / "autograder" / "reference" / "manifest.json").is_file() and first.written
    manifest = json.loads((kit / "autograder" / "reference" / "manifest.json").read_text())
    assert "pixelrnn/expected.json" in manifest["files"] and manifest["versions"]["torch"]
    assert any(p.suffix == ".png" for p in (kit / "autograder" / "pixelrnn" / "reference" / "feedback").iterdir())
    # a hand-typed change to one file: the rebuild reproduces every other file and names that one
    exp = kit / "autograder" / "pixelrnn" / "expected.json"
    before = exp.read_text()
    data = json.loads(before)
    data["training"]["smoke"]["threshold_bpp"] = 9.99
    exp.write_text(json.dumps(data, indent=1) + "\n")
    again = build_reference(["pixelrnn"], ["smoke"], check=True, log=lambda m: None)
    assert again.drift == ["pixelrnn/expected.json"]
    assert exp.read_text() != before  # --check wrote nothing
