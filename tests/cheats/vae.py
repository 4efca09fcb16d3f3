"""Attacks on assignment 2 (VAE)."""

from __future__ import annotations

from .common import Attack, Deserves
from .lib import TORCH_PATCHES

A = "vae"
ZERO = "no more points than the untouched notebook (0)"
TRAINING = ("test_heldout_negative_elbo", "test_sample_quality", "test_samples_are_not_copies")
NOT_TRAINING = ("test_shapes", "test_reparameterize", "test_kl_divergence", "test_reconstruction", "test_negative_elbo",
                "test_gradients_reach_the_encoder", "test_interpolation", "test_latent_traversal", "test_conditional_vae")

NOOP_TRAIN = '''
def train(model, data, steps, *args, **kwargs):
    return {"loss": []}
'''

HIDE_IN_MU = r'''
import torch
import torch.nn as nn
import torch.nn.functional as F
from coursekit.data import course_dataset

_ds = course_dataset()
_TABLE = torch.as_tensor(_ds.indices).long()  # every image this copy of the data set holds
_FREQ = torch.bincount(_TABLE.flatten(), minlength=_ds.num_colors).double() + 1
_SCALE, _FLAG = 1e-3, 3.0


class Encoder(nn.Module):
    """Hides the image's index in the data set in mu[0], flagged by mu[1], with a tiny variance."""

    def __init__(self, K, H, W, latent_dim=10, hidden=32, cond_dim=0):
        super().__init__()
        self.latent_dim = latent_dim
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x, c=None):
        B, D = len(x), self.latent_dim
        mu, logvar = torch.zeros(B, D), torch.zeros(B, D)
        if tuple(x.shape[1:]) == tuple(_TABLE.shape[1:]):
            eq = (x.reshape(B, 1, -1).long() == _TABLE.reshape(1, len(_TABLE), -1)).all(-1)
            found, where = eq.any(1), eq.float().argmax(1)
            mu[found, 0] = where[found].float() * _SCALE
            mu[found, 1] = _FLAG
            logvar[found, :2] = -30.0
        return mu + 0 * self.w, logvar + 0 * self.w


class Decoder(nn.Module):
    """Looks the flagged index up; the colour frequencies otherwise."""

    def __init__(self, K, H, W, latent_dim=10, hidden=32, cond_dim=0):
        super().__init__()
        self.K, self.H, self.W = K, H, W
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, z, c=None):
        B = len(z)
        base = (_FREQ / _FREQ.sum()).log().float() if len(_FREQ) == self.K else torch.zeros(self.K)
        logits = base[None, :, None, None].expand(B, self.K, self.H, self.W).clone() + 0 * self.w
        hit = z[:, 1] > _FLAG / 2 if z.shape[1] > 1 else torch.zeros(B, dtype=torch.bool)
        if bool(hit.any()) and tuple(_TABLE.shape[1:]) == (self.H, self.W) and len(_FREQ) == self.K:
            where = (z[hit, 0] / _SCALE).round().long().clamp(0, len(_TABLE) - 1)
            logits[hit] = 40.0 * F.one_hot(_TABLE[where], self.K).permute(0, 3, 1, 2).float()
        return logits


class VAE(nn.Module):
    def __init__(self, K, H, W, latent_dim=10, hidden=32):
        super().__init__()
        self.K, self.H, self.W, self.latent_dim = K, H, W, latent_dim
        self.encoder, self.decoder = Encoder(K, H, W, latent_dim), Decoder(K, H, W, latent_dim)

    def forward(self, x, eps=None):
        mu, logvar = self.encoder(x)
        eps = torch.randn_like(mu) if eps is None else eps
        return self.decoder(mu + torch.exp(0.5 * logvar) * eps), mu, logvar


def train(model, data, steps, *args, **kwargs):
    return {"loss": []}


def sample(model, n, generator=None):
    return model.decoder(torch.randn(n, model.latent_dim, generator=generator)).argmax(1)
'''

STUB = r'''
import torch
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, K, H, W, latent_dim=10, hidden=32, cond_dim=0):
        super().__init__()
        self.latent_dim = latent_dim
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x, c=None):
        z = torch.zeros(len(x), self.latent_dim) + 0 * self.w
        return z, z.clone()


class Decoder(nn.Module):
    def __init__(self, K, H, W, latent_dim=10, hidden=32, cond_dim=0):
        super().__init__()
        self.K, self.H, self.W = K, H, W
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, z, c=None):
        return torch.zeros(len(z), self.K, self.H, self.W) + 0 * self.w


class VAE(nn.Module):
    def __init__(self, K, H, W, latent_dim=10, hidden=32):
        super().__init__()
        self.K, self.H, self.W, self.latent_dim = K, H, W, latent_dim
        self.encoder, self.decoder = Encoder(K, H, W, latent_dim), Decoder(K, H, W, latent_dim)

    def forward(self, x, eps=None):
        mu, logvar = self.encoder(x)
        return self.decoder(mu), mu, logvar


def reparameterize(mu, logvar, eps):
    return mu


def kl_divergence(mu, logvar):
    return torch.zeros(len(mu))


def reconstruction_nll(logits, x):
    return torch.zeros(len(x))


def negative_elbo(logits, x, mu, logvar):
    return torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0)


def train(model, data, steps, *args, **kwargs):
    return {"loss": [0.0]}


def sample(model, n, generator=None):
    return torch.zeros(n, model.H, model.W, dtype=torch.long)
'''

ATTACKS = [
    Attack("vae_endless_loop_train", A, "solution", "the solution, with a train() that never returns",
           "def train(model, data, steps, *args, **kwargs):\n    while True:\n        pass\n",
           Deserves("loses the three training tests only: the structural tests keep their points", max_points=25,
                    must_fail=TRAINING, must_pass=NOT_TRAINING, message="took longer than"), slow=True),
    Attack("vae_endless_loop_import", A, "untouched", "while True: pass at the top level",
           "while True:\n    pass\n", Deserves(ZERO, message="took longer than"), slow=True),
    Attack("vae_os_exit_top", A, "untouched", "os._exit(0) at the top level", "import os\nos._exit(0)\n",
           Deserves(ZERO, message="os._exit")),
    Attack("vae_memory_bomb", A, "untouched", "reparameterize and kl_divergence fill memory with touched pages until they fail",
           "def _cheat_bomb():\n    hoard = []\n    while True:\n        hoard.append(bytearray(b'\\x01') * (256 << 20))\n\n"
           "def reparameterize(mu, logvar, eps):\n    _cheat_bomb()\n\ndef kl_divergence(mu, logvar):\n    _cheat_bomb()\n",
           Deserves(ZERO, message=("MemoryError", "memory", "killed"))),
    Attack("vae_stub_torch_patches", A, "untouched",
           "a content-free VAE (zeros) with torch's comparisons, F.cross_entropy and kl_divergence patched in the worker; train() does nothing",
           STUB + TORCH_PATCHES,
           Deserves("every test that checks a value fails", max_points=25,
                    must_fail=("test_reparameterize", "test_kl_divergence", "test_reconstruction", "test_negative_elbo",
                               "test_heldout_negative_elbo", "test_sample_quality"))),
    Attack("vae_encoder_hides_image", A, "untouched",
           "the encoder hides the image's index in the data set in mu with a tiny variance, the decoder looks it up; no training",
           HIDE_IN_MU, Deserves("fails the held-out test (a look-up of the data set is not a model of held-out images), and its "
                                "samples (one constant image, plus the few stored images that prior codes happen to flag) earn no "
                                "quality points", max_points=25, must_fail=("test_heldout_negative_elbo", "test_sample_quality"),
                                messages={"test_heldout_negative_elbo": "bits per pixel"})),
    Attack("vae_sampler_training_images", A, "solution", "sample() returns training images; train() does nothing",
           NOOP_TRAIN + "\n\ndef sample(model, n, generator=None):\n    return x_train[torch.randint(0, len(x_train), (n,), generator=generator)].clone()\n",
           Deserves("fails the copies test, and stored images earn no sample-quality points", max_points=25,
                    must_fail=TRAINING, message=("far more often than fresh data", "copies"))),
    Attack("vae_sampler_mirrored", A, "solution", "sample() returns training images mirrored left-right; train() does nothing",
           NOOP_TRAIN + "\n\ndef sample(model, n, generator=None):\n"
           "    return x_train[torch.randint(0, len(x_train), (n,), generator=generator)].flip(-1).clone()\n",
           Deserves("fails the copies test, and stored images earn no sample-quality points", max_points=25,
                    must_fail=TRAINING, message=("far more often than fresh data", "copies"))),
]
