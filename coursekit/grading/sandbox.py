"""Running a submission's code in a process of its own, with limits, and calling probes in it.

Isolation, strongest available first (the report names the one in force):

- ``bubblewrap``: the worker sees the file system read-only, with ``autograder/``,
  ``solutions/``, ``tests/`` and the grading output hidden behind empty folders, a private
  ``/tmp`` and working folder, no network, its own PID namespace, and dies with the grader;
- ``unshare``: no network (a new network namespace), limits and a private working folder,
  but the file system is visible;
- ``rlimits``: only the limits and a private working folder.

In every mode: a memory limit (RLIMIT_DATA, which leaves CUDA's address-space reservations
alone), a CPU-time limit for the whole submission, a limit on file sizes, a wall-clock limit
per call (the worker is killed and restarted), and only plain data crossing back, loaded with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import paths


class SubmissionError(Exception):
    """The submission's code failed in a way the student should read (crash, timeout, exception)."""


@dataclass
class Limits:
    call_timeout: float = 120.0  # seconds of wall clock for one probe call
    load_timeout: float = 120.0  # seconds to import the student's code
    memory_mb: int = 6144  # RLIMIT_DATA of the worker
    cpu_seconds: int = 1800  # RLIMIT_CPU of the worker, over its whole life
    file_mb: int = 256  # the largest file the worker may write
    threads: int = 1  # torch threads in the worker
    result_mb: int = 512  # the largest result the grader accepts from one call


def _which_isolation(prefer: str | None = None) -> str:
    prefer = prefer or os.environ.get("COURSEKIT_ISOLATION")
    if prefer:
        return prefer
    if shutil.which("bwrap") and _probe_ok(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "true"]):
        return "bubblewrap"
    if shutil.which("unshare") and _probe_ok(["unshare", "-n", "true"]):
        return "unshare"
    return "rlimits"


_PROBED: dict[tuple, bool] = {}


def _probe_ok(cmd: list[str]) -> bool:
    key = tuple(cmd)
    if key not in _PROBED:
        try:
            _PROBED[key] = subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _PROBED[key] = False
    return _PROBED[key]


def hidden_paths() -> list[Path]:
    """Folders the student's process must not read."""
    root = paths.kit_root()
    extra = [Path(p) for p in os.environ.get("COURSEKIT_HIDE", "").split(os.pathsep) if p]
    return [p for p in (root / "autograder", root / "solutions", root / "tests", *extra) if p.exists()]


def _needed_paths() -> list[Path]:
    """What the worker must see: the kit, the coursekit package (it may be installed from elsewhere) and Python."""
    import coursekit

    found = [paths.kit_root(), Path(coursekit.__file__).resolve().parent.parent, Path(sys.prefix), Path(sys.base_prefix)]
    return sorted({p.resolve() for p in found if p.exists()}, key=lambda p: len(p.parts))


def _set_limits(limits: Limits):
    def apply() -> None:
        os.setsid()  # its own process group, so a timeout kills everything it started
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


class Sandbox:
    """A worker process holding one submission's code; ``call`` runs a probe in it.

    code:   the student's module (a .py file, extracted from their notebook)
    probes: the grader's probe module (copied into the worker's folder, so the worker never
            needs to read ``autograder/``)
    """

    def __init__(self, code: str | Path, probes: str | Path, limits: Limits | None = None, isolation: str | None = None, seed: int = 0):
        self.code_src, self.probes_src = Path(code), Path(probes)
        self.limits = limits or Limits()
        self.isolation = _which_isolation(isolation)
        self.seed = seed
        self.proc: subprocess.Popen | None = None
        self.load_error: str | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="coursekit-sandbox-"))
        shutil.copy(self.code_src, self.workdir / "submission.py")
        shutil.copy(self.probes_src, self.workdir / "probes.py")
        self.log_path = self.workdir / "submission.log"
        self.starts = 0  # how many worker processes this submission needed

    # --- process management ----------------------------------------------------------------
    def _command(self) -> list[str]:
        py = [sys.executable, "-m", "coursekit.grading.worker"]
        if self.isolation == "bubblewrap":
            cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                   "--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
            for p in _needed_paths():  # a private /tmp must not hide the kit or Python when they live under /tmp
                if Path(p).resolve().is_relative_to("/tmp"):
                    cmd += ["--ro-bind", str(p), str(p)]
            for p in hidden_paths():
                cmd += ["--tmpfs", str(p)]
            cmd += ["--bind", str(self.workdir), str(self.workdir), "--chdir", str(self.workdir)]
            return cmd + py
        if self.isolation == "unshare":
            return ["unshare", "-n", *py]
        return py

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "CUDA_VISIBLE_DEVICES", "COURSEKIT_ROOT", "COURSEKIT_DATA", "COURSEKIT_DATASET")}
        env.update(PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS=str(self.limits.threads), MPLBACKEND="Agg", HOME=str(self.workdir))
        self.proc = subprocess.Popen(
            self._command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=self.workdir, env=env, preexec_fn=_set_limits(self.limits),
        )
        init = {"code": str(self.workdir / "submission.py"), "probes": str(self.workdir / "probes.py"),
                "seed": self.seed, "threads": self.limits.threads, "log": str(self.log_path)}
        self.starts += 1
        self._send(init)
        try:
            header, _ = self._receive(self.limits.load_timeout, "loading the notebook's code")
        except SubmissionError as e:  # an endless loop or a crash at the top level: it would happen again
            self.load_error = str(e)
            return
        if not header.get("ok"):
            self.load_error = str(header.get("error", "the notebook's code failed to load"))[:2000]
            self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()
        self.proc = None

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

    def _read_some(self, n: int, deadline: float) -> bytes:
        """Up to ``n`` bytes from the worker; TimeoutError past ``deadline``, EOFError when it is gone."""
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        return chunk

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunks.append(self._read_some(min(n - got, 1 << 20), deadline))
            got += len(chunks[-1])
        return b"".join(chunks)

    def _read_line(self, deadline: float) -> bytes:
        buf = bytearray()
        while not buf.endswith(b"\n"):
            buf += self._read_some(1, deadline)  # byte by byte: the payload after the line stays unread
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
        deadline = time.monotonic() + timeout
        try:
            header = json.loads(self._read_line(deadline))
            if not isinstance(header, dict):
                raise ValueError("header is not an object")
            nbytes = header.get("nbytes") or 0
            if type(nbytes) is not int or not 0 <= nbytes <= self.limits.result_mb * 1024 * 1024:
                self.close()
                raise SubmissionError(f"the submission's process announced a result of {nbytes!r} bytes while {what} "
                                      f"(at most {self.limits.result_mb} MB are accepted), so it was refused")
            payload = self._read_exact(nbytes, deadline) if nbytes else b""
        except TimeoutError:
            self.close()
            raise SubmissionError(f"took longer than {timeout:.0f} s while {what} (an endless loop, or far too slow?)") from None
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
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""
