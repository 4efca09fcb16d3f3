"""The process a submission's code runs in. Started by ``coursekit.grading.sandbox``; never imported by graders.

Protocol, over the pipes it was started with (the student's prints go to a log file):

1. one JSON line: {"code": path of the student's module, "probes": path of the probe module,
   "seed": int, "threads": int}
2. one JSON line back, before the student's code runs: {"worker": {"cuda": bool, "device": str, ...}} (the device
   it sees, with its GPU memory capped: ``gpu.worker_setup``), then one more: {"ok": true} or
   {"ok": false, "error": "..."} (the code failed to load)
3. then, per request: a JSON line {"probe": name, "seed": int, "nbytes": n} followed by n bytes,
   ``torch.save`` of the probe's parameters (plain tensors, numbers, lists: the inputs the grader
   chose); back comes a JSON header line {"ok": bool, "nbytes": n, "error": str} followed by n
   bytes: ``torch.save`` of the probe's result, a dict of plain tensors, numbers, strings and
   lists, which the grader loads with ``torch.load(weights_only=True)`` after checking ``n``.

A probe is a function of the grader's ``probes.py``: it calls the student's code on the
grader's inputs and returns raw outputs (logits, samples, weights). Everything in this process
is the student's to rewrite, so nothing here decides anything: every judgment is made from the
raw outputs in the grader's process.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import traceback
import types


def _plain(obj, where: str = "result"):
    """A copy of ``obj`` made only of plain tensors, numbers, strings, lists and dicts."""
    import numpy as np
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().as_subclass(torch.Tensor)
        plain = torch.empty(t.shape, dtype=t.dtype)  # a fresh base-class tensor: no subclass survives
        plain.copy_(t)
        return plain
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj, copy=True))
    if type(obj) in (bool, int, float, str) or obj is None:
        return obj
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if type(obj) in (list, tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if type(obj) is dict:
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    raise TypeError(f"{where} is a {type(obj).__name__}, not a tensor, number, string, list or dict")


_LOAD_PROBLEMS: list = []  # (first line, last line, names it would have made, what happened): statements that did not run


def _problem_for(name: str) -> str:
    """Why a statement that would have made ``name`` did not run when the code was loaded, or ""."""
    for first, _, names, what in _LOAD_PROBLEMS:
        if name in names:
            return f" (submission.py, line {first} would have made it, but {what} when the notebook's code was loaded)"
    return ""


def _describe(exc: BaseException, code_path: str) -> str:
    """One line for the student: the exception and the line of *their* code it came from (as "line N" of the module:
    the grader's process tells it as the notebook's cell and line)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code_path]
    where = ""
    if frames:
        f = frames[-1]
        where = f" (submission.py, line {f.lineno}: {f.line})" if f.name == "<module>" else f" (in `{f.name}`, line {f.lineno}: {f.line})"
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, NotImplementedError):
        return "not implemented yet (raises NotImplementedError)" + where
    if isinstance(exc, AttributeError) and "module 'submission' has no attribute" in str(exc):
        name = str(exc).split("attribute", 1)[1].strip().strip("'")
        why = _problem_for(name)
        if why:
            return f"`{name}` is not defined in your notebook{why}"
        return f"`{name}` is not defined in your notebook: keep the names the notebook gives (was it renamed?)"
    if isinstance(exc, NameError) and getattr(exc, "name", None):
        return f"{type(exc).__name__}: {msg}"[:400] + where + _problem_for(exc.name)
    if isinstance(exc, SystemExit):
        return f"the code called sys.exit({exc.code}) / exit()" + where
    return f"{type(exc).__name__}: {msg}"[:400] + where


class _Overran(BaseException):
    """A timed statement ran past its budget (a BaseException: ``except Exception`` in the student's code lets it by)."""


def _first_line(stmt) -> int:
    return min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])


def _run_timed(code, namespace: dict, seconds: float) -> None:
    """Run ``code`` with ``seconds`` of CPU time (and ten times that, at least a minute, on the wall clock), else raise
    _Overran."""
    import signal

    if not hasattr(signal, "setitimer"):  # Windows (``coursekit check`` on a student's machine): no budget
        exec(code, namespace)
        return

    def stop(signum, frame):
        raise _Overran

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, max(60.0, 10 * seconds))  # waiting, not computing; generous: a busy machine is slow
    try:
        exec(code, namespace)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _load(path: str, name: str, tolerant: bool = False) -> types.ModuleType:
    """Run the file at ``path`` as module ``name``.

    ``tolerant`` (the student's code): its top-level statements run one by one, and one that fails does not stop
    the others: what depends on it fails in its own tests, saying why (``_problem_for``). SystemExit still stops
    the loading (the code asked to stop: every test says so). The statements the
    extraction marked as timed (``coursekit.notebook``: assignments that call something) get a CPU budget each and
    are left out when they take longer. A file that is not valid Python fails as a whole."""
    import ast

    mod = types.ModuleType(name)
    mod.__file__ = path
    sys.modules[name] = mod
    with open(path, encoding="utf-8") as f:
        source = f.read()
    if not tolerant:
        exec(compile(source, path, "exec"), mod.__dict__)
        return mod
    import __future__

    from coursekit.notebook import TIMED_BUDGET, TIMED_TOTAL, parse_extracted

    tree = compile(source, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    timed = parse_extracted(source).timed
    left, flags = TIMED_TOTAL, 0
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            for alias in stmt.names:
                feature = getattr(__future__, alias.name, None)
                flags |= getattr(feature, "compiler_flag", 0)
        first = _first_line(stmt)
        names = {t.id for t in ast.walk(stmt) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
        names |= {a.asname or a.name.split(".")[0] for t in ast.walk(stmt) if isinstance(t, (ast.Import, ast.ImportFrom))
                  for a in t.names}
        names |= {t.name for t in ast.walk(stmt) if isinstance(t, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        try:
            code = compile(ast.Module(body=[stmt], type_ignores=[]), path, "exec", flags=flags, dont_inherit=True)
            if first in timed:
                if left <= 0:
                    _LOAD_PROBLEMS.append((first, stmt.end_lineno, names, "it was not run: the time for such statements was spent"))
                    continue
                budget = min(TIMED_BUDGET, left)
                import time

                cpu0 = time.process_time()
                try:
                    _run_timed(code, mod.__dict__, budget)
                finally:
                    left -= time.process_time() - cpu0
            else:
                exec(code, mod.__dict__)
        except SystemExit:
            raise  # sys.exit() hidden in a definition or an assignment: the code asked to stop, it fails to load
        except _Overran:
            _LOAD_PROBLEMS.append((first, stmt.end_lineno, names, f"it took longer than the {budget:g} s of CPU time grading gives "
                                   "a top-level statement that calls something (training at the top level?), so it was stopped"))
        except BaseException as e:  # noqa: BLE001 - anything else the student's top level raises
            _LOAD_PROBLEMS.append((first, stmt.end_lineno, names, "it raised " + _describe(e, path)))
    return mod


def main() -> None:
    # Keep the protocol pipes for ourselves; the student's prints and reads go elsewhere.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    init = json.loads(proto_in.readline())
    log = os.open(init.get("log", "submission.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)

    def send(header: dict, payload: bytes = b"") -> None:
        header["nbytes"] = len(payload)
        proto_out.write((json.dumps(header) + "\n").encode())
        proto_out.write(payload)
        proto_out.flush()

    import torch

    torch.set_num_threads(int(init.get("threads", 1)))
    from coursekit.grading import gpu
    from coursekit.grading.memory import release_memory

    send({"worker": gpu.worker_setup(torch)})  # before the student's code: what it says cannot be the student's
    try:
        probes = _load(init["probes"], "probes")
    except BaseException as e:  # the grader's own module: report it as such
        send({"ok": False, "error": f"internal: the probe module failed to load: {type(e).__name__}: {e}"})
        return
    # The probe functions are taken before the student's code runs, and the module leaves
    # sys.modules: replacing ``probes.probe_x`` from a notebook changes nothing here. (The
    # student can still rewrite anything else in this interpreter, torch included: which is
    # why the worker only returns raw outputs.)
    table = {name[len("probe_"):]: fn for name, fn in vars(probes).items() if name.startswith("probe_") and callable(fn)}
    sys.modules.pop("probes", None)
    try:
        torch.manual_seed(init.get("seed", 0))
        submission = _load(init["code"], "submission", tolerant=True)
    except BaseException as e:  # noqa: BLE001 - anything the student's top level raises
        send({"ok": False, "error": "the notebook's code failed to run: " + _describe(e, init["code"])})
        return
    send({"ok": True})
    release_memory()  # what loading the notebook's code left behind

    while True:
        line = proto_in.readline()
        if not line:
            return  # the grader closed the pipe: it is done, or gone
        req = json.loads(line)
        params = torch.load(io.BytesIO(proto_in.read(int(req["nbytes"]))), weights_only=True) if req.get("nbytes") else {}
        fn = table.get(req["probe"])
        if fn is None:
            send({"ok": False, "error": f"internal: no probe {req['probe']!r}"})
            continue
        started = time.monotonic()
        try:
            torch.manual_seed(req.get("seed", 0))
            result = _plain(fn(submission, **params))
            buf = io.BytesIO()
            torch.save(result, buf)
            del result, params  # the payload is all that is left of the call
            send({"ok": True}, buf.getbuffer())
            del buf
        except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from student code too
            if gpu.is_oom(e):  # the student's model does not fit in its share of the GPU: say so, not a bare traceback
                total = torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None
                send({"ok": False, "error": gpu.oom_message(total) + ". What failed: " + _describe(e, init["code"])})
                continue
            send({"ok": False, "error": _describe(e, init["code"])})
        finally:
            params = result = buf = None  # nothing of the call is kept while the worker waits for the next one
            # the freed memory goes back to the system (Gradescope's container: 768 MB for all); a full collection (half a
            # second) only after a long call, such as training
            release_memory(full=time.monotonic() - started > 5.0)


if __name__ == "__main__":
    main()
