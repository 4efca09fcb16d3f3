"""The same points whatever the CPU's kernels: a CI-sized version of benchmarks/same_grade_everywhere.py.

PixelRNN's structural graders (models, encoding and loss; not the training ones) grade the reference
and two typical mistakes through the sandbox, with ATen's kernels as the CPU picks them and with
``ATEN_CPU_CAPABILITY=default`` (the portable kernels), in the grader and, through the benchmark's
launcher wrapper, in the worker that runs the student's code (the sandbox passes no kernel variable
on by itself). Every test must get the same points.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest

from coursekit import paths
from coursekit.grading.examples import make_examples

pytestmark = pytest.mark.slow


def _benchmark():
    name = "_same_grade_everywhere"
    spec = importlib.util.spec_from_file_location(name, paths.kit_root() / "benchmarks" / "same_grade_everywhere.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)  # registered first: its dataclasses need it
    spec.loader.exec_module(module)
    return module


BENCH = _benchmark()
STRUCTURAL = ["test_models.py", "test_encoding_and_loss.py"]
EXAMPLES = ("reference", "peeking_model", "loss_in_bits")  # full marks; a causality failure; a loss-value failure
SETTINGS = {"default": BENCH.Setting(), "aten-default": BENCH.SETTINGS["aten-default"]}


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    made = make_examples("pixelrnn", tmp_path_factory.mktemp("pixelrnn-examples"))
    missing = [n for n in EXAMPLES if n not in made]
    assert not missing, f"autograder/pixelrnn/mistakes.py lost {missing}: pick other mistakes here"
    return made


def test_the_setting_reaches_the_worker():
    """The check itself: the worker that runs the student's code runs the portable kernels."""
    setting = SETTINGS["aten-default"]
    wrappers = BENCH.launcher_wrappers(setting.worker)
    try:
        ok, line = BENCH.check_reaches_worker("aten-default", setting, BENCH.grader_env(setting, wrappers))
    finally:
        shutil.rmtree(wrappers, ignore_errors=True)
    assert ok and "capability DEFAULT" in line, line


@pytest.mark.parametrize("name", EXAMPLES)
def test_structural_graders_give_the_same_points(notebooks, tmp_path, name):
    got = {s: BENCH.grade_some_tests("pixelrnn", notebooks[name], STRUCTURAL, setting, tmp_path / s) for s, setting in SETTINGS.items()}
    points = {s: {tid: r["points"] for tid, r in res.items()} for s, res in got.items()}
    assert points["default"], f"no grader ran for {name}"
    assert points["default"] == points["aten-default"], {
        tid: (points["default"].get(tid), points["aten-default"].get(tid), got["aten-default"].get(tid, {}).get("message", "")[:200])
        for tid in set(points["default"]) | set(points["aten-default"]) if points["default"].get(tid) != points["aten-default"].get(tid)}
    if name == "reference":
        assert all(r["passed"] for r in got["default"].values()), {t: r["message"] for t, r in got["default"].items() if not r["passed"]}
    else:
        assert not all(r["passed"] for r in got["default"].values()), f"{name} passed every structural grader"
