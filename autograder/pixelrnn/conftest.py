"""Fixtures of assignment 1's graders: the expected values and the training budget of the active profile."""

import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def expected() -> dict:
    from coursekit.data import check_measured_on

    exp = json.loads((HERE / "expected.json").read_text())
    check_measured_on(exp, HERE / "expected.json")
    return exp


@pytest.fixture
def training(profile, expected) -> dict:
    """The profile's training budget and its measured threshold (expected.json must match profiles.json)."""
    info = expected["training"].get(profile["name"])
    if info is None or info["config"] != profile["train"]:
        raise RuntimeError(f"expected.json has no threshold for the {profile['name']} profile's budget: run `coursekit reference --assignment pixelrnn`")
    return info


@pytest.fixture(scope="session")
def data():
    """The course data set the graders train on, loaded in the grader's process (for copies and held-out pixels)."""
    from coursekit.data import course_dataset

    return course_dataset()
