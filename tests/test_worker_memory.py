"""What keeps a grading within Gradescope's 768 MB: ``probe.end`` ends a worker the graders are done with (a later call
starts a fresh one, which the results count), and ``release_memory`` hands freed memory back to the system."""

import json
import os
import subprocess
import sys

import pytest

from coursekit.grading.memory import release_memory, resident_anon_mb
from toy_batch import toy_kit_with


ENDS_TESTS = '''
def test_a_worker_keeps_its_state_until_it_is_ended(probe):
    assert [probe("count")["n"], probe("count")["n"]] == [1, 2]  # the same process: its state goes on
    probe.end("main")
    probe.end("never_started")  # nothing to end: nothing happens
    assert probe("count")["n"] == 1  # a fresh worker


def test_ending_one_worker_leaves_the_other(probe):
    assert probe("count", worker="second")["n"] == 1
    probe.end("main")
    assert probe("count", worker="second")["n"] == 2
    assert probe("count")["n"] == 1
'''
RUBRIC = {"assignment": "ends", "tests": {f"test_ends.py::test_{n}": {"points": 1, "name": n} for n in
                                          ("a_worker_keeps_its_state_until_it_is_ended", "ending_one_worker_leaves_the_other")}}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One grading session of the 'ends' graders, as the engine runs it (pytest with --results)."""
    kit = tmp_path_factory.mktemp("kit")
    folder = toy_kit_with(kit, "ends", RUBRIC, {"test_ends.py": ENDS_TESTS}, "def probe_count(sub):\n    return {'n': sub.count()}\n")
    tmp = tmp_path_factory.mktemp("session")
    code, out = tmp / "sub.py", tmp / "results.json"
    code.write_text("N = [0]\n\n\ndef count():\n    N[0] += 1\n    return N[0]\n")
    cmd = [sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--submission",
           str(code), "--results", str(out), "--profile", "smoke", "--rootdir", str(kit)]
    run = subprocess.run(cmd, env={**os.environ, "COURSEKIT_ROOT": str(kit)}, capture_output=True, text=True, cwd=kit, timeout=300)
    assert out.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(out.read_text())


def test_an_ended_worker_starts_afresh_and_is_counted(session):
    assert [(t["passed"], t["message"]) for t in session["tests"]] == [(True, "")] * 2
    # main: started, ended, started again, ended, started again; second: once
    assert session["worker_starts"] == 4
    assert session["isolation"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc: Linux")
def test_release_memory_hands_freed_memory_back():
    blocks = [bytearray(2000) for _ in range(40_000)]  # 80 MB of malloc'd blocks
    keep = blocks[::50]  # a few stay: the heap's top cannot simply shrink
    del blocks
    before = resident_anon_mb()
    assert release_memory() is True
    after = resident_anon_mb()
    assert after < before - 30, (before, after)
    assert len(keep) == 800


def test_low_memory_mode_is_on_only_where_asked(monkeypatch):
    from coursekit.grading.memory import LOW_MEMORY_ENV, low_memory

    monkeypatch.delenv(LOW_MEMORY_ENV, raising=False)
    assert not low_memory()
    monkeypatch.setenv(LOW_MEMORY_ENV, "0")
    assert not low_memory()
    monkeypatch.setenv(LOW_MEMORY_ENV, "1")
    assert low_memory()
