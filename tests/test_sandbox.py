"""The sandbox: cheats, crashes and endless loops cost the submission, never the grader; what the student's
process can read, write, start and leave behind."""

import http.server
import shutil
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from coursekit import paths
from coursekit.grading import sandbox as sandbox_module
from coursekit.grading.sandbox import IsolationError, Limits, Sandbox, SubmissionError, _which_isolation, strong_isolation_available

BWRAP = _which_isolation() == "bubblewrap"
needs_bwrap = pytest.mark.skipif(not BWRAP, reason="needs bubblewrap (installed by .ci/run)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the dedicated sandbox users need a grader running as root (CI runs as root)")

PROBES = Path(__file__).parent / "fixtures" / "sandbox_probes.py"

CODE = r'''
import os, sys, ctypes, socket
import torch

def honest(n):
    return torch.arange(n) * 2

class Liar:
    def __eq__(self, other):
        return True

def liar():
    return Liar()

class AlwaysEqual(torch.Tensor):
    def __eq__(self, other):
        return torch.ones((), dtype=torch.bool)

def sneaky_tensor():
    return torch.zeros(3).as_subclass(AlwaysEqual)

def patch_allclose():
    torch.allclose = lambda *a, **k: True
    return torch.zeros(1)

def exits():
    sys.exit(0)

def hard_exit():
    os._exit(0)

def loops():
    while True:
        pass

def sleeps():
    import time
    while True:
        time.sleep(1)

def spin(seconds):
    """Compute for ``seconds`` of CPU time; returns the CPU seconds it took."""
    import time
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return time.process_time() - start

def hog():
    return torch.empty(100 * 1024**3, dtype=torch.uint8)

def segfault():
    ctypes.string_at(0)

def read(path):
    try:
        return open(path).read()
    except OSError as e:
        return "unreadable: " + type(e).__name__

def write(path):
    try:
        open(path, "w").write("forged")
        return "written"
    except OSError as e:
        return "refused: " + type(e).__name__

def connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3)
        return "connected"
    except OSError as e:
        return "no network: " + type(e).__name__

def chatty():
    print("hello from the student")
    return 1

def listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        return "unreadable: " + type(e).__name__

def fill(path, mb):
    try:
        with open(path, "wb") as f:
            for _ in range(mb):
                f.write(b"\0" * 1024 * 1024)
        return "written"
    except OSError as e:
        return "refused: " + type(e).__name__

def environment():
    return dict(os.environ)

def whoami():
    return [os.getuid(), os.getgid(), os.environ["HOME"], os.getcwd()]

def fork_bomb(n):
    import time
    made = 0
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError as e:
            return [made, type(e).__name__]
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        made += 1
    return [made, "no limit"]

def daemon(marker):
    if os.fork() == 0:  # a double-forked daemon in a session of its own, with a marker the test can see in its argv
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sh", ["sh", "-c", "while :; do sleep 1; done", marker])
        os._exit(0)
    os.wait()
    return 1
'''


def _pids_with(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``, seen from the grader's side."""
    found = []
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and marker.encode() in Path(f"/proc/{d}/cmdline").read_bytes():
                found.append(int(d))
        except OSError:
            pass
    return found


def _wait_for(what, wait: float = 5.0) -> bool:
    deadline = time.monotonic() + wait
    while not what():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _gone(marker: str) -> bool:
    return _wait_for(lambda: not _pids_with(marker))


def _there(marker: str) -> bool:
    return _wait_for(lambda: _pids_with(marker))


@pytest.fixture(scope="module")
def code_file(tmp_path_factory):
    code = tmp_path_factory.mktemp("sub") / "submission.py"
    code.write_text(CODE)
    return code


@pytest.fixture(scope="module")
def data_copy(tmp_path_factory):
    """A folder the grader binds read-only at the kit's data/ (as it binds the data set without its held-out split)."""
    folder = tmp_path_factory.mktemp("datacopy")
    (folder / "train.txt").write_text("training images")
    folder.chmod(0o755)  # readable by the sandbox's user; the folders above it need not be
    return folder


@pytest.fixture(scope="module")
def box(code_file, data_copy):
    sb = Sandbox(code_file, PROBES, Limits(call_timeout=20, memory_mb=3072), ro_binds=[(data_copy, paths.kit_root() / "data")])
    yield sb
    sb.cleanup()


def call(box, fn, *args, timeout=None):
    return box.call("call", fn=fn, args=list(args), timeout=timeout)["out"]


def test_honest_result_crosses_as_plain_tensor(box):
    out = call(box, "honest", 4)
    assert type(out) is torch.Tensor and out.tolist() == [0, 2, 4, 6]


def test_cheating_objects_do_not_cross(box):
    with pytest.raises(SubmissionError, match="is a Liar, not a tensor"):
        call(box, "liar")
    out = call(box, "sneaky_tensor")
    assert type(out) is torch.Tensor and not torch.equal(out, torch.ones(3))
    call(box, "patch_allclose")  # patches torch in the worker only
    assert not torch.allclose(torch.zeros(1), torch.ones(1))


def test_exit_crash_loop_and_hog_are_messages_and_the_worker_comes_back(box):
    with pytest.raises(SubmissionError, match=r"called sys.exit\(0\)"):
        call(box, "exits")
    with pytest.raises(SubmissionError, match=r"ended \(exit code 0\).*os._exit"):
        call(box, "hard_exit")
    assert call(box, "honest", 2).tolist() == [0, 2]  # restarted
    with pytest.raises(SubmissionError, match="took longer than 2 s"):
        call(box, "loops", timeout=2)
    with pytest.raises(SubmissionError, match="segmentation fault"):
        call(box, "segfault")
    with pytest.raises(SubmissionError, match="RuntimeError|MemoryError"):
        call(box, "hog")
    assert call(box, "honest", 3).tolist() == [0, 2, 4]


def test_prints_go_to_the_log_not_the_protocol(box):
    assert call(box, "chatty") == 1
    assert "hello from the student" in box.log_tail()


@needs_bwrap
def test_hidden_files_readonly_fs_and_no_network(box, tmp_path):
    secret = paths.autograder_dir() / "README.md"
    assert secret.is_file()
    assert call(box, "read", str(secret)).startswith("unreadable")
    out_dir = paths.kit_root() / "README.md"
    assert call(box, "write", str(out_dir)).startswith("refused")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        assert call(box, "connect", srv.server_address[1]).startswith("no network")
    finally:
        srv.shutdown()
        srv.server_close()


def test_code_that_fails_to_load(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n    pass\n")
    with Sandbox(bad, PROBES) as sb:
        with pytest.raises(SubmissionError, match="failed to run: SyntaxError"):
            sb.call("call", fn="f")
    loop = tmp_path / "loop.py"
    loop.write_text("while True:\n    pass\n")
    with Sandbox(loop, PROBES, Limits(load_timeout=2)) as sb:
        for _ in range(2):  # the second call does not wait again
            with pytest.raises(SubmissionError, match="took longer than 2 s of CPU time while loading"):
                sb.call("call", fn="f")
        assert sb.starts == 1


# --- time limits: CPU seconds the worker got, with a wall-clock cap ----------------------------------------------------
ISOLATIONS = [pytest.param("bubblewrap", marks=needs_bwrap), "rlimits"]


def _worker_tree(sb: Sandbox) -> list[int]:
    """The worker's processes as the grader sees them (under bubblewrap: bubblewrap, and Python below it)."""
    return sandbox_module._tree(sb.proc.pid, sandbox_module._procs())


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def test_the_cpu_time_of_a_tree_counts_its_descendants_alive_and_reaped():
    spin = "import time\nwhile time.process_time() < 0.8: pass\n"  # /proc counts whole ticks: asked below for 0.6
    # sh runs one spinner to its end (reaped by sh: in its cutime), then one that stays alive (in its own utime)
    sh = subprocess.Popen(["/bin/sh", "-c", '"$0" -c "$1"; "$0" -c "$2"', sys.executable, spin,
                           spin + "print(1, flush=True)\ntime.sleep(60)\n"], stdout=subprocess.PIPE)
    try:
        assert sh.stdout.readline() == b"1\n"
        tree, own = sandbox_module.tree_cpu_seconds(sh.pid), sandbox_module._cpu_seconds([sh.pid])
        assert own >= 0.6 and tree - own >= 0.6, (tree, own)
    finally:
        sh.kill()
        sh.wait()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_busy_endless_loop_hits_its_cpu_limit_a_sleeping_one_the_wall_clock_cap(code_file, isolation):
    # a wide wall-clock cap: the busy loop is stopped by its CPU time even where this machine is busy
    with Sandbox(code_file, PROBES, Limits(call_timeout=2, wall_factor=15), isolation=isolation, insecure=True) as sb:
        assert call(sb, "honest", 1).tolist() == [0]
        t0 = time.monotonic()
        with pytest.raises(SubmissionError, match=r"^took longer than 2 s of CPU time while running check 'call' \(an endless loop"):
            call(sb, "loops")
        busy = time.monotonic() - t0
        assert sb.proc is None and busy >= 2  # killed; one thread cannot compute faster than the clock runs
        print(f"busy loop ({isolation}): stopped after {busy:.2f} s of wall clock")
    with Sandbox(code_file, PROBES, Limits(call_timeout=1, wall_factor=3), isolation=isolation, insecure=True) as sb:
        assert call(sb, "honest", 1).tolist() == [0]
        t0 = time.monotonic()
        with pytest.raises(SubmissionError, match=r"^took longer than 3 s of wall-clock time while running check 'call', the hard "
                                                  r"cap \(3 × its 1 s limit\).*waiting, not computing"):
            call(sb, "sleeps")
        asleep = time.monotonic() - t0
        assert sb.proc is None and 3 <= asleep < 10, asleep
        assert call(sb, "honest", 2).tolist() == [0, 2]  # a fresh worker
        print(f"sleeping loop ({isolation}): stopped after {asleep:.2f} s of wall clock")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_time_the_worker_does_not_get_does_not_count(code_file, isolation):
    """The mechanism behind grading alike on a busy machine: a worker that gets no CPU (stopped with SIGSTOP for
    3 s, as a busy machine starves it) is not charged for that time. A call of 1 s of computing passes its 2 s
    limit although it took longer than that on the wall clock."""
    with Sandbox(code_file, PROBES, Limits(call_timeout=2, wall_factor=10), isolation=isolation, insecure=True) as sb:
        assert call(sb, "honest", 1).tolist() == [0]
        pids = _worker_tree(sb)
        assert len(pids) >= (3 if isolation == "bubblewrap" else 1)  # bubblewrap, its init, Python
        _signal_all(pids, signal.SIGSTOP)
        wake = threading.Timer(3.0, _signal_all, (pids, signal.SIGCONT))
        t0 = time.monotonic()
        wake.start()
        try:
            used = call(sb, "spin", 1.0)  # waits in the pipe until the worker wakes
        finally:
            wake.cancel()
            _signal_all(pids, signal.SIGCONT)
        wall = time.monotonic() - t0
        assert used >= 1.0 and wall >= 3.0 > 2.0
        print(f"stopped worker ({isolation}): {used:.2f} CPU s in {wall:.2f} s of wall clock")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_call_within_its_cpu_limit_passes_on_a_loaded_machine(code_file, isolation):
    """Five busy processes share one CPU with the worker (all pinned to it, each in a session of its own, so the
    kernel gives each about a sixth of it whatever the machine's size): a call of 1 s of computing takes longer
    than its 2 s limit on the wall clock and still passes. (The cap, 30 × 2 s, is not what is tested here.)"""
    cpu = min(os.sched_getaffinity(0))
    busy = []
    with Sandbox(code_file, PROBES, Limits(call_timeout=2, wall_factor=30), isolation=isolation, insecure=True) as sb:
        assert call(sb, "honest", 1).tolist() == [0]
        try:
            for pid in _worker_tree(sb):
                for task in os.listdir(f"/proc/{pid}/task"):  # every thread of it
                    os.sched_setaffinity(int(task), {cpu})
            load = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass"  # ends even if this test dies
            for _ in range(5):
                busy.append(subprocess.Popen([sys.executable, "-c", load], start_new_session=True))
                os.sched_setaffinity(busy[-1].pid, {cpu})
            time.sleep(0.5)  # the load is on
            t0 = time.monotonic()
            used = call(sb, "spin", 1.0)
            wall = time.monotonic() - t0
        finally:
            for p in busy:
                p.kill()
                p.wait()
        assert used >= 1.0 and wall > 2.0, (used, wall)
        print(f"loaded machine ({isolation}): {used:.2f} CPU s in {wall:.2f} s of wall clock")


def test_a_whole_grading_s_limit_counts_cpu_time_too(tmp_path):
    """The engine's limit for a whole grading (here 1 s) works as a call's: CPU seconds of the grader's process tree,
    with a wall-clock cap; a process standing in for the grader sleeps where a busy machine would starve it."""
    from coursekit.grading.engine import _run_grader

    def run(code: str, **kw) -> tuple[str, str, float]:
        t0 = time.monotonic()
        status, _, why = _run_grader([sys.executable, "-c", code], dict(os.environ), tmp_path, 1.0, None, **kw)
        return status, why, time.monotonic() - t0

    spin = "import time\nwhile time.process_time() < 0.4: pass\n"
    assert run("import time\ntime.sleep(2.5)\n" + spin)[:2] == ("ok", "")  # 2.5 s of wall clock, 0.4 s of CPU
    status, why, wall = run("while True: pass", wall_factor=20)  # a wide cap: stopped by its CPU time even on a busy machine
    assert (status, why) == ("timeout", "grading took longer than 1 s and was stopped") and wall >= 1, wall
    status, why, wall = run("import time\ntime.sleep(60)", wall_factor=3)
    assert status == "timeout" and why == "grading took longer than 3 s of wall-clock time, the hard cap (3 × its 1 s limit), and was stopped"
    assert 3 <= wall < 10, wall


# --- what the worker can read, write, start and leave behind ---------------------------------------------------------
@needs_bwrap
def test_the_worker_sees_python_and_coursekit_not_the_kit_or_other_folders(box, code_file):
    kit = paths.kit_root()
    assert (kit / ".git").exists() and (kit / "autograder").is_dir()
    # of the kit, only the coursekit package (and a virtual environment kept inside the checkout) is there
    assert set(call(box, "listdir", str(kit))) <= {"coursekit", ".venv", "data"}
    secrets = [kit / ".git" / "HEAD", kit / "autograder" / "README.md", kit / "tests" / "test_sandbox.py", kit / "README.md"]
    secrets += [p for p in (kit / "solutions").rglob("*.py")][:1] + [p for p in (kit / "assignments").rglob("*") if p.is_file()][:1]
    secrets += [kit / "out" / "x", kit / "data" / "course.json"]
    folders = []
    try:  # a grading output and another submission, under /tmp and outside it
        for parent in (tempfile.gettempdir(), "/var/tmp", str(kit)):
            folders.append(Path(tempfile.mkdtemp(prefix=".coursekit-sandbox-test-", dir=parent)))
            (folders[-1] / "report.json").write_text("{}")
            secrets.append(folders[-1] / "report.json")
        other = Sandbox(code_file, PROBES)  # another submission's worker folder, never started
        secrets.append(other.code_dir / "submission.py")
        secrets.append(Path(box._err_path))
        for path in secrets:
            assert str(call(box, "read", str(path))).startswith("unreadable"), path
            assert not str(call(box, "listdir", str(path.parent))).count("report.json"), path
        allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}
        allowed |= {Path(p).resolve().parts[1] for p in (sys.prefix, sys.base_prefix, paths.kit_root())}
        assert set(call(box, "listdir", "/")) <= allowed
        assert call(box, "read", "/etc/passwd").startswith("unreadable")
    finally:
        for f in folders:
            shutil.rmtree(f, ignore_errors=True)
        other.cleanup()


@needs_bwrap
def test_a_read_only_bind_shows_the_grader_s_copy_at_the_kit_s_path(box, data_copy):
    data = paths.kit_root() / "data"
    assert call(box, "listdir", str(data)) == ["train.txt"]  # the copy, not the kit's data/
    assert call(box, "read", str(data / "train.txt")) == "training images"
    assert call(box, "write", str(data / "train.txt")).startswith("refused")
    assert call(box, "write", str(data / "new.txt")).startswith("refused")
    assert (data_copy / "train.txt").read_text() == "training images"


@needs_bwrap
def test_a_part_of_the_kit_inside_a_bound_folder_is_covered(code_file):
    sb = Sandbox(code_file, PROBES, ro_binds=[(paths.kit_root(), "/kit")])
    try:
        cmd = " ".join(sb._command())
        for name in ("autograder", "tests", ".git"):
            assert f"--tmpfs /kit/{name} --remount-ro /kit/{name}" in cmd
    finally:
        sb.cleanup()


@needs_bwrap
def test_the_worker_writes_only_in_its_small_scratch(code_file):
    with Sandbox(code_file, PROBES, Limits(call_timeout=20, scratch_mb=8)) as sb:
        uid, gid, home, cwd = call(sb, "whoami")
        assert home == cwd and Path(home).is_relative_to(sb.workdir)
        for path in (paths.kit_root() / "x", paths.kit_root() / "coursekit" / "x.py", Path("/x"), Path("/etc/x"), Path("/usr/x"),
                     Path("/dev/x"), sb.code_dir / "submission.py", sb.code_dir / "new.py", Path(sys.prefix) / "x"):
            assert call(sb, "write", str(path)).startswith("refused"), path
        assert call(sb, "fill", f"{home}/small", 4) == "written"
        assert call(sb, "fill", "/tmp/small", 4) == "written"
        assert call(sb, "fill", "/dev/shm/small", 4) == "written"
        for where in (home, "/tmp", "/dev/shm"):  # more than the tmpfs holds
            assert call(sb, "fill", f"{where}/big", 16) == "refused: OSError", where
        assert not (sb.home / "small").exists()  # the scratch is the worker's own, not the grader's folder
        assert call(sb, "chatty") == 1 and "hello from the student" in sb.log_tail()


def test_the_worker_gets_the_grader_s_allocator_settings_and_none_of_its_other_variables(code_file, monkeypatch):
    """A small-memory container (Gradescope's run_autograder) sets glibc's allocator tunables for the grader; the worker
    must get them too, and no other variable of the grader's (a token, a password) may reach the student's code."""
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    monkeypatch.setenv("COURSE_DB_PASSWORD", "hunter2")
    with Sandbox(code_file, PROBES, Limits(call_timeout=20)) as sb:
        env = call(sb, "environment")
    assert env["MALLOC_ARENA_MAX"] == "2" and env["MALLOC_TRIM_THRESHOLD_"] == "131072"
    assert "COURSE_DB_PASSWORD" not in env and "hunter2" not in str(env)
    assert env["OMP_NUM_THREADS"] == "1" and env["USER"] == "student"


@needs_bwrap
@needs_root
def test_the_worker_runs_as_an_unprivileged_user_of_its_own(box, code_file):
    uid, gid, _, _ = call(box, "whoami")
    assert uid != 0 and gid != 0 and uid in sandbox_module.SANDBOX_UIDS and box.uid == uid
    with Sandbox(code_file, PROBES) as other:
        assert call(other, "whoami")[0] not in (0, uid)  # one user per live worker


@needs_bwrap
def test_a_fork_bomb_hits_the_process_limit_and_dies_with_the_worker(code_file):
    with Sandbox(code_file, PROBES, Limits(call_timeout=30, processes=64)) as sb:
        made, why = call(sb, "fork_bomb", 10000)
        assert why in ("BlockingIOError", "OSError") and made < 64, (made, why)
        assert call(sb, "honest", 2).tolist() == [0, 2]  # the worker itself still answers
        uid = sb.uid
        if uid is not None:
            assert len(sandbox_module._pids_of(uid)) > made
    if uid is not None:
        assert sandbox_module._pids_of(uid) == []
    assert torch.arange(3).sum() == 3  # the grader is fine


@needs_bwrap
def test_a_daemon_that_left_the_session_is_killed_with_the_sandbox(code_file, monkeypatch):
    marker = f"coursekit-daemon-{uuid.uuid4().hex}"
    sb = Sandbox(code_file, PROBES, Limits(call_timeout=20))
    try:
        assert call(sb, "daemon", marker) == 1
        assert _there(marker), "the daemon did not start"
        # killing bubblewrap alone ends its PID namespace (what a grader not running as root relies on)
        monkeypatch.setattr(sandbox_module, "_kill_uid", lambda uid, wait=5.0: True)
        sb.close()
        assert _gone(marker)
        monkeypatch.undo()
        marker2 = marker + "-2"
        assert call(sb, "daemon", marker2) == 1 and _there(marker2)
    finally:
        sb.cleanup()
    assert _gone(marker2)


def test_without_bubblewrap_the_sandbox_refuses_unless_insecure(code_file, monkeypatch):
    monkeypatch.setenv("COURSEKIT_ISOLATION", "rlimits")
    monkeypatch.delenv("COURSEKIT_INSECURE", raising=False)
    assert not strong_isolation_available()
    assert issubclass(IsolationError, RuntimeError) and not issubclass(IsolationError, SubmissionError)
    with Sandbox(code_file, PROBES) as sb:
        with pytest.raises(IsolationError, match=r"bubblewrap.*apt-get install bubblewrap.*--insecure.*COURSEKIT_INSECURE=1"):
            sb.call("call", fn="honest", args=[2])
        with pytest.raises(IsolationError):
            sb.start()
        assert sb.proc is None
        monkeypatch.setenv("COURSEKIT_INSECURE", "1")
        sb._check_isolation()  # what --insecure sets in the grader's environment
    with Sandbox(code_file, PROBES, Limits(call_timeout=20), insecure=True) as sb:
        monkeypatch.delenv("COURSEKIT_INSECURE")
        assert sb.isolation == "rlimits" and call(sb, "honest", 3).tolist() == [0, 2, 4]


@needs_bwrap
def test_a_sandbox_that_cannot_be_set_up_is_the_instructor_s_problem(code_file, tmp_path):
    tmp_path.chmod(0o755)
    with Sandbox(code_file, PROBES, ro_binds=[(tmp_path, "/dev/null/data")]) as sb:
        with pytest.raises(IsolationError, match="failed to start the worker: bwrap: Can't mkdir"):
            sb.call("call", fn="honest", args=[2])
    with Sandbox(code_file, PROBES, ro_binds=[(tmp_path / "missing", "/data")]) as sb:
        with pytest.raises(IsolationError, match="missing, to be bound into the sandbox at /data: No such file"):
            sb.call("call", fn="honest", args=[2])


def test_the_worker_dies_with_its_grader(code_file, tmp_path, monkeypatch):
    """Even in the weakest mode, a grader killed with SIGKILL leaves no worker behind."""
    script = textwrap.dedent(f"""
        import io, os, signal, time, torch
        from coursekit.grading.sandbox import Sandbox
        sb = Sandbox({str(code_file)!r}, {str(PROBES)!r}, isolation="rlimits", insecure=True)
        sb.start()
        buf = io.BytesIO()
        torch.save({{"fn": "loops"}}, buf)
        sb._send({{"probe": "call", "seed": 0, "nbytes": buf.tell()}}, buf.getvalue())  # the worker is busy: no EOF stops it
        time.sleep(0.5)
        print(sb.proc.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the worker outlived its grader")
        time.sleep(0.05)


@needs_root
@pytest.mark.parametrize("isolation", ["rlimits", "unshare"])
def test_in_the_fallback_modes_every_process_of_the_sandbox_user_is_killed(code_file, monkeypatch, isolation):
    """Where the sandbox user can run the grader's Python, the fallback modes run the worker as that user too
    (here Python may sit under /root: a shell stands in for it)."""
    if isolation == "unshare" and not shutil.which("unshare"):
        pytest.skip("no unshare")
    monkeypatch.setattr(sandbox_module, "_others_can_run_python", lambda: True)
    marker = f"coursekit-daemon-{uuid.uuid4().hex}"
    sb = Sandbox(code_file, PROBES, isolation=isolation, insecure=True)
    try:
        sb.proc = sb._spawn(["/bin/sh", "-c", f"setsid /bin/sh -c 'while :; do sleep 1; done' {marker} & echo started"])
        assert sb.proc.stdout.readline() == b"started\n" and sb.proc.wait(timeout=10) == 0
        assert _there(marker), sb._launcher_error()
        uid = sb.uid
        assert uid in sandbox_module.SANDBOX_UIDS
        assert all(f"Uid:\t{uid}\t" in Path(f"/proc/{pid}/status").read_text() for pid in _pids_with(marker))
        sb.close()
        assert _gone(marker) and sandbox_module._pids_of(uid) == []
    finally:
        sb.cleanup()
