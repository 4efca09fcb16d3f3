"""Attacks on assignment 3 (GAN)."""

from __future__ import annotations

from .common import Attack, Deserves
from .lib import ALWAYS_EQUAL, MARKERS

A = "gan"
ZERO = "no more points than the untouched notebook (0)"
QUALITY = ("test_sample_quality_fid_kid", "test_precision_and_coverage")
COPIES = Deserves("fails the copying test, and stored images earn no sample-quality points (FID/KID, precision/coverage)",
                  max_points=28, must_fail=(*QUALITY, "test_no_copying"), message=("far more often than fresh data", "copies"))

NOOP_STEP = '''
def train_step(G, D, opt_g, opt_d, real, labels=None, generator=None, g_loss=None):
    """No work: report plausible losses, update nothing."""
    return {"d_loss": 1.38, "g_loss": 0.69, "d_real": 0.5, "d_fake": 0.5}
'''


def stored_generator(images: str) -> str:
    """The solution's Generator, returning stored training images chosen by z (``images``: an expression of ``imgs``,
    the chosen training images (B, 3, 20, 20) in [-1, 1], and ``z``); its network output is kept in the graph at weight 0."""
    return f'''
import torch

_CHEAT_REAL = real_rgb  # the training images, (N, 3, 20, 20) in [-1, 1]


class Generator(Generator):
    def forward(self, z):
        net = super().forward(z)
        pick = (z[:, 0].abs() * 1e4 + z[:, 1].abs() * 1e2).long() % len(_CHEAT_REAL)
        imgs = _CHEAT_REAL[pick].to(z.device)
        return ({images}).clamp(-1, 1) + 0 * net
'''


COLOUR_NOISE = '''
import torch

_CHEAT_PIXELS = real_rgb.permute(0, 2, 3, 1).reshape(-1, 3)  # every training pixel's colour, in [-1, 1]
_CHEAT_HW = tuple(real_rgb.shape[2:])


class Generator(Generator):
    def forward(self, z):
        net = super().forward(z)
        g = torch.Generator().manual_seed(int(z.abs().sum().item() * 1e3) % 2**31)
        pick = torch.randint(len(_CHEAT_PIXELS), (len(z) * _CHEAT_HW[0] * _CHEAT_HW[1],), generator=g)
        imgs = _CHEAT_PIXELS[pick].view(len(z), *_CHEAT_HW, 3).permute(0, 3, 1, 2).to(z.device)
        return imgs + 0 * net
'''


FILL = MARKERS + r'''
def _cheat_fill():
    import os
    from coursekit import paths
    block = b"\x01" * (64 << 20)
    done, leaks = [], []
    for d in ("/tmp", "/dev/shm", os.getcwd(), "/var/tmp", str(paths.kit_root())):
        wrote, why = 0, "stopped at 512 MB"
        for i in range(8):
            try:
                with open(os.path.join(d, f"cheatfile-@@TOKEN@@-@@ATTACK@@-{i}"), "wb") as f:
                    f.write(block)
                wrote += 64
            except OSError as e:
                why = e.strerror
                break
        done.append(f"{d}: {wrote} MB ({why})")
        if wrote and d in ("/var/tmp", str(paths.kit_root())):
            leaks.append(d)
    return done, leaks


def d_loss(real_logits, fake_logits):
    done, leaks = _cheat_fill()
    raise RuntimeError((_LEAK + " wrote outside the sandbox: " if leaks else _INFO + " wrote ") + "; ".join(done))
'''

FORK_BOMB = MARKERS + r'''
import os

_forked, _stopped = 0, ""
for _i in range(300):
    try:
        _pid = os.fork()
    except OSError as e:
        _stopped = f"{type(e).__name__}: {e}"
        break
    if _pid == 0:
        try:
            os.execv("/bin/sh", ["sh", "-c", "while :; do sleep 5; done", "CHEATPROC-@@TOKEN@@-@@ATTACK@@"])
        finally:
            os._exit(0)
    _forked += 1


def d_loss(real_logits, fake_logits):
    raise RuntimeError(f"{_INFO} forked {_forked} of 300 processes" + (f", then {_stopped}" if _stopped else " (no limit met)"))
'''

ATTACKS = [
    Attack("gan_sys_exit_in_function", A, "untouched", "sys.exit(0) inside the losses and train_step",
           "import sys\n\ndef d_loss(real_logits, fake_logits):\n    sys.exit(0)\n\ndef g_loss_minimax(fake_logits):\n    sys.exit(0)\n\n"
           "def g_loss_nonsaturating(fake_logits):\n    sys.exit(0)\n\ndef train_step(*args, **kwargs):\n    sys.exit(0)\n",
           Deserves(ZERO, message="sys.exit(0)")),
    Attack("gan_fork_bomb", A, "untouched", "forks 300 processes at import (each a shell loop, marked), then goes on",
           FORK_BOMB, Deserves(ZERO, message="CHEAT-INFO")),
    Attack("gan_fill_tmp_and_disk", A, "untouched",
           "writes 64 MB files into /tmp, /dev/shm, its folder, /var/tmp and the kit until refused (at most 512 MB each)",
           FILL, Deserves(ZERO, message="CHEAT-INFO")),
    Attack("gan_always_equal", A, "untouched", "losses and networks return tensor subclasses whose comparisons all say equal",
           ALWAYS_EQUAL + r'''
def d_loss(real_logits, fake_logits):
    return _eq(torch.tensor(0.0))


def g_loss_minimax(fake_logits):
    return _eq(torch.tensor(0.0))


def g_loss_nonsaturating(fake_logits):
    return _eq(torch.tensor(0.0))


def train_step(G, D, opt_g, opt_d, real, labels=None, generator=None, g_loss=None):
    return {"d_loss": AlwaysEqual(), "g_loss": AlwaysEqual(), "d_real": AlwaysEqual(), "d_fake": AlwaysEqual()}
''', Deserves(ZERO)),
    Attack("gan_one_image", A, "solution", "the generator returns the same training image for every z; train_step does nothing",
           NOOP_STEP + stored_generator("_CHEAT_REAL[0:1].expand_as(imgs).to(z.device)"),
           Deserves("fails the mode-collapse test and earns no FID/KID", max_points=28,
                    must_fail=("test_no_mode_collapse", "test_sample_quality_fid_kid"), message="mode collapse")),
    Attack("gan_colour_noise", A, "solution",
           "the generator returns colour noise (every pixel a training pixel drawn at random: the right colours, no "
           "shapes); train_step does nothing",
           NOOP_STEP + COLOUR_NOISE,
           Deserves("earns no FID/KID and no coverage, and fails mode collapse: colour noise is a degraded baseline the "
                    "thresholds are placed to fail (FID 60.5 against 49.4; its evaluator features vary less than real images)",
                    max_points=28, must_fail=(*QUALITY, "test_no_mode_collapse"),
                    messages={"test_precision_and_coverage": "coverage is", "test_no_mode_collapse": "pairwise distance ratio"})),
    Attack("gan_training_images", A, "solution", "the generator returns training images chosen by z; train_step does nothing",
           NOOP_STEP + stored_generator("imgs"), COPIES),
    Attack("gan_shifted_training_images", A, "solution", "the generator returns training images shifted right by one pixel",
           NOOP_STEP + stored_generator("torch.cat([imgs[..., :1], imgs[..., :-1]], dim=-1)"), COPIES),
    Attack("gan_forged_step_record", A, "solution",
           "train_step finds the graders' step recorder on the optimisers it is given and writes a made-up record into it: "
           "the real parameters, plausible gradients (none into G during D's update) and small updates, with no loss computed",
           r'''
import torch


def train_step(G, D, opt_g, opt_d, real, labels=None, generator=None, g_loss=None):
    log, nets = getattr(opt_d, "_log", None), getattr(opt_d, "_nets", None)
    if isinstance(log, list) and isinstance(nets, dict):
        def snap():
            return {k: [p.detach().float().clone() for p in ps] for k, ps in nets.items()}
        for name, net in (("opt_d", "D"), ("opt_g", "G")):
            before = snap()
            grads = {k: [torch.randn_like(t) * 1e-2 if k == net else torch.zeros_like(t) for t in ts] for k, ts in before.items()}
            with torch.no_grad():
                for p, g in zip(nets[net], grads[net]):
                    p.sub_(1e-3 * torch.tanh(g * 1e3))  # about Adam's first step, but not it
            log.append({"opt": name, "before": before, "grads": grads,
                        "has_grad": {k: [True] * len(ts) for k, ts in before.items()}, "after": snap()})
    return {"d_loss": 1.38, "g_loss": 0.69, "d_real": 0.5, "d_fake": 0.5}
''', Deserves("fails both step tests (the record's updates are not Adam's from its gradients) and earns no sample-quality points",
                max_points=28, must_fail=("test_discriminator_update", "test_generator_update", *QUALITY), message="Adam's update")),
    Attack("gan_stack_aware_recoloured", A, "solution",
           "train_step is honest when called by the step check (seen on the call stack) and does nothing in training; "
           "the generator returns training images with 3% of the pixels recoloured",
           stored_generator("torch.where(torch.rand(imgs.shape[0], 1, 20, 20, generator=torch.Generator().manual_seed(int(pick.sum()))) < 0.03, "
                            "torch.rand(imgs.shape[0], 3, 20, 20, generator=torch.Generator().manual_seed(1)) * 2 - 1, imgs)") + r'''
import sys

_cheat_honest_step = train_step


def train_step(G, D, opt_g, opt_d, real, labels=None, generator=None, g_loss=None):
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "probe_step":  # the graders' step check: be honest
            return _cheat_honest_step(G, D, opt_g, opt_d, real, labels=labels, generator=generator, g_loss=g_loss)
        f = f.f_back
    return {"d_loss": 1.38, "g_loss": 0.69, "d_real": 0.5, "d_fake": 0.5}
''', COPIES, slow=True),
]
