"""CI grades in the real sandbox: a green CI must never come from tests that skipped it."""

import os

import pytest

from coursekit.grading.sandbox import strong_isolation_available


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only CI must have bubblewrap; elsewhere its tests skip with the reason")
def test_ci_has_bubblewrap():
    assert strong_isolation_available(), (
        "CI must run the grading sandbox (bubblewrap, installed by .ci/run): without it the isolation and cheat tests skip")
