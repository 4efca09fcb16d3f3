"""The process a submission's code runs in. Started by ``coursekit.grading.sandbox``; never imported by graders.

Protocol, over the pipes it was started with (the student's prints go to a log file):

1. one JSON line: {"code": path of the student's module, "probes": path of the probe module,
   "seed": int, "threads": int}
2. one JSON line back: {"ok": true} or {"ok": false, "error": "..."} (the code failed to load)
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


def _describe(exc: BaseException, code_path: str) -> str:
    """One line for the student: the exception and the line of *their* code it came from."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code_path]
    where = f" (in `{frames[-1].name}`, line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, NotImplementedError):
        return "not implemented yet (raises NotImplementedError)" + where
    if isinstance(exc, AttributeError) and "module 'submission' has no attribute" in str(exc):
        name = str(exc).split("attribute", 1)[1].strip().strip("'")
        return f"`{name}` is not defined in your notebook: keep the names the notebook gives (was it renamed?)"
    if isinstance(exc, SystemExit):
        return f"the code called sys.exit({exc.code}) / exit()" + where
    return f"{type(exc).__name__}: {msg}"[:400] + where


def _load(path: str, name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__file__ = path
    sys.modules[name] = mod
    with open(path, encoding="utf-8") as f:
        code = compile(f.read(), path, "exec")
    exec(code, mod.__dict__)
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
        submission = _load(init["code"], "submission")
    except BaseException as e:  # noqa: BLE001 - anything the student's top level raises
        send({"ok": False, "error": "the notebook's code failed to run: " + _describe(e, init["code"])})
        return
    send({"ok": True})

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
        try:
            torch.manual_seed(req.get("seed", 0))
            result = _plain(fn(submission, **params))
            buf = io.BytesIO()
            torch.save(result, buf)
            send({"ok": True}, buf.getvalue())
        except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from student code too
            send({"ok": False, "error": _describe(e, init["code"])})


if __name__ == "__main__":
    main()
