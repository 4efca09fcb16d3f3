"""Running a submission's code in a process of its own, with limits, and calling probes in it.

The student controls everything in the worker process, so the worker is given as little as
possible. Isolation, strongest first (the report names the one in force):

- ``bubblewrap`` (the only one graded without ``--insecure``): the worker sees a file system
  of its own, built from nothing: read-only system folders (``/usr``...), the few ``/etc`` files
  Python needs, Python itself, its site-packages and the ``coursekit`` package, each at its own
  path, and what the grader binds on top (``ro_binds``, e.g. a data set without its held-out
  split). Nothing else of the kit (no ``.git``, ``autograder/``, ``solutions/``, ``tests/``,
  ``out/``...), no grading output, no other submission. Writable is only a private scratch:
  its working folder and ``HOME``, ``/tmp`` and ``/dev/shm`` are small tmpfs (``Limits.scratch_mb``);
  its prints go to one log file. No network, its own PID, IPC, UTS and user namespaces (no
  further ones), and it dies with the grader: killing bubblewrap kills everything it started.
- ``unshare``: no network (a new network namespace), limits and a private working folder;
  the file system is visible (``--insecure`` only);
- ``rlimits``: only the limits and a private working folder (``--insecure`` only).

When the grader runs as root, the worker runs as a dedicated unprivileged user (one of
``SANDBOX_UIDS``, one per live worker, across processes), with a process limit, and every
process of that user is killed when the worker stops: a fork bomb or a double-forked daemon
ends with it. (In the fallback modes only where that user can run the grader's Python.)

In every mode: a memory limit (RLIMIT_DATA, which leaves CUDA's address-space reservations
alone), a CPU-time limit for the whole submission, a limit on file sizes, a time limit per call
(the worker is killed and restarted) and only plain data crossing back, loaded with
``torch.load(weights_only=True)``.

A call's time limit counts the CPU time the worker's processes got, not the wall clock, so that
a busy machine (a CI box doing other work, ``--jobs 2`` on a laptop) grades a submission as an
idle one does: a call may use ``limit × Limits.threads`` CPU seconds, i.e. ``limit`` seconds of
an idle machine. A call that sleeps or waits forever uses no CPU: it is stopped by a wall-clock
cap, ``Limits.wall_factor`` times the limit. The same holds for loading the student's code.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import io
import json
import os
import random
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .. import paths
from . import gpu as _gpu


class SubmissionError(Exception):
    """The submission's code failed in a way the student should read (crash, timeout, exception)."""


class IsolationError(RuntimeError):
    """The student's code cannot be run as safely as asked: the instructor's problem, not the student's
    (bubblewrap is missing or does not work here, and grading without it was not asked for)."""


INSTALL_HINT = ("install bubblewrap (apt-get install bubblewrap; unprivileged user namespaces must be allowed), or grade "
                "with --insecure (or COURSEKIT_INSECURE=1), where the student's code runs with limits only and can read "
                "what the grader's user can read")


@dataclass
class Limits:
    # Time limits, in seconds of an idle machine: CPU seconds (user + system) of the worker's process tree since the
    # call started, divided by ``threads``. A call also ends after ``wall_factor`` times its limit in wall-clock
    # seconds, however little CPU it used (it sleeps, or waits for what never comes). With 4, a one-thread call that
    # fills its whole limit on an idle machine still passes where it gets a quarter of a CPU; below that, it is cut.
    call_timeout: float = 120.0  # one probe call
    load_timeout: float = 120.0  # importing the student's code
    wall_factor: float = 4.0  # the wall-clock cap of a call or a load, as a multiple of its limit
    memory_mb: int = 6144  # RLIMIT_DATA of the worker
    cpu_seconds: int = 1800  # RLIMIT_CPU of the worker, over its whole life
    file_mb: int = 256  # the largest file the worker may write
    threads: int = 1  # torch threads in the worker
    result_mb: int = 512  # the largest result the grader accepts from one call
    scratch_mb: int = 256  # each of the worker's tmpfs: its working folder (HOME), /tmp and /dev/shm
    processes: int = 128  # RLIMIT_NPROC: processes and threads (torch's and OpenMP's count too)


MALLOC_TUNABLES = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # passed on to the worker
SANDBOX_UIDS = range(61000, 62000)  # the workers' users (and groups) when the grader runs as root
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32")
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "alternatives")


# --- which isolation ---------------------------------------------------------------------------------------------
def _which_isolation(prefer: str | None = None) -> str:
    prefer = prefer or os.environ.get("COURSEKIT_ISOLATION")
    if prefer:
        return prefer
    if shutil.which("bwrap") and _launch_works("bubblewrap"):
        return "bubblewrap"
    if shutil.which("unshare") and _launch_works("unshare"):
        return "unshare"
    return "rlimits"


def strong_isolation_available() -> bool:
    """Will the student's code run in bubblewrap's sandbox here? (The engine asks before a batch.)"""
    return _which_isolation() == "bubblewrap"


def _insecure_allowed(insecure: bool) -> bool:
    return bool(insecure) or os.environ.get("COURSEKIT_INSECURE") == "1"


_PROBED: dict[str, bool] = {}


def _launch_works(isolation: str) -> bool:
    """Start Python the way a worker is started (same user, binds and limits) and import the worker module."""
    if isolation not in _PROBED:
        with tempfile.TemporaryDirectory(prefix="coursekit-probe-") as d:
            empty = Path(d) / "empty.py"
            empty.write_text("")
            sb = Sandbox(empty, empty, isolation=isolation, insecure=True)
            sb.gpu, sb.gpu_error = None, None  # whether the launcher works, not the GPU (``check_gpu_worker`` asks that)
            try:
                sb.proc = sb._spawn([sys.executable, "-c", "import coursekit.grading.worker"], subprocess.DEVNULL)
                _PROBED[isolation] = sb.proc.wait(timeout=60) == 0
            except (OSError, subprocess.SubprocessError, IsolationError):
                _PROBED[isolation] = False
            finally:
                sb.cleanup()
    return _PROBED[isolation]


def check_gpu_worker(environ: dict | None = None) -> dict:
    """Start a worker as a grading would, with the GPU ``environ`` gives it (``gpu.slot_env``), running no student
    code, and return what it reports about its device; ``IsolationError`` where the profile requires CUDA
    (``COURSEKIT_REQUIRE_CUDA=1``) and the worker cannot reach it. The engine asks before a full-profile batch on a
    GPU machine, so that a broken GPU setup stops the batch before any submission is graded."""
    with environ_set(environ or {}), tempfile.TemporaryDirectory(prefix="coursekit-gpu-probe-") as d:
        empty = Path(d) / "empty.py"
        empty.write_text("")
        with Sandbox(empty, empty, insecure=True) as sb:
            sb.start()
            if sb.load_error:
                raise IsolationError(f"a worker with no student code failed to start: {sb.load_error}")
            return dict(sb.worker_info)


@contextlib.contextmanager
def environ_set(values: dict):
    """The grader's ``os.environ`` with ``values`` set for the block (a worker started in it inherits them), as it was
    after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- what the worker sees ----------------------------------------------------------------------------------------
def hidden_paths() -> list[Path]:
    """Parts of the kit the student's process must never see. Nothing binds them; where one lies inside
    something that is bound anyway (a Python installed inside the kit...), an empty folder covers it."""
    import coursekit

    extra = [Path(p) for p in os.environ.get("COURSEKIT_HIDE", "").split(os.pathsep) if p]
    found = []
    for root in {paths.kit_root(), Path(coursekit.__file__).resolve().parent.parent}:
        found += [root / name for name in (".git", "autograder", "solutions", "tests", "assignments", "out")]
    return [p.resolve() for p in (*found, *extra) if p.exists()]


_WORKER_SYS_PATH: list[str] | None = None


def _worker_sys_path() -> list[str]:
    """The module search path of the worker's Python: asked once, from a Python started as the worker is
    (not the grader's own ``sys.path``, which pytest fills with the graders' folders)."""
    global _WORKER_SYS_PATH
    if _WORKER_SYS_PATH is None:
        try:
            out = subprocess.run([sys.executable, "-c", "import sys, json; print(json.dumps(sys.path))"], capture_output=True,
                                 text=True, timeout=60, cwd="/", env={"PATH": os.environ.get("PATH", os.defpath)})
            _WORKER_SYS_PATH = [p for p in json.loads(out.stdout) if isinstance(p, str)]
        except (OSError, ValueError, subprocess.SubprocessError):
            _WORKER_SYS_PATH = list(sys.path)
    return _WORKER_SYS_PATH


def _needed_paths() -> list[Path]:
    """What the worker must see, read-only, at the same paths: Python (``sys.prefix``, ``sys.base_prefix``, the
    worker's ``sys.path``: stdlib and site-packages) and the ``coursekit`` package folder, not the kit around it.
    A folder holding the kit (an old-style editable install puts the checkout on ``sys.path``) is left out."""
    import coursekit

    package = Path(coursekit.__file__).resolve().parent
    kits = {paths.kit_root().resolve(), package.parent}
    found = [package, Path(sys.executable).resolve().parent]
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *_worker_sys_path()):
        if p and os.path.isabs(p):
            found.append(Path(p))
    keep = set()
    for p in found:
        try:
            p = p.resolve()
        except OSError:
            continue
        if p.exists() and p != Path("/") and not any(p == k or p in k.parents for k in kits):
            keep.add(p)
    ordered = sorted(keep, key=lambda p: (len(p.parts), str(p)))
    return [p for i, p in enumerate(ordered) if not any(q in p.parents for q in ordered[:i])]


def _reachable(path: Path, uid: int, gid: int) -> bool:
    """Can ``uid`` (group ``gid``, no others) reach ``path`` and read it (list it, for a folder)?"""

    def allowed(st: os.stat_result, bits: int) -> bool:
        if st.st_uid == uid:
            return st.st_mode & (bits << 6) == bits << 6
        if st.st_gid == gid:
            return st.st_mode & (bits << 3) == bits << 3
        return st.st_mode & bits == bits

    try:
        path = Path(path).resolve()
        for parent in reversed(path.parents):
            if not allowed(os.stat(parent), 1):
                return False
        st = os.stat(path)
    except OSError:
        return False
    return allowed(st, 5 if stat.S_ISDIR(st.st_mode) else 4)


def _others_can_run_python() -> bool:
    """Can a user other than the grader's run the worker's Python and read the coursekit package?"""
    return all(_reachable(p, -2, -2) for p in (Path(sys.executable), *_needed_paths()))


# --- users, processes and limits ---------------------------------------------------------------------------------
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _LIBC.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
except (OSError, AttributeError):  # not Linux
    _LIBC = None
_PR_SET_PDEATHSIG, _CLONE_NEWNS = 1, 0x20000
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18


class _Proc(NamedTuple):
    pid: int
    uid: int  # real uid
    threads: int
    state: str  # R, S, Z...
    ppid: int


def _procs() -> list[_Proc]:
    """Every process, from /proc/<pid>/status."""
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for d in names:
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
            found.append(_Proc(int(d), int(fields[b"Uid"].split()[0]), int(fields.get(b"Threads", b"1")),
                               fields[b"State"].strip()[:1].decode(), int(fields[b"PPid"])))
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return found


def _pids_of(uid: int) -> list[int]:
    """The live processes of ``uid`` (zombies left aside: they are dead, their parent has not reaped them yet)."""
    return [p.pid for p in _procs() if p.uid == uid and p.state not in ("Z", "X")]


def _kill_uid(uid: int, wait: float = 5.0) -> bool:
    """Kill every process of ``uid``, in whichever namespace or session it hides: a child of ours becomes
    ``uid`` and calls ``kill(-1, SIGKILL)`` (everything that user may signal, which is its own processes),
    until none is left. Root only. True when none is left."""
    deadline = time.monotonic() + wait
    while True:
        if not _pids_of(uid):
            return True
        if time.monotonic() > deadline:
            return False
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.02)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc's unit of CPU time, per second
_CPUS = os.cpu_count() or 1


def _tree(root: int, procs: list[_Proc]) -> list[int]:
    """``root`` and every process below it in ``procs``, each parent before its children."""
    kids: dict[int, list[int]] = {}
    for p in procs:
        kids.setdefault(p.ppid, []).append(p.pid)
    found, seen = [root], {root}
    for pid in found:  # grows while it is walked
        for kid in kids.get(pid, ()):
            if kid not in seen:
                seen.add(kid)
                found.append(kid)
    return found


def tree_cpu_seconds(root: int, uid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and every process below it (a worker under
    bubblewrap is a grandchild of the process started), with the children they reaped (/proc/<pid>/stat: utime,
    stime, cutime, cstime), and, with ``uid``, by every process of that user (a daemon that left the tree).

    Parents are read before their children: a child reaped while they are read is missed rather than counted
    twice (once itself, once in its parent's cutime), so the sum errs low, never high; a process that leaves the
    tree (an orphan of the fallback modes, adopted by init) takes its time with it. Both only make a limit late."""
    procs = _procs()
    pids = _tree(root, procs)
    if uid is not None:
        inside = set(pids)
        pids += [p.pid for p in procs if p.uid == uid and p.pid not in inside]
    return _cpu_seconds(pids)


def _cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by ``pids``, each with the children it reaped; one gone meanwhile counts nothing."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()  # after the command name, which may hold anything
            ticks += sum(int(x) for x in fields[11:15])  # fields 14-17 of proc(5), counted from the state (field 3)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return ticks / _CLOCK_TICKS


def _secs(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{round(x, 2):g}"


class _Clock:
    """The time limit of one wait for the worker (a call, or loading the code), started when the wait starts.

    Over when the CPU seconds the worker's process tree used since then, divided by ``Limits.threads``, exceed
    ``limit`` ("cpu"), or when ``limit × Limits.wall_factor`` wall-clock seconds have passed ("wall")."""

    MIN_CHECK, MAX_CHECK = 0.05, 1.0  # seconds between two looks at the worker's CPU time (each reads /proc)

    def __init__(self, sandbox: "Sandbox", limit: float):
        self.limit, self.factor = limit, sandbox.limits.wall_factor
        self.threads = max(1, sandbox.limits.threads)
        self.root, self.uid = sandbox.proc.pid, sandbox.uid
        self.start = time.monotonic()
        self.cap = self.start + limit * self.factor
        self.cpu0 = tree_cpu_seconds(self.root, self.uid)
        self.cpu = 0.0  # CPU seconds used since the start, at the last look
        self.hit: str | None = None
        self.next_look = self.start + self._pause(limit * self.threads)

    def _pause(self, left: float) -> float:
        """Seconds until the next look at the CPU time, ``left`` CPU seconds before the limit: the tree cannot use
        more CPU seconds per second than the machine has CPUs, so the limit cannot be crossed sooner."""
        return min(max(left / _CPUS, self.MIN_CHECK), self.MAX_CHECK)

    def wait(self) -> float:
        """How long to wait for the worker before calling again; TimeoutError when a limit is hit."""
        now = time.monotonic()
        if now >= self.next_look or now >= self.cap:
            self.cpu = max(self.cpu, tree_cpu_seconds(self.root, self.uid) - self.cpu0)
            left = self.limit * self.threads - self.cpu  # CPU seconds still allowed
            if left < 0:
                self.hit = "cpu"
                raise TimeoutError
            if now >= self.cap:
                self.hit = "wall"
                raise TimeoutError
            self.next_look = now + self._pause(left)
        return max(0.0, min(self.next_look, self.cap) - now)

    def message(self, what: str) -> str:
        """For the student: which limit was hit, as "took longer than N s ... while <what> ..."."""
        limit = _secs(self.limit)
        if self.hit == "cpu":
            per = "" if self.threads == 1 else f" per thread ({_secs(self.limit * self.threads)} s over the {self.threads} threads it may use)"
            return (f"took longer than {limit} s of CPU time{per} while {what} (an endless loop, or far too slow? "
                    "Only time spent computing counts, so a busy grading machine does not count against it)")
        return (f"took longer than {_secs(self.limit * self.factor)} s of wall-clock time while {what}, the hard cap "
                f"({self.factor:g} × its {limit} s limit), although it computed for less than its limit: it was waiting, "
                "not computing (time.sleep, input(), a lock or a pipe that never answers?)")


def _uid_lock_dir() -> Path:
    """A root-owned folder, writable by root only, holding one lock file per sandbox user."""
    for d in (os.environ.get("COURSEKIT_UID_LOCKS"), "/run/coursekit-sandbox", "/var/lock/coursekit-sandbox",
              os.path.join(tempfile.gettempdir(), "coursekit-sandbox-uids")):
        if not d:
            continue
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            st = os.lstat(d)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            return Path(d)
    raise IsolationError("no root-owned folder for the sandbox users' lock files (tried /run, /var/lock and the temp folder)")


def _account_exists(uid: int) -> bool:
    import grp
    import pwd

    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


def _allocate_uid() -> tuple[int, int]:
    """A sandbox user no other live worker (of any grader process) holds: (uid, the lock's fd, held until released).
    Users and groups that exist on the system are never taken; leftovers of a crashed grader are killed first."""
    folder = _uid_lock_dir()
    first = random.randrange(len(SANDBOX_UIDS))
    for i in range(len(SANDBOX_UIDS)):
        uid = SANDBOX_UIDS[(first + i) % len(SANDBOX_UIDS)]
        if _account_exists(uid):
            continue
        fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if _kill_uid(uid):
            return uid, fd
        os.close(fd)
    raise IsolationError(f"all sandbox users ({SANDBOX_UIDS.start}-{SANDBOX_UIDS.stop - 1}) are busy")


def _tasks_of(uid: int) -> int:
    """How many processes and threads ``uid`` runs now (what RLIMIT_NPROC counts)."""
    return sum(p.threads for p in _procs() if p.uid == uid)


def _set_limits(limits: Limits, uid: int | None = None, nproc: int | None = None, stage: list[tuple[str, str]] = ()):
    """The worker's ``preexec_fn``: its own session, limits, (as root) the staged mounts and the drop to ``uid``,
    then death with the grader."""
    parent = os.getpid()

    def apply() -> None:
        os.setsid()  # its own process group, so a timeout kills everything it started
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if stage:
            # A private mount namespace of this process only, where what the sandbox user cannot reach on the
            # host (a Python under /root...) is bound onto empty folders it can reach, for bubblewrap to bind.
            if _LIBC.unshare(_CLONE_NEWNS) != 0 or _LIBC.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
                raise OSError(ctypes.get_errno(), "cannot make a private mount namespace to stage the sandbox's folders")
            for src, dst in stage:
                if _LIBC.mount(src.encode(), dst.encode(), None, _MS_BIND | _MS_REC, None) != 0:
                    raise OSError(ctypes.get_errno(), f"cannot stage {src}")
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        # After setuid, which clears it: die with the grader (strictly, with the grader's thread that started the
        # worker; graders start workers from their main thread).
        if _LIBC is not None and hasattr(_LIBC, "prctl"):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the grader died before that
                os._exit(1)

    return apply


class Sandbox:
    """A worker process holding one submission's code; ``call`` runs a probe in it.

    code:      the student's module (a .py file, extracted from their notebook)
    probes:    the grader's probe module (copied beside it, so the worker never needs to read ``autograder/``)
    ro_binds:  (source, destination) pairs bound read-only into bubblewrap's sandbox on top of the rest
               (e.g. a copy of the data set without its held-out split at the kit's ``data/``); when the grader
               runs as root the worker is another user, so a source must be readable by others (``chmod o+rX``)
    insecure:  allow a weaker isolation than bubblewrap (``COURSEKIT_INSECURE=1`` says the same); without it,
               ``start`` and ``call`` raise ``IsolationError`` where bubblewrap is not available
    """

    def __init__(self, code: str | Path, probes: str | Path, limits: Limits | None = None, isolation: str | None = None, seed: int = 0,
                 ro_binds: list[tuple[str | Path, str | Path]] = (), insecure: bool = False):
        self.code_src, self.probes_src = Path(code), Path(probes)
        self.limits = limits or Limits()
        self.isolation = _which_isolation(isolation)
        self.seed = seed
        self.ro_binds = [(Path(src).resolve(), Path(dst)) for src, dst in ro_binds]
        self.insecure = insecure
        self.proc: subprocess.Popen | None = None
        self.load_error: str | None = None
        self.uid: int | None = None  # the sandbox user of the live worker (the grader runs as root)
        self._uid_lock: int | None = None
        # Host layout (the same paths inside bubblewrap's sandbox): code/ (read-only there), home/ (a tmpfs there),
        # submission.log (the one writable file), stage/ (mount points for what the sandbox user cannot reach),
        # launcher.err (the launcher's own errors; the worker's stderr goes to the log).
        self.workdir = Path(tempfile.mkdtemp(prefix="coursekit-sandbox-"))
        self.code_dir, self.home = self.workdir / "code", self.workdir / "home"
        self.code_dir.mkdir()
        shutil.copy(self.code_src, self.code_dir / "submission.py")
        shutil.copy(self.probes_src, self.code_dir / "probes.py")
        self.log_path = self.workdir / "submission.log"
        self.log_path.touch(mode=0o600)
        self._err_path = self.workdir / "launcher.err"
        self.starts = 0  # how many worker processes this submission needed
        # The GPU its worker gets (bound into bubblewrap's /dev alone; see ``gpu``): this grading's, from the
        # environment the engine set, or None; ``dev_dir`` and ``dev_entries`` say where its device nodes are (tests
        # give a fake listing). ``worker_info``: what the last worker reported about its device before the student's
        # code ran, e.g. {"cuda": True, "device": "cuda:0 (NVIDIA H100...)", "memory_fraction": 0.45}.
        self.gpu, self.gpu_error = None, None
        try:
            self.gpu = _gpu.sandbox_gpu()
        except _gpu.GpuError as e:
            self.gpu_error = str(e)
        self.dev_dir, self.dev_entries = "/dev", None
        self.require_cuda = _gpu.cuda_required()  # the full profile on a GPU machine: a worker without CUDA is an error
        self.worker_info: dict = {}

    # --- process management ----------------------------------------------------------------
    def _check_isolation(self) -> None:
        if self.isolation != "bubblewrap" and not _insecure_allowed(self.insecure):
            raise IsolationError(f"the sandbox for student code (bubblewrap) is not available here (isolation: {self.isolation}), "
                                 f"so the student's code was not run: {INSTALL_HINT}")

    def _drops_to_sandbox_user(self) -> bool:
        if os.geteuid() != 0:
            return False
        return self.isolation == "bubblewrap" or _others_can_run_python()

    def _prepare_workdir(self, uid: int | None) -> None:
        """Ownership for this worker: the sandbox user may read its code, append to its log, write in its home
        (outside bubblewrap), and nothing else of the folder."""
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(mode=0o700)
        (self.workdir / "stage").mkdir(mode=0o755, exist_ok=True)
        if uid is None:
            return
        os.chmod(self.workdir, 0o711)
        os.chown(self.code_dir, 0, uid)
        os.chmod(self.code_dir, 0o750)
        for f in self.code_dir.iterdir():
            os.chown(f, 0, uid)
            os.chmod(f, 0o640)
        os.chown(self.home, uid, uid)
        os.chown(self.log_path, uid, uid)

    def _stage(self, src: Path, uid: int | None, stage: list[tuple[str, str]]) -> str:
        """Where bubblewrap, running as ``uid``, reads ``src`` from: ``src`` itself, or a staged copy of its mount."""
        if uid is None or _reachable(src, uid, uid):
            return str(src)
        dst = self.workdir / "stage" / str(len(stage))
        if src.is_dir():
            dst.mkdir(mode=0o755, exist_ok=True)
        else:
            dst.touch(mode=0o644)
        stage.append((str(src), str(dst)))
        return str(dst)

    def _command(self, inner: list[str] | None = None, uid: int | None = None, stage: list | None = None) -> list[str]:
        """The worker's command line; ``stage`` collects the mounts to stage for bubblewrap (see ``_set_limits``)."""
        inner = inner or [sys.executable, "-m", "coursekit.grading.worker"]
        stage = [] if stage is None else stage
        if self.isolation == "unshare":
            return ["unshare", "--net", *inner] if (uid is None and os.geteuid() == 0) else ["unshare", "--user", "--net", *inner]
        if self.isolation != "bubblewrap":
            return inner
        size = str(self.limits.scratch_mb * 1024 * 1024)
        cmd = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
        system = []
        for name in _SYSTEM_DIRS:
            p = Path("/", name)
            if p.is_symlink():
                cmd += ["--symlink", os.readlink(p), str(p)]
            elif p.is_dir():
                cmd += ["--ro-bind", self._stage(p, uid, stage), str(p)]
                system.append(p.resolve())
        for name in _ETC_FILES:
            p = Path("/etc", name)
            if p.exists():
                cmd += ["--ro-bind", self._stage(p.resolve(), uid, stage), str(p)]
        cmd += ["--proc", "/proc", "--dev", "/dev"]  # a fresh /dev: null, zero, random, tty... and nothing of the host's
        if self.gpu_error:
            raise IsolationError(self.gpu_error)
        try:  # then, on top of it, this grading's GPU alone: the control nodes and its own node (see ``gpu``)
            nodes = _gpu.device_nodes(self.gpu, self.dev_entries, self.dev_dir)
        except _gpu.GpuError as e:
            raise IsolationError(str(e)) from None
        for dev in nodes:
            cmd += ["--dev-bind", self._stage(Path(dev), uid, stage), "/dev/" + Path(dev).name]
        cmd += ["--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/dev/shm"]
        binds = [(p, p) for p in _needed_paths() if not any(s == p or s in p.parents for s in system)]
        for src, dst in self.ro_binds:
            try:
                mode = os.stat(src).st_mode  # bubblewrap reaches it in any case; the sandbox's user must be able to read it
            except OSError as e:
                raise IsolationError(f"{src}, to be bound into the sandbox at {dst}: {e.strerror}") from None
            if uid is not None and mode & (0o005 if stat.S_ISDIR(mode) else 0o004) != (0o005 if stat.S_ISDIR(mode) else 0o004):
                raise IsolationError(f"{src}, bound into the sandbox at {dst}, is not readable by the sandbox's user: make it "
                                     "readable by others (chmod o+rX), the folders above it need not be")
            binds.append((src, dst))
        # A kit (or venv) under /tmp lands inside the sandbox's writable /tmp: give each such top folder a tmpfs of its
        # own, made read-only once everything is bound into it, so the kit's paths stay read-only there too.
        tops = sorted({str(Path("/tmp", Path(dst).relative_to("/tmp").parts[0])) for _, dst in binds
                       if Path(dst).is_relative_to("/tmp") and Path(dst) != Path("/tmp")})
        for top in tops:
            cmd += ["--size", "4096", "--tmpfs", top]
        for src, dst in binds:
            cmd += ["--ro-bind", self._stage(src, uid, stage), str(dst)]
        hidden = hidden_paths()
        for src, dst in [(p, p) for p in system] + binds:  # a part of the kit inside something bound: an empty, read-only folder
            for h in hidden:
                if src in h.parents:
                    cover = str(Path(dst) / h.relative_to(src))
                    cmd += ["--size", "4096", "--tmpfs", cover, "--remount-ro", cover]
        cmd += ["--ro-bind", self._stage(self.code_dir, uid, stage), str(self.code_dir),
                "--bind", self._stage(self.log_path, uid, stage), str(self.log_path),
                "--size", size, "--tmpfs", str(self.home), "--chdir", str(self.home),
                *[a for top in tops for a in ("--remount-ro", top)],
                "--remount-ro", "/dev", "--remount-ro", "/"]  # the sandbox's own root and /dev: no unbounded tmpfs
        return cmd + ["--", *inner]

    def _spawn(self, inner: list[str], stdout=subprocess.PIPE) -> subprocess.Popen:
        """Start ``inner`` as a worker is started: as the sandbox user (the grader is root), with the limits."""
        if self._drops_to_sandbox_user():
            if self.uid is None:
                self.uid, self._uid_lock = _allocate_uid()
            else:
                _kill_uid(self.uid)  # what the previous worker left
        uid = self.uid
        self._prepare_workdir(uid)
        stage: list[tuple[str, str]] = []
        cmd = self._command(inner, uid, stage)
        if uid is not None:
            nproc = self.limits.processes  # the sandbox user runs nothing else
        else:
            # The grader's own user (a TA's laptop): RLIMIT_NPROC counts all of that user's processes and threads,
            # not only the worker's, so the limit is what runs now plus the allowance. It still stops a fork bomb;
            # the TA's other programs keep their own limits.
            nproc = _tasks_of(os.getuid()) + self.limits.processes
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "COURSEKIT_ROOT", "COURSEKIT_DATA", "COURSEKIT_DATASET")
               or k in MALLOC_TUNABLES}  # the grader's choice of glibc's allocator settings (a small-memory Gradescope container)
        env.update(_gpu.worker_env(self.gpu, bubblewrap=self.isolation == "bubblewrap"))  # this grading's GPU, or none
        env.update(PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS=str(self.limits.threads), MPLBACKEND="Agg", HOME=str(self.home),
                   USER="student", LOGNAME="student", TMPDIR="/tmp" if self.isolation == "bubblewrap" else str(self.home))
        with open(self._err_path, "wb") as err:
            try:
                return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=stdout, stderr=err, cwd=self.home, env=env,
                                        preexec_fn=_set_limits(self.limits, uid, nproc, stage))
            except subprocess.SubprocessError as e:
                raise IsolationError(f"the sandbox could not be set up ({e}): {INSTALL_HINT}") from None

    def _launcher_error(self) -> str:
        try:
            with open(self._err_path, "rb") as f:
                return f.read(4000).decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def start(self) -> None:
        self._check_isolation()
        self.proc = self._spawn([sys.executable, "-m", "coursekit.grading.worker"])
        init = {"code": str(self.code_dir / "submission.py"), "probes": str(self.code_dir / "probes.py"),
                "seed": self.seed, "threads": self.limits.threads, "log": str(self.log_path)}
        self.starts += 1
        self._send(init)
        try:
            header, _ = self._receive(self.limits.load_timeout, "loading the notebook's code")
            if isinstance(header.get("worker"), dict):  # the device it sees, said before the student's code ran
                self._worker_started(header["worker"])
                header, _ = self._receive(self.limits.load_timeout, "loading the notebook's code")
        except SubmissionError as e:  # an endless loop or a crash at the top level: it would happen again
            launcher = "" if "took longer than" in str(e) else self._launcher_error()
            if launcher:  # bubblewrap or Python failed before the worker took over its stderr: not the student's doing
                self.close()
                raise IsolationError(f"the sandbox ({self.isolation}) failed to start the worker: {launcher[-2000:]}") from None
            self.load_error = str(e)
            return
        if not header.get("ok"):
            self.load_error = str(header.get("error", "the notebook's code failed to load"))[:2000]
            self.close()

    def _worker_started(self, info: dict) -> None:
        """Record what a new worker reports about its device (``COURSEKIT_WORKER_INFO``: one JSON line per worker, for
        the engine's report), and refuse a worker without CUDA where the profile trains on a GPU: an
        ``IsolationError`` (the staff's problem), recorded as such, never a quiet CPU run."""
        self.worker_info = {k: info.get(k) for k in ("cuda", "device", "gpus", "memory_fraction", "cuda_error") if k in info}
        line = {**self.worker_info, "gpu": self.gpu.index if self.gpu else None}
        error = _gpu.no_cuda_message(self.worker_info, self.gpu) if self.require_cuda and not self.worker_info.get("cuda") else ""
        if error:
            line["staff_error"] = error
        where = os.environ.get(_gpu.ENV_WORKER_INFO)
        if where:
            try:
                with open(where, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
            except OSError:
                pass
        if error:
            self.close()
            raise IsolationError(error)

    def close(self) -> None:
        """Stop the worker and everything it started. Under bubblewrap, killing bubblewrap ends its PID namespace;
        as root, every process of the sandbox user is killed too (daemons that left the session), and only then
        is that user given back."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                try:
                    if pipe is not None:
                        pipe.close()
                except OSError:
                    pass
        if self.uid is not None:
            if _kill_uid(self.uid):
                os.close(self._uid_lock)  # a user with processes left is never given to another worker
            self.uid = self._uid_lock = None

    def cleanup(self) -> None:
        self.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # --- talking to the worker ---------------------------------------------------------------
    def _send(self, obj: dict, payload: bytes = b"") -> None:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode() + payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker is gone; _receive says how it ended

    def _read_some(self, n: int, clock: _Clock) -> bytes:
        """Up to ``n`` bytes from the worker; TimeoutError once ``clock`` says a limit is hit, EOFError when it is gone."""
        fd = self.proc.stdout.fileno()
        while not select.select([fd], [], [], clock.wait())[0]:
            pass
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        return chunk

    def _read_exact(self, n: int, clock: _Clock) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunks.append(self._read_some(min(n - got, 1 << 20), clock))
            got += len(chunks[-1])
        return b"".join(chunks)

    def _read_line(self, clock: _Clock) -> bytes:
        buf = bytearray()
        while not buf.endswith(b"\n"):
            buf += self._read_some(1, clock)  # byte by byte: the payload after the line stays unread
            if len(buf) > 1 << 16:
                raise ValueError("protocol header too long")
        return bytes(buf)

    def _ended(self, what: str) -> SubmissionError:
        code = self.proc.wait(timeout=10) if self.proc else None
        self.proc = None
        signum = -code if code is not None and code < 0 else None
        if self.isolation == "bubblewrap" and code is not None and 128 < code < 128 + 65:
            signum = code - 128  # bubblewrap reports its child's death by a signal as 128 + signal
        if signum is not None:
            try:
                name = signal.Signals(signum).name
            except ValueError:
                name = f"signal {signum}"
            why = {"SIGKILL": "killed (it used more memory or CPU time than allowed)", "SIGXCPU": "out of CPU time",
                   "SIGSEGV": "crashed with a segmentation fault", "SIGXFSZ": "wrote a file larger than allowed"}.get(name, f"killed by {name}")
            return SubmissionError(f"the submission's process was {why} while {what}")
        return SubmissionError(f"the submission's process ended (exit code {code}) while {what}; did the code call os._exit or exit()?")

    def _receive(self, timeout: float, what: str) -> tuple[dict, bytes]:
        """The worker's answer; ``timeout`` is the limit, in seconds of an idle machine (see ``_Clock``)."""
        clock = _Clock(self, timeout)
        try:
            header = json.loads(self._read_line(clock))
            if not isinstance(header, dict):
                raise ValueError("header is not an object")
            nbytes = header.get("nbytes") or 0
            if type(nbytes) is not int or not 0 <= nbytes <= self.limits.result_mb * 1024 * 1024:
                self.close()
                raise SubmissionError(f"the submission's process announced a result of {nbytes!r} bytes while {what} "
                                      f"(at most {self.limits.result_mb} MB are accepted), so it was refused")
            payload = self._read_exact(nbytes, clock) if nbytes else b""
        except TimeoutError:
            self.close()
            raise SubmissionError(clock.message(what)) from None
        except EOFError:
            raise self._ended(what) from None
        except (ValueError, json.JSONDecodeError):
            self.close()
            raise SubmissionError(f"the submission's process sent something that is not a result while {what}") from None
        return header, payload

    def call(self, probe: str, timeout: float | None = None, torch_seed: int = 0, **params) -> dict:
        """Run ``probes.probe_<probe>(submission, **params)`` in the worker, after ``torch.manual_seed(torch_seed)``;
        returns its plain result."""
        import torch

        if self.proc is None and self.load_error is None:
            self.start()  # first call, or after a call killed the worker
        if self.load_error:
            raise SubmissionError(self.load_error)
        what = f"running check '{probe}'"
        buf = io.BytesIO()
        torch.save(params, buf)  # the inputs the grader chose: tensors travel as tensors
        self._send({"probe": probe, "seed": torch_seed, "nbytes": buf.tell()}, buf.getvalue())
        header, payload = self._receive(timeout or self.limits.call_timeout, what)
        if not header.get("ok"):
            err = str(header.get("error", "failed"))[:2000]
            if err.startswith("internal:"):
                raise RuntimeError(err)
            raise SubmissionError(err)
        try:
            return torch.load(io.BytesIO(payload), weights_only=True)
        except Exception:  # noqa: BLE001 - anything but plain data is refused
            raise SubmissionError(f"the result of '{probe}' was not plain data (tensors, numbers, lists), so it was refused") from None

    def log_tail(self, n: int = 2000) -> str:
        """The end of what the student's code printed (the log is at most ``Limits.file_mb``: only its end is read)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4 * n))
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""
