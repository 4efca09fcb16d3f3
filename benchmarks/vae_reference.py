"""Benchmark of assignment 2: the reference VAE's held-out negative ELBO (bits per pixel) and sample metrics.

The code is the solution notebook's own (``solutions/vae/vae.ipynb``, extracted without its
training and plotting cells). For each recipe and seed: train the VAE (10-dimensional code) on the course data set's
(``data/course.json``; sprites by default) training split, print the held-out negative ELBO in bits per pixel (an upper
bound on its NLL; same split and units as the PixelRNN's held-out NLL), the same figure on training images (the gap
between the two is overfitting) and the metrics of 500 samples (``coursekit.metrics.evaluate_samples``), with the
device and times; then mean ± std over seeds, per recipe.

    python benchmarks/vae_reference.py [--recipe validated fixed] [--subset 792] [--seeds 0 1 2] [--threads 1]
                                       [--epochs 80] [--steps N] [--seconds S] [--device cpu|cuda] [--no-metrics] [--pixelrnn]

Recipes:
  validated  the notebook's (its train cell): 10% of the training split set aside for validation, --epochs passes over
             the rest (the steps follow the data size), the negative ELBO of the validation images every 25 steps
             and the weights best on them kept (the notebook's ``validation_split`` and ``KeepBest``);
  fixed      the earlier recipe: --steps (default 1200) steps on the whole training split, the last weights kept.

--subset N: the first N images of the course data set, written in the course's own text format (no labels) to a
temporary folder, so that the held-out split is as small as the lecture's 792 Pokémon (80 images); the sample metrics
are then left out (no evaluator is trained for such a subset).

--pixelrnn (the PixelRNN comparison): when ``solutions/pixelrnn/pixelrnn.ipynb`` exists, also
train its PixelLSTMAbove for the same wall-clock time as the VAE (per seed) and print its held-out
bits per pixel beside the VAE's.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time

import torch

from coursekit import paths
from coursekit.data import course_dataset
from coursekit.metrics import course_evaluator, evaluate_samples, format_spread, negative_elbo_to_bpp
from coursekit.notebook import solution_module

METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "duplicate_rate", "palette_usage", "copying_z", "exact_copy_fraction", "copying")
RECIPES = ("validated", "fixed")
# the notebook's train cell: BATCH, VAL_FRACTION, EVAL_EVERY (EPOCHS is --epochs)
BATCH, VAL_FRACTION, EVAL_EVERY = 64, 0.1, 25
FIXED_STEPS = 1200  # the earlier recipe's CPU setting


def subset_dataset(data, n: int, folder):
    """The first ``n`` images of ``data`` in the course's text format (no labels), loaded back from ``folder``."""
    from coursekit.data import load_dataset
    from coursekit.data.dataset import PaletteDataset
    from coursekit.data.files import write_course_files

    if not 0 < n <= len(data):
        raise SystemExit(f"--subset {n}: the course data set {data.name!r} has {len(data)} images")
    write_course_files(PaletteDataset(f"{data.name}{n}", data.indices[:n], data.palette), folder)
    return load_dataset(str(folder))


def pixelrnn_bpp(seconds: float, seed: int, device: torch.device, data) -> float | None:
    """--- PixelRNN comparison --- held-out bpp of the PixelRNN solution's PixelLSTMAbove after ``seconds`` of training."""
    path = paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb"
    if not path.is_file():
        return None
    sol = solution_module("pixelrnn")
    W = data.image_shape[1]
    torch.manual_seed(seed)
    model = sol.PixelLSTMAbove(data.num_colors, W, 128).to(device)
    sol.train(model, data.sequences("train"), 10**9, device=device, generator=torch.Generator().manual_seed(seed), max_seconds=seconds, progress=False)
    return float(sol.evaluate_bpp(model, data.sequences("test")))


def train_vae(sol, recipe: str, x_train, K, H, W, args, seed: int, device):
    """One VAE trained with ``recipe``; returns (model, steps taken, training images it was fitted on, kept step or None)."""
    torch.manual_seed(seed)
    model = sol.VAE(K, H, W, args.latent).to(device)
    gen = torch.Generator().manual_seed(seed)
    if recipe == "fixed":
        hist = sol.train(model, x_train, args.steps or FIXED_STEPS, batch_size=BATCH, device=device, generator=gen,
                         max_seconds=args.seconds, progress=False)
        return model, len(hist["loss"]), x_train, None
    fit, val = sol.validation_split(len(x_train), VAL_FRACTION)
    x_fit, x_val = x_train[fit], x_train[val]
    steps = args.steps or math.ceil(args.epochs * len(x_fit) / BATCH)
    with sol.KeepBest(model, x_val, x_fit, every=EVAL_EVERY) as best:
        hist = sol.train(model, x_fit, steps, batch_size=BATCH, device=device, generator=gen, max_seconds=args.seconds, progress=False)
    return model, len(hist["loss"]), x_fit, best.best_step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", nargs="+", choices=RECIPES, default=["validated"],
                    help="training recipe(s): validated (the notebook's, default) and/or fixed (the earlier 1200 steps)")
    ap.add_argument("--epochs", type=float, default=80, help="validated recipe: passes over the training images (default 80, the notebook's)")
    ap.add_argument("--steps", type=int, default=None, help=f"training steps of each VAE instead (fixed recipe: default {FIXED_STEPS})")
    ap.add_argument("--seconds", type=float, default=None, help="or a time cap per run, in seconds")
    ap.add_argument("--subset", type=int, default=None, metavar="N",
                    help="the first N images of the course data set in the course's text format, without labels (792: as many as the lecture's Pokémon)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--latent", type=int, default=10)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--no-metrics", action="store_true", help="leave out the sample metrics (held-out and training bits per pixel only)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--pixelrnn", action="store_true", help="also train the PixelRNN solution's PixelLSTMAbove for the same time")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="vae-bench-") as tmp:
        data = course_dataset()
        if args.subset:
            data = subset_dataset(data, args.subset, f"{tmp}/{data.name}{args.subset}")
        return run(args, data)


def run(args, data) -> int:
    device = torch.device(args.device)
    sol = solution_module("vae")
    K, (H, W) = data.num_colors, data.image_shape
    x_train, _ = data.tensors("train")
    x_test, _ = data.tensors("test")
    metrics = not args.no_metrics and not args.subset
    evaluator = course_evaluator(data) if metrics else None
    print(f"{data.name}: {len(x_train)} train / {len(x_test)} test images of {H}x{W}, K={K}; device {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), torch threads {torch.get_num_threads()}; "
          f"VAE latent {args.latent}" + (f", at most {args.seconds:.0f} s" if args.seconds else "")
          + ("" if metrics else "; no sample metrics" + (" (no evaluator for a subset)" if args.subset else "")), flush=True)
    for recipe in args.recipe:
        runs = {}
        for seed in args.seeds:
            start = time.time()
            model, steps, fitted, kept = train_vae(sol, recipe, x_train, K, H, W, args, seed, device)
            seconds = time.time() - start
            bpp = negative_elbo_to_bpp(sol.evaluate_negative_elbo(model, x_test, seed=seed), H, W)
            train_bpp = negative_elbo_to_bpp(sol.evaluate_negative_elbo(model, fitted, seed=seed), H, W)  # all its training images
            row = {"heldout_bpp": bpp, "train_bpp": train_bpp}
            line = (f"{recipe} seed {seed}: VAE held-out negative ELBO {bpp:.3f} bits per pixel, training images {train_bpp:.3f} "
                    f"({steps} steps on {len(fitted)} images" + (f", weights of step {kept} kept" if kept is not None else "")
                    + f", {seconds:.0f} s on {device})")
            if metrics:
                samples = sol.sample(model, args.samples, generator=torch.Generator().manual_seed(1000 + seed)).cpu()
                t0 = time.time()
                rep = evaluate_samples(samples, data, evaluator, generator=torch.Generator().manual_seed(0))
                row.update({k: rep[k] for k in METRICS})
                line += "; " + ", ".join(f"{k} {rep[k]:.3f}" if not isinstance(rep[k], bool) else f"{k} {rep[k]}" for k in METRICS)
                line += f" (metrics {time.time() - t0:.0f} s)"
            row["train_seconds"] = seconds
            if args.pixelrnn:  # --- PixelRNN comparison: the same training time ---
                p = pixelrnn_bpp(seconds, seed, device, data)
                row["pixelrnn_bpp"] = p if p is not None else float("nan")
                line += "\n         PixelLSTMAbove, same time: " + (f"held-out {p:.3f} bits per pixel" if p is not None else "not available (no solutions/pixelrnn)")
            runs[seed] = row
            print(line, flush=True)
        spread = {k: (sum(float(r[k]) for r in runs.values()) / len(runs),
                      (sum((float(r[k]) - sum(float(q[k]) for q in runs.values()) / len(runs)) ** 2 for r in runs.values()) / max(1, len(runs) - 1)) ** 0.5)
                  for k in next(iter(runs.values()))}
        print(f"\n{recipe} recipe: mean ± std over seeds {args.seeds} (uniform over K colours: {math.log2(K):.2f} bits per pixel):")
        print(format_spread(spread), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
