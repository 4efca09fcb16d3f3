"""Public checks: what students run from their notebook to test shapes and simple properties.

Each assignment has a module here (``coursekit.checks.<assignment>``) whose check functions
take the student's namespace (a dict of their definitions) and raise ``CheckFailed`` with a
hint a student can act on. They never reveal what the hidden graders compare.

In a notebook::

    from coursekit.checks import pixelrnn as checks
    checks.check_one_hot(globals())        # one check
    checks.run_all(globals())              # all of them

From the shell: ``coursekit check NOTEBOOK`` runs them on the notebook's definitions in a
separate process (the notebook's training and plotting cells are not run).
"""

from __future__ import annotations

import functools
import traceback
from dataclasses import dataclass
from typing import Callable


class CheckFailed(AssertionError):
    """A public check that did not pass; the message is the hint."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return f"[{mark}] {self.name}" + (f": {self.message}" if self.message else "")


def need(ns: dict, name: str):
    """The student's definition ``name``, or a failure saying it is missing."""
    if name not in ns:
        raise CheckFailed(f"`{name}` is not defined; run the cell that defines it (keep its name as given)")
    return ns[name]


def expect_shape(what: str, got, shape: tuple, hint: str = "") -> None:
    """Fail with a hint unless ``got`` is a tensor of shape ``shape``."""
    import torch

    if not torch.is_tensor(got):
        raise CheckFailed(f"{what} should be a torch tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(shape):
        raise CheckFailed(f"{what} has shape {tuple(got.shape)}, expected {tuple(shape)}" + (f"; {hint}" if hint else ""))


def _name(fn: Callable) -> str:
    return fn.__name__.removeprefix("check_").replace("_", " ")


def shown(fn: Callable[[dict], str | None]) -> Callable[[dict], None]:
    """A check as students call it in a notebook cell: it prints ``[PASS] name: what was checked`` and returns None.

    A check cell is an nbgrader test cell worth 0 points, and nbgrader reads the value a test cell ends with as partial
    credit (a value that is not a number gets "future releases may treat as error"); printing also shows every check of a
    cell, not only the last one's value. A failure still raises ``CheckFailed`` (the cell's error, which ``nbgrader
    validate`` reports). ``run_check`` calls the undecorated function (``__wrapped__``) for its message.
    """

    @functools.wraps(fn)
    def call(ns: dict) -> None:
        print(CheckResult(_name(fn), True, fn(ns) or "").line())

    return call


def run_check(fn: Callable[[dict], str | None], ns: dict) -> CheckResult:
    fn = getattr(fn, "__wrapped__", fn)
    name = _name(fn)
    try:
        msg = fn(ns) or ""
        return CheckResult(name, True, msg)
    except CheckFailed as e:
        return CheckResult(name, False, str(e))
    except NotImplementedError:
        return CheckResult(name, False, "not implemented yet (the cell still raises NotImplementedError)")
    except Exception as e:  # a crash in student code is a failed check with its cause
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (line {tb[-1].lineno} of {tb[-1].name})" if tb else ""
        return CheckResult(name, False, f"raised {type(e).__name__}: {e}{where}")


def run_checks(checks: list[Callable], ns: dict, verbose: bool = True) -> list[CheckResult]:
    results = [run_check(fn, ns) for fn in checks]
    if verbose:
        for r in results:
            print(r.line())
        n_ok = sum(r.passed for r in results)
        print(f"{n_ok}/{len(results)} public checks passed")
    return results
