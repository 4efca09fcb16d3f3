"""The evaluator network: a small CNN whose features every sample-quality metric is computed on.

FID and friends need a feature space in which "looks like the data" means "is near the data".
Inception v3 features are the usual choice, but they are trained on 299x299 photographs and
need weights from the internet; our images are 20x20 palette icons. So each data set gets its
own evaluator, trained on its training split only (the test split stays held out):

- data with labels: a classifier; its penultimate layer (before the last ReLU) gives the features;
- data without labels: the encoder of a small autoencoder (reconstructing RGB) gives them.

Inputs are palette images shown as RGB, (N, 3, H, W) floats in [0, 1] (``indices_to_rgb``),
so the network never depends on the order of the palette.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

FORMAT_VERSION = 2  # 2: features centred and scaled (feature_mean, feature_scale)


@dataclass
class EvaluatorConfig:
    """Architecture and training settings (all plain values, so they store as a dict)."""

    image_size: tuple[int, int] = (20, 20)  # (H, W) of the images the network was trained on
    num_classes: int = 0  # classifier outputs; 0 = no labels, train an autoencoder instead
    channels: tuple[int, int, int] = (32, 64, 64)  # width of the three conv layers
    feature_dim: int = 64  # D, the size of the feature vector the metrics use
    dropout: float = 0.3  # before the classifier head
    epochs: int = 30  # passes over the training split
    batch_size: int = 64
    lr: float = 2e-3  # AdamW learning rate (cosine decay to 0)
    weight_decay: float = 1e-4
    hflip: bool = True  # augment with left-right flips (right for icons, wrong for digits)
    shift: int = 1  # augment with random shifts of up to this many pixels (0 = off)
    # append local-structure statistics (``local_structure``) to the features: an autoencoder's bottleneck keeps an
    # image's layout and ignores pixel noise, blur and checkerboard texture, which people see at once. False here so
    # that files written before the option load unchanged; default_config() turns it on for data without labels.
    local_structure: bool = False
    local_weight: float = 0.5  # each statistic standardised on the training split, then multiplied by this

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.local_structure:  # files without the option stay byte for byte what they were before it
            d.pop("local_structure"), d.pop("local_weight")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "EvaluatorConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(**kw)


STEP_EDGES = (0.02, 0.15, 0.4)  # RGB distance / sqrt(3) between neighbours: equal, soft step, edge, hard edge
ISOLATED = 0.1  # a pixel differing by more than this from 3 or 4 of its 4 neighbours is an isolated pixel
NUM_LOCAL_STATS = len(STEP_EDGES) + 2


def local_structure(rgb: torch.Tensor) -> torch.Tensor:
    """Local-structure statistics of images (N, 3, H, W) in [0, 1] -> (N, L), L = ``NUM_LOCAL_STATS``.

    Over all horizontally and vertically adjacent pixel pairs, the share whose RGB distance (divided by sqrt(3), so
    in [0, 1]) is below 0.02 (flat), 0.02-0.15 (soft steps: blur), 0.15-0.4 (edges) and above 0.4 (hard edges);
    and the share of isolated pixels, which differ by more than 0.1 from at least 3 of their 4 neighbours (pixel
    noise, checkerboards). Real icons are mostly flat areas with sharp edges; blurring moves the pairs to soft
    steps, noise to hard edges and isolated pixels.
    """
    d = torch.cat([((rgb[..., :, 1:] - rgb[..., :, :-1]).norm(dim=-3) / math.sqrt(3)).flatten(1),  # (N, H(W-1))
                   ((rgb[..., 1:, :] - rgb[..., :-1, :]).norm(dim=-3) / math.sqrt(3)).flatten(1)], 1)  # (N, pairs)
    edges = (0.0, *STEP_EDGES, float("inf"))
    shares = [((d >= lo) & (d < hi)).float().mean(1) for lo, hi in zip(edges[:-1], edges[1:])]
    pad = nn.functional.pad(rgb, (1, 1, 1, 1), mode="replicate")  # (N, 3, H+2, W+2)
    neighbours = (pad[..., 1:-1, :-2], pad[..., 1:-1, 2:], pad[..., :-2, 1:-1], pad[..., 2:, 1:-1])
    differ = sum(((rgb - q).norm(dim=-3) / math.sqrt(3) > ISOLATED).float() for q in neighbours)  # (N, H, W)
    shares.append((differ >= 3).float().flatten(1).mean(1))
    return torch.stack(shares, 1)


class Evaluator(nn.Module):
    """Conv trunk -> D features -> class logits (or, without labels, an RGB reconstruction).

    forward(rgb (N, 3, H, W) in [0, 1]) -> features (N, D). ``num_features`` = D, which
    torchmetrics reads when the module is given as a custom feature extractor.
    """

    def __init__(self, config: EvaluatorConfig):
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        h, w = config.image_size
        self.trunk = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(),  # (N, c1, H, W)
            nn.MaxPool2d(2),  # (N, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c2, H/4, W/4)
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),  # (N, c3, 2, 2): works for 8x8 digits and 20x20 sprites
            nn.Flatten(),  # (N, 4*c3)
        )
        self.project = nn.Linear(4 * c3, config.feature_dim)  # (N, D): the features
        if config.num_classes > 0:
            self.head = nn.Sequential(nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes))
        else:  # autoencoder decoder: D -> 3*H*W in [0, 1]
            self.head = nn.Sequential(nn.Linear(config.feature_dim, 256), nn.ReLU(), nn.Linear(256, 3 * h * w), nn.Sigmoid())

        # features are centred and scaled by one number (their RMS over the training split), so that
        # x.y / D is O(1): the regime KID's cubic kernel (x.y / D + 1)^3 was made for. Set by calibrate().
        self.register_buffer("feature_mean", torch.zeros(config.feature_dim))  # (D,)
        self.register_buffer("feature_scale", torch.ones(()))  # ()
        if config.local_structure:  # mean and std of each local statistic over the training split (calibrate())
            self.register_buffer("local_mean", torch.zeros(NUM_LOCAL_STATS))  # (L,)
            self.register_buffer("local_std", torch.ones(NUM_LOCAL_STATS))  # (L,)

    @property
    def num_features(self) -> int:
        return self.config.feature_dim + (NUM_LOCAL_STATS if self.config.local_structure else 0)

    def raw_features(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> unnormalised penultimate activations (N, D)."""
        return self.project(self.trunk(rgb.float() - 0.5))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> features (N, D) (+ L local statistics), centred and scaled on the training split."""
        f = (self.raw_features(rgb) - self.feature_mean) / self.feature_scale
        if not self.config.local_structure:
            return f
        local = (local_structure(rgb.float()) - self.local_mean) / self.local_std * self.config.local_weight  # (N, L)
        return torch.cat([f, local], 1)

    @torch.no_grad()
    def calibrate(self, rgb: torch.Tensor, batch_size: int = 512) -> None:
        """Set the feature centring and scale from images (N, 3, H, W), normally the training split."""
        was_training = self.training
        self.eval()
        device = self.feature_mean.device
        f = torch.cat([self.raw_features(rgb[i : i + batch_size].to(device)) for i in range(0, len(rgb), batch_size)])
        self.feature_mean.copy_(f.mean(0))
        self.feature_scale.copy_((f - f.mean(0)).square().mean().sqrt().clamp_min(1e-8))
        if self.config.local_structure:
            s = local_structure(rgb.float())  # (N, L)
            self.local_mean.copy_(s.mean(0))
            self.local_std.copy_(s.std(0).clamp_min(1e-3))  # a statistic constant on the training split still counts
        self.train(was_training)

    def output(self, rgb: torch.Tensor) -> torch.Tensor:
        """What training fits: class logits (N, C) or reconstructed RGB (N, 3, H, W)."""
        out = self.head(self.raw_features(rgb))
        if self.config.num_classes > 0:
            return out
        return out.view(len(rgb), 3, *self.config.image_size)


class PaletteFeatures(nn.Module):
    """Palette indices (N, H, W) long -> evaluator features (N, D), a module for torchmetrics.

    torchmetrics' FID/KID call ``feature(imgs)`` on whatever ``update`` is given; with this
    wrapper they can be given palette images directly.
    """

    def __init__(self, evaluator: Evaluator, palette):
        super().__init__()
        self.evaluator = evaluator
        self.register_buffer("palette", torch.as_tensor(np.asarray(palette), dtype=torch.uint8), persistent=False)

    @property
    def num_features(self) -> int:
        return self.evaluator.num_features

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        from ..data.convert import indices_to_rgb

        rgb = indices_to_rgb(indices.to(self.palette.device).long(), self.palette)  # (N, 3, H, W)
        return self.evaluator(rgb)  # (N, D)


def _augment(rgb: torch.Tensor, config: EvaluatorConfig, gen: torch.Generator) -> torch.Tensor:
    """Random flips and shifts of a batch (N, 3, H, W); the background pads with the corner colour."""
    n = len(rgb)
    if config.hflip:
        flip = torch.rand(n, generator=gen) < 0.5
        rgb = torch.where(flip[:, None, None, None], rgb.flip(-1), rgb)
    s = config.shift
    if s > 0:
        pad = nn.functional.pad(rgb, (s, s, s, s), mode="replicate")  # (N, 3, H+2s, W+2s)
        dy, dx = torch.randint(0, 2 * s + 1, (2,), generator=gen).tolist()  # one shift per batch
        h, w = rgb.shape[-2:]
        rgb = pad[..., dy : dy + h, dx : dx + w]
    return rgb


def default_config(dataset) -> EvaluatorConfig:
    """The settings the reference evaluators use for ``dataset`` (a PaletteDataset)."""
    h, w = dataset.image_shape
    small = min(h, w) < 12
    return EvaluatorConfig(
        image_size=(h, w),
        num_classes=dataset.num_classes,
        hflip=not small,  # digits are not mirror-symmetric; icons mostly are
        shift=0 if small else 1,
        epochs=20 if small else 30,
        local_structure=dataset.num_classes == 0,  # an autoencoder's bottleneck alone misses blur and pixel noise
    )


def train_evaluator(dataset, config: EvaluatorConfig | None = None, seed: int = 0,
                    device: str | torch.device = "cpu", progress: bool = False) -> Evaluator:
    """Train an evaluator on ``dataset``'s training split; deterministic on CPU for a given seed.

    The global torch random state is left as it was (a forked RNG seeds the initialisation
    and dropout; an explicit generator draws the batches and augmentations).
    """
    from tqdm.auto import tqdm

    from ..data.convert import indices_to_rgb

    config = config or default_config(dataset)
    device = torch.device(device)
    x, y = dataset.tensors("train")  # (N, H, W) long, (N,) long or None
    rgb = indices_to_rgb(x, dataset.palette)  # (N, 3, H, W)
    supervised = config.num_classes > 0
    if supervised and y is None:
        raise ValueError(f"{dataset.name}: config asks for {config.num_classes} classes but the data set has no labels")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = Evaluator(config).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps_per_epoch = math.ceil(len(rgb) / config.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
        bar = tqdm(range(config.epochs), desc=f"evaluator {dataset.name}", disable=not progress)
        for _ in bar:
            model.train()
            perm = torch.randperm(len(rgb), generator=gen)
            total = 0.0
            for i in range(0, len(rgb), config.batch_size):
                b = perm[i : i + config.batch_size]
                xb = _augment(rgb[b], config, gen).to(device)  # (B, 3, H, W)
                out = model.output(xb)
                if supervised:
                    loss = nn.functional.cross_entropy(out, y[b].to(device))
                else:
                    loss = nn.functional.mse_loss(out, xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(b)
            bar.set_postfix(loss=f"{total / len(rgb):.3f}")
    model.calibrate(rgb)
    model.eval()
    return model


@torch.no_grad()
def evaluator_accuracy(model: Evaluator, dataset, split: str = "test", batch_size: int = 512) -> float:
    """Share of ``split``'s images the classifier labels right (NaN for an autoencoder)."""
    from ..data.convert import indices_to_rgb

    if model.config.num_classes == 0:
        return float("nan")
    x, y = dataset.tensors(split)
    device = next(model.parameters()).device
    model.eval()
    pred = torch.cat([model.output(indices_to_rgb(x[i : i + batch_size], dataset.palette).to(device)).argmax(1).cpu()
                      for i in range(0, len(x), batch_size)])
    return float((pred == y).float().mean())


@torch.no_grad()
def evaluator_reconstruction_error(model: Evaluator, dataset, split: str = "test", batch_size: int = 512) -> float:
    """An autoencoder's root-mean-square reconstruction error over ``split``'s images, RGB values in [0, 1]
    (what it was trained to minimise; 0 is perfect). NaN for a classifier, which reconstructs nothing."""
    from ..data.convert import indices_to_rgb

    if model.config.num_classes > 0:
        return float("nan")
    x, _ = dataset.tensors(split)
    device = next(model.parameters()).device
    model.eval()
    total = 0.0
    for i in range(0, len(x), batch_size):
        rgb = indices_to_rgb(x[i : i + batch_size], dataset.palette).to(device)  # (B, 3, H, W)
        total += float((model.output(rgb) - rgb).square().sum())
    return math.sqrt(total / max(1, x.numel() * 3))


@torch.no_grad()
def features(model: Evaluator, images_indices, palette, batch_size: int = 512) -> torch.Tensor:
    """Palette images (N, H, W) (numpy or torch, any integer type) -> features (N, D) float32 on CPU."""
    from ..data.convert import indices_to_rgb

    idx = torch.as_tensor(np.asarray(images_indices) if not torch.is_tensor(images_indices) else images_indices).long()
    if idx.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {tuple(idx.shape)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [model(indices_to_rgb(idx[i : i + batch_size], palette).to(device)).float().cpu()
           for i in range(0, len(idx), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, model.num_features)  # (N, D)


def save_evaluator(model: Evaluator, path, **info) -> Path:
    """Write weights + config (+ plain ``info`` such as accuracy) to ``path`` (loadable with weights_only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT_VERSION, "config": model.config.to_dict(), "state_dict": state, "info": dict(info)}, path)
    return path


def load_evaluator(path, device: str | torch.device = "cpu") -> Evaluator:
    """Read an evaluator written by ``save_evaluator``; safe (``weights_only=True``), needs no internet."""
    blob = torch.load(Path(path), map_location=device, weights_only=True)
    if blob.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: evaluator file format {blob.get('format')!r}, expected {FORMAT_VERSION}")
    model = Evaluator(EvaluatorConfig.from_dict(blob["config"]))
    model.load_state_dict(blob["state_dict"])
    model.info = dict(blob.get("info", {}))
    return model.to(device).eval()


def reference_evaluator_path(name: str) -> Path:
    """Where the evaluator of data set ``name`` lives: ``autograder/reference/evaluator_<name>.pt`` in the kit,
    ``<data>/evaluators/evaluator_<name>.pt`` in the student release (``paths.data_dir()``: the package's bundled
    data, as the release has no ``autograder/``; the weights hold no threshold, so students can score their own
    samples as the graders do)."""
    import os

    from .. import paths

    staged = os.environ.get("COURSEKIT_EVALUATOR_DIR")  # set by `coursekit reference` while it rebuilds them
    if staged and (Path(staged) / f"evaluator_{name}.pt").is_file():
        return Path(staged) / f"evaluator_{name}.pt"
    kit = paths.autograder_dir() / "reference" / f"evaluator_{name}.pt"
    released = paths.data_dir() / "evaluators" / f"evaluator_{name}.pt"
    return released if not kit.is_file() and released.is_file() else kit


def build_reference_evaluator(name: str, out_path=None, seed: int = 0, device: str | torch.device = "cpu",
                              progress: bool = False) -> dict:
    """Train the reference evaluator of data set ``name`` (a name, or a path as in ``data/course.json``) and save it."""
    from ..data.course import course_dataset, dataset_fingerprint

    ds = course_dataset(name)
    config = default_config(ds)
    t0 = time.perf_counter()
    model = train_evaluator(ds, config, seed=seed, device=device, progress=progress)
    seconds = time.perf_counter() - t0
    acc = evaluator_accuracy(model, ds, "test")
    # an autoencoder has no accuracy (NaN): what it measures is its held-out reconstruction error
    rmse = evaluator_reconstruction_error(model, ds, "test") if config.num_classes == 0 else None
    out = Path(out_path) if out_path is not None else reference_evaluator_path(ds.name)
    # no timing in the file: the same seed must give the same bytes (coursekit reference --check)
    save_evaluator(model, out, dataset=ds.name, fingerprint=dataset_fingerprint(ds), seed=seed, test_accuracy=acc,
                   torch_version=str(torch.__version__), **({"test_reconstruction_rmse": rmse} if rmse is not None else {}))
    return {"dataset": ds.name, "path": str(out), "kind": "classifier" if config.num_classes else "autoencoder",
            "test_accuracy": acc, "test_reconstruction_rmse": rmse, "train_seconds": seconds,
            "chance": 1.0 / max(1, ds.num_classes), "bytes": out.stat().st_size}


def course_evaluator(ds=None, device: str | torch.device = "cpu") -> Evaluator:
    """The evaluator of the course data set (``data/course.json``), or of ``ds``; a clear error when it is missing or stale."""
    from ..data.course import course_dataset, course_dataset_spec, dataset_fingerprint

    ds = ds if ds is not None else course_dataset()
    path = reference_evaluator_path(ds.name)
    if not path.is_file():
        from .. import paths
        from ..data.registry import missing_data_advice

        advice = (f"train it with `coursekit reference --dataset {course_dataset_spec()}`" if paths.is_staff_kit()
                  else missing_data_advice())
        raise FileNotFoundError(f"{path}: no evaluator for the data set {ds.name!r}; {advice}")
    model = load_evaluator(path, device=device)
    stored = model.info.get("fingerprint")
    if stored is not None and stored not in (dataset_fingerprint(ds), ds.heldout_of):  # heldout_of: the students' copy of it
        from .. import paths

        advice = ("retrain it with `coursekit reference`" if paths.is_staff_kit()
                  else "this copy of coursekit mixes files of two releases: reinstall it from the course's latest release")
        raise ValueError(f"{path} was trained on other images than today's {ds.name!r}; {advice}")
    return model
