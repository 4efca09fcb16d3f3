"""Shared by the GAN graders, make_expected.py and benchmarks/gan_reference.py (grader side only).

- ``sample_metrics(samples)``: the kit's metrics of (M, 20, 20) palette-index samples, computed
  the same way everywhere (500 samples against 500 random training images, seeded).
- ``reference_module()``: the solution notebook's code run into a module (the reference).
- ``load_expected()``: expected.json.
"""

from __future__ import annotations

import functools
import json
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPECTED_PATH = HERE / "expected.json"
METRIC_KEYS = ("fid", "kid", "precision", "recall", "density", "coverage", "duplicate_rate", "palette_usage",
               "pairwise_distance_ratio", "copying_z", "copying_z_features", "exact_copy_fraction", "near_copy_fraction",
               "copying")
COPY_SHARE = 0.05  # more than this share of exact (or near) copies of training images is copying


IMAGE_SHAPE = (20, 20)  # the DCGAN Generator/Discriminator of the notebook are built for 20x20 images


def load_expected() -> dict:
    from coursekit.data import check_measured_on

    expected = json.loads(EXPECTED_PATH.read_text())
    check_measured_on(expected, EXPECTED_PATH)
    return expected


def course_data():
    """The course data set; the GAN assignment's networks need 20x20 images (the course's Pokémon and the sprites are)."""
    from coursekit.data import course_dataset

    ds = course_dataset()
    if tuple(ds.image_shape) != IMAGE_SHAPE:
        raise ValueError(f"the GAN assignment's networks make {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} images, but the course data set "
                         f"{ds.name!r} holds {ds.image_shape[0]}x{ds.image_shape[1]} images: resize it (coursekit data build) or "
                         "change the Generator and Discriminator in solutions/gan/gan.ipynb")
    return ds


@functools.lru_cache(maxsize=1)
def _data_and_evaluator():
    from coursekit.metrics import course_evaluator

    ds = course_data()
    return ds, course_evaluator(ds)


def sample_metrics(samples, seed: int = 0) -> dict:
    """Metrics of samples (M, H, W) palette indices: against M random training images, copying test on the test split.

    ``copying`` here is not ``evaluate_samples``' Z_U-based flag: it is ``copy_report``'s verdict (samples
    reproducing training or held-out images, mirrored, shifted, recoloured or in half, far more often
    than fresh real images do), or more than 5% of the samples being pixel-exact training images, or
    more than 5% being *near copies*, closer (RGB pixel
    distance) to their nearest training image than 99% of the held-out test images are to theirs.
    Meehan's Z_U (``copying_z``, ``copying_z_features``) is kept for information only: it assumes
    samples spread like the data, and a briefly trained GAN whose samples sit in the dense,
    simple part of the data gets Z_U = -10 (pixels) and -11.5 (features) with no sample nearer to
    a training image than the closest held-out image is (reference seed 1, make_expected.py).
    A generator that returns training images has ~100% exact and near copies.
    """
    import torch

    from coursekit.metrics import evaluate_samples
    from coursekit.metrics.memorisation import _flat_rgb, data_copying_test, nearest_distances

    ds, ev = _data_and_evaluator()
    samples = torch.as_tensor(samples).long()
    train, test = ds.tensors("train")[0], ds.tensors("test")[0]
    rep = evaluate_samples(samples, ds, ev, generator=torch.Generator().manual_seed(seed))
    feat = data_copying_test(samples, train, test, ds.palette, space="features", evaluator=ev)
    rep["copying_z_features"] = feat["z_score"]
    tr = _flat_rgb(train, ds.palette)
    d_held = nearest_distances(_flat_rgb(test, ds.palette), tr).double()
    d_samp = nearest_distances(_flat_rgb(samples, ds.palette), tr).double()
    rep["near_copy_fraction"] = float((d_samp < torch.quantile(d_held, 0.01)).double().mean())
    rep["copying"] = bool(rep["exact_copy_fraction"] > COPY_SHARE or rep["near_copy_fraction"] > COPY_SHARE or copy_report(samples).copying)
    return {k: (bool(rep[k]) if k == "copying" else float(rep[k])) for k in METRIC_KEYS}


def copy_report(samples):
    """Per-sample copies of training AND held-out images, mirrored, shifted, recoloured or in half
    (``coursekit.metrics.copies``, with the thresholds ``coursekit reference`` measured on real images)."""
    from coursekit.metrics.copies import course_copies

    return course_copies(samples, course_data())


def to_palette(images, palette):
    """Generated RGB images (M, 3, H, W) in [-1, 1] -> palette indices (M, H, W) uint8: the nearest palette colour."""
    import torch

    pal = torch.as_tensor(palette).float() / 255 * 2 - 1
    pix = images.detach().cpu().float().clamp(-1, 1).permute(0, 2, 3, 1).reshape(-1, 3)
    # a chunk of pixels at a time: the distances of all 500 x 400 pixels to K colours at once are 134 MB (Gradescope: 768
    # MB for all); each pixel's nearest colour is the same either way
    nearest = torch.cat([torch.cdist(pix[i:i + 8192], pal).argmin(1) for i in range(0, len(pix), 8192)]) if len(pix) else torch.zeros(0, dtype=torch.long)
    return nearest.reshape(images.shape[0], images.shape[2], images.shape[3]).to(torch.uint8)


def graded_training(call, cfg: dict) -> dict:
    """Train with the student's (or the reference's) train_step and return what the graders judge.

    ``call(probe, **params)`` runs a probe (in the student's sandboxed worker, or in this process for
    the reference). The worker gets the training images and returns the generator's raw images for the
    grader's noise; the palette conversion, the finiteness of the losses and every metric are computed
    here. Returns {"samples" (M, H, W) uint8, "d_loss", "g_loss", "finite", "steps_done", "device", "seconds" (the worker's
    own account of its training time: for logs only)}.
    """
    import math

    import torch

    ds = course_data()
    (h, w), n = ds.image_shape, cfg["n_samples"]
    out = call("train", train=ds.tensors("train")[0].to(torch.uint8), palette=torch.as_tensor(ds.palette), **cfg)
    images = out.get("images")
    assert torch.is_tensor(images) and images.is_floating_point() and tuple(images.shape) == (n, 3, h, w), (
        f"Generator(z) for {n} noise vectors should give images of shape {(n, 3, h, w)}, got {tuple(getattr(images, 'shape', ()))}")
    d_loss = [float(v) for v in out.get("d_loss", [])]
    g_loss = [float(v) for v in out.get("g_loss", [])]
    finite = len(d_loss) == len(g_loss) == cfg["steps"] and all(math.isfinite(v) for v in d_loss + g_loss) and bool(torch.isfinite(images).all())
    return {"samples": to_palette(torch.nan_to_num(images), ds.palette), "d_loss": d_loss, "g_loss": g_loss, "finite": finite,
            "steps_done": len(d_loss), "device": out.get("device"), "seconds": float(out.get("seconds") or 0.0)}


def probes_module() -> types.ModuleType:
    from coursekit.notebook import module_from_file

    return module_from_file(HERE / "probes.py", "gan_probes")


def reference_module() -> types.ModuleType:
    """The solution notebook's definitions (train/demo/check cells left out), as a module."""
    from coursekit.notebook import solution_module

    return solution_module("gan")
