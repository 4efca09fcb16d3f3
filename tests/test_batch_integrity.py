"""Batch integrity: what a whole batch must survive, on the toy kit.

A stopped batch (SIGINT, SIGTERM) keeps only complete reports and resumes; a report that does
not match its rubric is graded again; timeouts and stops leave no process behind; hostile zips
and names cost only their author and never write outside OUT; student text is escaped where
it lands; a timed-out probe is not run twice; a crashing grader gives no credit; grading
without the sandbox needs --insecure and is said everywhere.
"""

import csv
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import cli
from coursekit.grading import engine, pytest_plugin
from coursekit.grading import sandbox as sandbox_module
from coursekit.grading.engine import GradeOptions, GradingInterrupted, IsolationError, grade_batch
from coursekit.grading.reports import csv_cell, summary_table, write_feedback, write_gradebook, write_gradescope
from coursekit.grading.rubric import load_rubric
from coursekit.grading.submissions import MAX_ENTRIES, RESERVED, find_submissions, safe_folder_name

TOYKIT = Path(__file__).parent / "fixtures" / "toykit"
HEAD = "import torch\nimport torch.nn.functional as F\n"
HONEST = "def one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n"
LOOPS = "def one_hot_pixels(x, k):\n    while True:\n        pass\n"
BUBBLEWRAP = engine.strong_isolation_available()

# a second assignment whose graders need no student code: a grader crash, partial credit, the grader's environment
CRASHY_TESTS = '''import os


def test_crash_after_credit(credit):
    credit.part(1, True, "first part")
    credit.part(1, True, "second part")
    {}["a bug in the grader"]


def test_partial(credit):
    credit.part(1, True, "the first part")
    credit.part(3, False, "the second part did not hold")


def test_env():
    assert False, "insecure=" + os.environ.get("COURSEKIT_INSECURE", "unset")
'''
CRASHY_RUBRIC = {"assignment": "crashy", "tests": {
    "test_crashy.py::test_crash_after_credit": {"points": 4, "name": "Crash after credit"},
    "test_crashy.py::test_partial": {"points": 4, "name": "Partial"},
    "test_crashy.py::test_env": {"points": 1, "name": "Environment"}}}
# an assignment whose rubric lists a test that does not exist: its grading never covers the rubric
GHOSTY_RUBRIC = {"assignment": "ghosty", "tests": {
    "test_ghosty.py::test_here": {"points": 1, "name": "Here"},
    "test_ghosty.py::test_missing": {"points": 1, "name": "Missing"}}}


def _notebook(path: Path, code: str, assignment: str = "toy") -> Path:
    nb = new_notebook(metadata={"coursekit": {"assignment": assignment}})
    nb.cells = [new_code_cell(HEAD), new_code_cell(code)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    shutil.copytree(TOYKIT, root, dirs_exist_ok=True)
    for name, rubric, tests in (("crashy", CRASHY_RUBRIC, CRASHY_TESTS), ("ghosty", GHOSTY_RUBRIC, "def test_here():\n    pass\n")):
        folder = root / "autograder" / name
        folder.mkdir()
        (folder / "rubric.json").write_text(json.dumps(rubric))
        (folder / f"test_{name}.py").write_text(tests)
        (folder / "probes.py").write_text("")
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(root))
    yield root
    mp.undo()


def _kit_processes(kit: Path) -> list[tuple[int, str]]:
    """Processes (graders, sandboxed workers) started for this kit: their environment names it."""
    needle = f"COURSEKIT_ROOT={kit}".encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{d}/environ").read_bytes().split(b"\0")
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in env:
            found.append((int(d), cmd))
    return found


def _no_kit_processes_left(kit: Path, wait: float = 5.0) -> list:
    deadline = time.monotonic() + wait
    while (left := _kit_processes(kit)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _rows(out: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(open(out / "gradebook.csv", encoding="utf-8"))}


def _by_name(report: dict) -> dict[str, dict]:
    return {t["name"]: t for t in report["tests"]}


# --- 1. a stopped batch keeps only complete reports, and the same command resumes ---------------------------
def test_sigint_and_sigterm_stop_cleanly_and_the_same_command_resumes(kit, tmp_path):
    flag = kit / "slow.flag"  # the kit's root is visible (read-only) to the sandbox: b sleeps while it exists
    flag.write_text("sleep")
    sleepy = ("import os, time\n\ndef one_hot_pixels(x, k):\n"
              f"    if os.path.exists({str(flag)!r}):\n        time.sleep(60)\n    return F.one_hot(x, k).float()\n")
    subs, out = tmp_path / "subs", tmp_path / "out"
    for name, code in (("a_first", HONEST), ("b_sleepy", sleepy), ("c_last", HONEST)):
        _notebook(subs / name / "toy.ipynb", code)
    cmd = [sys.executable, "-m", "coursekit.cli", "grade", str(subs), "-o", str(out), "-a", "toy", "-j", "1", "--profile", "smoke"]
    if not BUBBLEWRAP:
        cmd.append("--insecure")
    env = {**os.environ, "COURSEKIT_ROOT": str(kit)}

    def stop_mid_batch(sig: int, extra_env: dict, extra_args: list) -> tuple[int, str]:
        proc = subprocess.Popen(cmd + extra_args, env={**env, **extra_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # a is done, b's worker is running (asleep)
            if ((out / "staff" / "a_first" / "toy" / "report.json").is_file() and (out / "staff" / "b_sleepy" / ".toy.partial").is_dir()
                    and any("coursekit.grading.worker" in c for _, c in _kit_processes(kit))):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        else:
            proc.kill()
            pytest.fail("b_sleepy never started")
        time.sleep(1.0)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # what Ctrl-C does: the whole foreground process group
        else:
            os.kill(proc.pid, sig)  # what `kill PID` or a job scheduler does
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 15, "stopping took too long"
        return proc.returncode, err

    rc, err = stop_mid_batch(signal.SIGINT, {}, [])
    assert rc == 130, err
    assert "coursekit grade: interrupted by SIGINT: 1 of 3 submission(s) are graded" in err
    assert "run the same command again to grade the other 2" in err
    assert "Traceback" not in err
    rows = _rows(out)  # one row per student found; only a_first's is graded
    assert list(rows) == ["a_first", "b_sleepy", "c_last"] and float(rows["a_first"]["total"]) == 4
    assert rows["b_sleepy"]["toy"] == rows["c_last"]["toy"] == "not graded yet" and float(rows["b_sleepy"]["total"]) == 0
    assert not (out / "staff" / "b_sleepy" / "toy").exists() and not (out / "staff" / "b_sleepy" / ".toy.partial").exists()
    assert not (out / "feedback" / "b_sleepy" / "toy").exists() and not (out / "feedback" / "b_sleepy" / ".toy.partial").exists()
    assert "a_first" in {r[0] for r in csv.reader(open(out / "lms_grades.csv", encoding="utf-8"))}
    assert _no_kit_processes_left(kit) == []
    first = (out / "staff" / "a_first" / "toy" / "report.json").stat().st_mtime_ns

    # SIGTERM, and the weakest isolation: the worker is in a session of its own and must be killed all the same
    rc, err = stop_mid_batch(signal.SIGTERM, {"COURSEKIT_ISOLATION": "rlimits"}, ["--insecure"])
    assert rc == 143, err
    assert "coursekit grade: interrupted by SIGTERM: 1 of 3 submission(s) are graded" in err
    assert not (out / "staff" / "b_sleepy" / ".toy.partial").exists()
    assert _no_kit_processes_left(kit) == []
    assert (out / "staff" / "a_first" / "toy" / "report.json").stat().st_mtime_ns == first  # done: skipped

    flag.unlink()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    assert sorted(rows) == ["a_first", "b_sleepy", "c_last"]
    assert all(float(r["total"]) == 4 and float(r["max_points"]) == 4 for r in rows.values()), rows
    assert (out / "staff" / "a_first" / "toy" / "report.json").stat().st_mtime_ns == first
    if BUBBLEWRAP:
        assert {r["isolation"] for r in rows.values()} == {"bubblewrap"}


def test_a_report_that_does_not_match_its_rubric_is_graded_again(kit, tmp_path):
    _notebook(tmp_path / "subs" / "honest" / "crashy.ipynb", HONEST, "crashy")
    out = tmp_path / "out"

    def grade():
        return grade_batch([tmp_path / "subs"], out, ["crashy"], options=GradeOptions(profile="smoke", insecure=True), progress=False)[0]

    first = grade()
    assert not first.get("skipped") and len(first["tests"]) == 3 and first["points"] == 1
    assert grade().get("skipped")
    path = out / "staff" / "honest" / "crashy" / "report.json"
    tampered = [
        lambda r: r["tests"].pop(),  # the interrupted batch's report: fewer tests than the rubric
        lambda r: r["tests"][0].update(points=99),  # more points than the test has
        lambda r: r["tests"][0].update(points=float("nan")),
        lambda r: r["tests"][0].update(id="test_crashy.py::test_other"),
        lambda r: r["tests"].append(dict(r["tests"][0])),  # a test twice
        lambda r: r.update(points=r["points"] + 1),  # a total that is not the sum
        lambda r: r["key"].update(notebook_sha256="0" * 64),  # another notebook
    ]
    for change in tampered:
        rep = json.loads(path.read_text())
        change(rep)
        path.write_text(json.dumps(rep))
        if change is not tampered[-1]:  # (a report of another notebook is complete: only the batch knows it is stale)
            write_gradebook(out)
            assert _rows(out)["honest"]["crashy"] == "not graded yet", ("an incomplete report reached the gradebook",
                                                                       tampered.index(change))
        again = grade()
        assert not again.get("skipped") and len(again["tests"]) == 3 and again["points"] == 1
        assert float(_rows(out)["honest"]["total"]) == 1


def test_the_graders_results_count_only_for_a_whole_session(kit, tmp_path):
    code = tmp_path / "sub.py"
    code.write_text(HEAD + HONEST)
    results = tmp_path / "results.json"
    base = [sys.executable, "-m", "pytest", str(kit / "autograder" / "crashy"), "-q", "-p", "no:cacheprovider", "-o", "addopts=",
            "--submission", str(code), "--results", str(results), "--profile", "smoke", "--rootdir", str(kit)]
    env = {**os.environ, "COURSEKIT_ROOT": str(kit)}
    part = subprocess.run(base + ["-k", "partial"], env=env, capture_output=True, text=True, cwd=kit, timeout=120)
    assert not results.exists()
    assert "coursekit: no results written" in part.stderr and "2 test(s) of the rubric did not run" in part.stderr
    whole = subprocess.run(base, env=env, capture_output=True, text=True, cwd=kit, timeout=120)
    data = json.loads(results.read_text())
    assert data["finished"] is True and len(data["tests"]) == 3, whole.stderr

    # a session that did not finish normally (Ctrl-C in pytest) writes nothing, even with every test run
    config = SimpleNamespace(stash={}, getoption=lambda name: {"--results": str(results), "--profile": "smoke"}.get(name))
    state = pytest_plugin._State(config)
    config.stash[pytest_plugin._KEY] = state
    folder = kit / "autograder" / "crashy"
    state.rubrics[folder] = load_rubric("crashy", folder / "rubric.json")
    state.finished = set(state.rubrics[folder].items)
    pytest_plugin.pytest_sessionfinish(SimpleNamespace(config=config), pytest.ExitCode.INTERRUPTED)
    assert not results.exists()
    pytest_plugin.pytest_sessionfinish(SimpleNamespace(config=config), pytest.ExitCode.TESTS_FAILED)
    assert json.loads(results.read_text())["finished"] is True
    shutil.rmtree(state.scratch, ignore_errors=True)

    # the engine: a grading that does not cover the rubric is no report of points
    _notebook(tmp_path / "subs" / "ann" / "ghosty.ipynb", HONEST, "ghosty")
    rep = grade_batch([tmp_path / "subs"], tmp_path / "out", ["ghosty"], options=GradeOptions(profile="smoke", insecure=True),
                      progress=False)[0]
    assert rep["points"] == 0 and {t["message"] for t in rep["tests"]} == {"grading did not finish; the course staff have the log"}
    log = (tmp_path / "out" / "staff" / "ann" / "ghosty" / "grader.log").read_text()
    assert "1 test(s) of the rubric did not run: test_ghosty.py::test_missing" in log


# --- 2. the whole-submission timeout kills everything the grader started ------------------------------------------
def test_submission_timeout_kills_the_graders_workers(kit, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_ISOLATION", "rlimits")  # the worker in a session of its own, nothing else to kill it
    _notebook(tmp_path / "subs" / "looper" / "toy.ipynb", LOOPS)
    t0 = time.monotonic()
    rep = grade_batch([tmp_path / "subs"], tmp_path / "out", ["toy"], progress=False,
                      options=GradeOptions(profile="smoke", timeout=6, call_timeout=100, insecure=True))[0]
    assert time.monotonic() - t0 < 30
    assert rep["points"] == 0 and rep["tests"][0]["message"] == "grading took longer than 6 s and was stopped"
    assert _no_kit_processes_left(kit, wait=3) == []


# --- 3. hostile zips and names -----------------------------------------------------------------------------------
def _zip(path: Path, entries: dict, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def _raw_name(path: Path, placeholder: bytes, raw: bytes, utf8_flag: bool) -> None:
    """Put bytes that zipfile would not write into an entry's name, and set or clear its "names are UTF-8" flag."""
    data = path.read_bytes().replace(placeholder, raw)
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local header, central directory
        i = data.index(sig)
        flags = int.from_bytes(data[i + at:i + at + 2], "little")
        flags = flags | 0x800 if utf8_flag else flags & ~0x800
        data = data[:i + at] + flags.to_bytes(2, "little") + data[i + at + 2:]
    path.write_bytes(data)


def _nb_bytes(code: str = HONEST, assignment: str = "toy") -> bytes:
    nb = new_notebook(metadata={"coursekit": {"assignment": assignment}})
    nb.cells = [new_code_cell(HEAD), new_code_cell(code)]
    return nbformat.writes(nb).encode()


def test_hostile_zips_cost_only_their_author(tmp_path):
    folder = tmp_path / "students"
    _notebook(folder / "fine" / "toy.ipynb", HONEST)
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    _zip(folder / "bomb.zip", {"toy.ipynb": b"\0" * (5 * 1024 * 1024)})
    link = zipfile.ZipInfo("toy.ipynb")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    _zip(folder / "linker.zip", {link: "/etc/passwd"})
    _zip(folder / "many.zip", {f"f{i}.txt": b"" for i in range(MAX_ENTRIES + 1)})
    inner = _zip(tmp_path / "inner.zip", {"toy.ipynb": _nb_bytes()})
    _zip(folder / "nested.zip", {"inner.zip": inner.read_bytes()})
    _zip(folder / "escaper.zip", {"../escaped.ipynb": b"{}"})
    _zip(folder / "absolute.zip", {"/abs.ipynb": b"{}"})
    _zip(folder / "backslash.zip", {"..\\..\\escaped2.ipynb": b"{}"})
    _zip(folder / "oddnames.zip", {"toy.ipynb\n=evil": b"", "ctl\x1b[31m.txt": b"", "toy/toy.ipynb": _nb_bytes()})
    _raw_name(_zip(folder / "badutf8.zip", {"toyX.ipynb": b"{}"}), b"toyX", b"toy\xff", utf8_flag=True)
    _raw_name(_zip(folder / "cp437.zip", {"cafX.ipynb": _nb_bytes()}), b"cafX", b"caf\x81", utf8_flag=False)  # names in cp437

    unzip = tmp_path / "out" / ".unzipped"
    subs = {s.student: s for s in find_submissions([folder], ["toy"], unzip_into=unzip)}
    assert subs["fine"].notebook is not None and subs["fine"].problem == ""
    expected = {
        "broken": "the zip could not be opened: broken.zip is not a zip file that can be opened (File is not a zip file)",
        "bomb": "the zip could not be opened: bomb.zip looks like a zip bomb: 'toy.ipynb' unpacks to 5 MB from",
        "linker": "the zip could not be opened: linker.zip holds a symbolic link ('toy.ipynb'), which is not accepted",
        "many": f"the zip could not be opened: many.zip holds {MAX_ENTRIES + 1} files and folders, more than the {MAX_ENTRIES} accepted",
        "nested": "(found no notebook); zips inside a zip are not unpacked: zip the notebook itself",
        "escaper": "the zip could not be opened: escaper.zip holds the entry '../escaped.ipynb', which points outside the zip",
        "absolute": "the zip could not be opened: absolute.zip holds the entry '/abs.ipynb', which points outside the zip",
        "backslash": "which points outside the zip",
        "badutf8": "the zip could not be opened: badutf8.zip holds file names that are not valid UTF-8",
    }
    for who, message in expected.items():
        assert subs[who].notebook is None and message in subs[who].problem, (who, subs[who].problem)
    assert subs["oddnames"].notebook is not None and subs["oddnames"].notebook.name == "toy.ipynb", subs["oddnames"].problem
    assert subs["cp437"].notebook is not None and subs["cp437"].notebook.name == "cafü.ipynb"
    # nothing left of the refused zips, nothing outside the unzip folder, no control characters in names
    written = [p for p in tmp_path.rglob("*") if not p.is_relative_to(folder) and p != inner]
    assert all(p.is_relative_to(unzip) or p == unzip.parent for p in written), written
    assert not list(tmp_path.rglob("escaped*")) and not list(tmp_path.rglob("abs.ipynb"))
    assert not any(re.search(r"[\x00-\x1f\x7f]", p.name) for p in written)
    assert not any("toy.ipynb" == p.name for p in unzip.rglob("*") if "nested" in str(p))  # the inner zip stays packed
    # a student folder's zip named '..' (the file '...zip') unpacks inside the unzip folder, not over OUT
    _zip(tmp_path / "dots" / "...zip", {"toy.ipynb": _nb_bytes()})
    [dots] = find_submissions([tmp_path / "dots"], ["toy"], unzip_into=unzip)
    assert dots.student == ".." and dots.notebook.is_relative_to(unzip) and (tmp_path / "out").is_dir()


def test_student_names_become_safe_unique_folders(tmp_path):
    names = ["../x", "a/b", ".hidden", "-rf", "a\nb", "tab\there", "\x1b[31mred", "x" * 300, "José", "", "..", "gradebook.csv",
             "GRADEBOOK.CSV", "alice", "Alice", "a b", "a_b", "con", "é" * 100]
    folders = [safe_folder_name(n) for n in names]
    for n, f in zip(names, folders):
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,69}", f), (n, f)
        assert f.lower() not in RESERVED and f == safe_folder_name(n)
    assert len(set(folders)) == len(names)
    assert safe_folder_name("alice") == "alice" and safe_folder_name("a_b") == "a_b"  # safe names are kept

    root = tmp_path / "students"
    for name in ("Alice", "alice", "a b", "a_b", "gradebook.csv", "=SUM(A1)", "x" * 200):
        _notebook(root / name / "toy.ipynb", HONEST)
    _zip(root / "alice.zip", {"toy.ipynb": _nb_bytes()})  # a second "alice", from a zip
    subs = find_submissions([root], ["toy"], unzip_into=tmp_path / "out" / ".unzipped")
    assert len(subs) == 8
    assert len({s.folder.lower() for s in subs}) == 8, [s.folder for s in subs]
    by = {(s.student, ".zip" if s.source.is_file() else ""): s.folder for s in subs}
    assert by[("a_b", "")] == "a_b" and by[("a b", "")].startswith("a_b-")
    assert by[("gradebook.csv", "")].startswith("gradebook.csv-") and by[("=SUM(A1)", "")].startswith("_SUM_A1_-")
    assert by[("alice", "")] != by[("alice", ".zip")] and by[("Alice", "")].lower() != by[("alice", "")].lower()
    again = find_submissions([root], ["toy"], unzip_into=tmp_path / "out" / ".unzipped")
    assert [s.folder for s in again] == [s.folder for s in subs]  # the same command finds the same folders


def test_a_hostile_batch_goes_on_and_writes_only_inside_out(kit, tmp_path):
    root = tmp_path / "students"
    evil = "=1+2<img src=x onerror=alert(1)>"
    raises = "def one_hot_pixels(x, k):\n    raise ValueError(\"<script>alert('x')</script>\")\n"
    _notebook(root / evil / "toy.ipynb", raises)
    for name in ("gradebook.csv", "a\nb", "\x1b[31mred", "n" * 200):  # each with another assignment's notebook: 0 points, fast
        _notebook(root / name / "toy.ipynb", HONEST, "vae")
    _notebook(root / "formula" / "=cmd|calc.ipynb", HONEST, "vae")
    os.makedirs(os.fsencode(root) + b"/caf\xe9")  # a folder name that is not UTF-8
    _notebook(Path(os.fsdecode(os.fsencode(root) + b"/caf\xe9")) / "toy.ipynb", HONEST, "vae")
    (root / "broken.zip").write_bytes(b"not a zip at all")
    _zip(root / "...zip", {"toy.ipynb": _nb_bytes(HONEST, "vae")})
    out = tmp_path / "parent" / "out"
    reports = grade_batch([root], out, ["toy"], jobs=2, options=GradeOptions(profile="smoke", insecure=True), progress=False)
    assert len(reports) == 9
    # only OUT in its parent; every report at OUT/staff/<safe folder>/toy/report.json, every page under OUT/feedback
    assert [p.name for p in (tmp_path / "parent").iterdir()] == ["out"]
    assert len(list(out.rglob("report.json"))) == 9 and len(list((out / "feedback").rglob("feedback.html"))) == 9
    for p in [*out.rglob("report.json"), *out.rglob("feedback.html")]:
        top, folder, *rest = p.relative_to(out).parts
        assert (top, *rest) in (("staff", "toy", "report.json"), ("feedback", "toy", "feedback.html"))
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", folder)
    assert (out / "gradebook.csv").is_file()

    rows = list(csv.DictReader(open(out / "gradebook.csv", encoding="utf-8")))
    by = {r["student"]: r for r in rows}
    assert len(rows) == 9
    assert "'" + evil in by and evil not in by  # formula injection neutralised, the name kept
    assert by["'" + evil]["problem"] == "" and float(by["'" + evil]["total"]) == 0
    assert by["formula"]["problem"] == "'=cmd|calc.ipynb is the notebook of assignment 'vae', not 'toy'"
    assert by["broken"]["problem"].startswith("the zip could not be opened: broken.zip is not a zip file")
    assert "caf\ufffd" in by and "a\nb" in by and ".." in by
    assert not any(str(v).startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for v in r.values())

    rep = next(r for r in reports if r["student"] == evil)
    folder = out / "feedback" / rep["folder"] / "toy"
    page = (folder / "feedback.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page and "=1+2&lt;img src=x onerror=alert(1)&gt;" in page
    gs = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert any("<script>alert('x')</script>" in t["output"] for t in gs["tests"])  # plain JSON text, as written
    table = summary_table(reports)
    assert "\x1b" not in table and "\n" not in "".join(line for line in table.splitlines())
    assert len(table.splitlines()) == 1 + 9 + (0 if BUBBLEWRAP else 1)  # header, one line each (, the note on the sandbox)


def test_html_and_gradescope_escape_every_student_string(kit, tmp_path):
    bad = "<b onclick=x>&\"'"
    report = {
        "student": bad, "folder": "x", "assignment": "toy", "notebook": f"/subs/{bad}.ipynb", "profile": "smoke",
        "isolation": "rlimits", "insecure": True, "device": "cpu", "versions": {"torch": "2"}, "points": 1, "max_points": 4,
        "problem": "problem " + bad, "total_seconds": 1.0,
        "tests": [{"id": "t::a", "name": "A", "points": 1, "max_points": 2, "passed": False, "details": True,
                   "message": "message " + bad + "m" * 10000, "seconds": 0.1,
                   "attachments": [{"title": "title " + bad, "file": "pic.png"}, {"title": "t", "file": "../../etc/passwd"}]}],
    }
    art = tmp_path / "artifacts"
    art.mkdir()
    shutil.copy(_tiny_png(tmp_path), art / "pic.png")
    write_feedback(report, tmp_path / "f.html", art)
    page = (tmp_path / "f.html").read_text()
    assert bad not in page and "<b " not in page
    esc = "&lt;b onclick=x&gt;&amp;&quot;&#x27;"
    for what in ("problem ", "message ", "title ", "notebook: ", "toy: "):
        assert what + esc in page, what
    assert "graded without the sandbox (isolation: rlimits, --insecure)" in page
    assert page.count("<img") == 1  # the picture outside the artifacts folder is not read
    write_gradescope(report, tmp_path / "results.json")
    gs = json.loads((tmp_path / "results.json").read_text())
    assert len(gs["tests"][0]["output"]) <= 4000 and gs["tests"][0]["output"].startswith("message " + bad)
    assert "graded without the sandbox" in gs["output"]
    for v, want in (("=A1", "'=A1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"),
                    ("ok", "ok"), (-1, -1), (2.5, 2.5)):
        assert csv_cell(v) == want


def _tiny_png(tmp_path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(0.2, 0.2))
    fig.savefig(tmp_path / "tiny.png")
    return tmp_path / "tiny.png"


# --- 5. the pytest plugin: a timed-out probe is not run twice; a crashing grader gives no credit --------------------
def test_a_timed_out_probe_is_not_run_again_and_unsandboxed_grading_is_said(kit, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_ISOLATION", "rlimits")
    _notebook(tmp_path / "subs" / "looper" / "toy.ipynb", LOOPS)
    out = tmp_path / "out"
    rep = grade_batch([tmp_path / "subs"], out, ["toy"], progress=False,
                      options=GradeOptions(profile="smoke", call_timeout=2, insecure=True))[0]
    by = _by_name(rep)
    shape, values, secret = by["Output shape"], by["One-hot values"], by["A check whose details are hidden"]
    assert shape["message"].startswith("took longer than 2 s") and shape["seconds"] >= 2
    # test_values calls the same probe with the same inputs: the same error at once
    assert values["message"] == shape["message"] and values["seconds"] < 1.0, values
    assert secret["seconds"] >= 2  # other inputs: run (and timed out) on their own
    # graded without the sandbox: the report, the gradebook, the feedback page and the table say so
    assert rep["isolation"] == "rlimits" and rep["insecure"] is True
    assert _rows(out)["looper"]["isolation"] == "rlimits (without the sandbox, --insecure)"
    assert "graded without the sandbox (isolation: rlimits, --insecure)" in (out / "feedback" / "looper" / "toy" / "feedback.html").read_text()
    table = summary_table([rep])
    assert table.splitlines()[1].split()[:6] == ["looper", "toy", "0", "/", "4", "!"]  # the row is marked
    assert table.splitlines()[-1] == ("! 1 submission(s) graded without the sandbox (isolation: rlimits): "
                                      "their code ran with limits only")


def test_a_crashing_grader_gives_no_credit_and_insecure_reaches_the_grader(kit, tmp_path, monkeypatch):
    _notebook(tmp_path / "subs" / "ann" / "crashy.ipynb", HONEST, "crashy")
    rep = grade_batch([tmp_path / "subs"], tmp_path / "out", ["crashy"], progress=False,
                      options=GradeOptions(profile="smoke", insecure=True))[0]
    by = _by_name(rep)
    assert by["Crash after credit"]["points"] == 0 and by["Crash after credit"]["passed"] is False
    assert by["Crash after credit"]["message"] == "the grader could not check this (KeyError); please tell the course staff"
    assert by["Partial"]["points"] == 1 and by["Partial"]["message"] == "the second part did not hold"  # asserts keep partial credit
    assert by["Environment"]["message"] == "insecure=1" and rep["insecure"] is True
    monkeypatch.setattr(engine, "strong_isolation_available", lambda: True)  # these graders run no student code
    rep = grade_batch([tmp_path / "subs"], tmp_path / "out", ["crashy"], progress=False,
                      options=GradeOptions(profile="smoke", force=True))[0]
    assert _by_name(rep)["Environment"]["message"] == "insecure=unset" and rep["insecure"] is False


# --- 6. no sandbox: refuse, unless --insecure; the demo trusts its own examples -------------------------------------
def test_grading_refuses_without_the_sandbox_unless_insecure(kit, tmp_path, monkeypatch, capsys):
    _notebook(tmp_path / "subs" / "ann" / "toy.ipynb", HONEST)
    monkeypatch.setattr(engine, "strong_isolation_available", lambda: False)
    with pytest.raises(IsolationError, match=r"the sandbox for student code \(bubblewrap\) is not available here, so nothing "
                                             r"was graded: .* or grade with --insecure"):
        grade_batch([tmp_path / "subs"], tmp_path / "out", ["toy"], progress=False)
    assert not (tmp_path / "out").exists()
    assert cli.main(["grade", str(tmp_path / "subs"), "-o", str(tmp_path / "out2"), "-a", "toy"]) == 2
    assert "coursekit grade: error: the sandbox for student code (bubblewrap) is not available here" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
    # the fallback where the sandbox module does not answer itself
    monkeypatch.undo()
    monkeypatch.delattr(sandbox_module, "strong_isolation_available", raising=False)
    monkeypatch.setattr(sandbox_module, "_which_isolation", lambda prefer=None: "rlimits")
    assert engine.strong_isolation_available() is False
    monkeypatch.setattr(sandbox_module, "_which_isolation", lambda prefer=None: "bubblewrap")
    assert engine.strong_isolation_available() is True
    assert cli.build_parser().parse_args(["grade", "x", "-o", "y", "--insecure"]).insecure is True


def test_the_demo_grades_its_own_examples_without_the_sandbox_and_says_so(monkeypatch):
    from coursekit.demo import demo_grade_options

    said = []
    monkeypatch.setattr(engine, "strong_isolation_available", lambda: False)
    opts = demo_grade_options("smoke", said.append)
    assert opts.insecure is True and opts.profile == "smoke"
    assert len(said) == 1 and said[0].startswith("bubblewrap's sandbox is not available here: the demo grades its own example "
                                                 "submissions without it (insecure, limits only)")
    said.clear()
    monkeypatch.setattr(engine, "strong_isolation_available", lambda: True)
    assert demo_grade_options(None, said.append).insecure is False and said == []


def test_grading_interrupted_names_the_signal_and_the_exit_code(tmp_path):
    e = GradingInterrupted(signal.SIGTERM, 3, 5, tmp_path)
    assert e.exit_code == 143 and GradingInterrupted(signal.SIGINT, 0, 1, tmp_path).exit_code == 130
    assert str(e) == (f"interrupted by SIGTERM: 3 of 5 submission(s) are graded, their reports and {tmp_path / 'gradebook.csv'} "
                      "are written; run the same command again to grade the other 2 (what is done is skipped)")
