"""Benchmark of assignment 2: the reference VAE's held-out negative ELBO (bits per pixel) and sample metrics.

The code is the solution notebook's own (``solutions/vae/vae.ipynb``, extracted without its
training and plotting cells). For each seed: train the VAE (10-dimensional code) on the course data set's (``data/course.json``; sprites by default)
training split, print the held-out negative ELBO in bits per pixel (an upper bound on its NLL;
same split and units as the PixelRNN's held-out NLL) and the metrics of 500 samples
(``coursekit.metrics.evaluate_samples``), with the device and times; then mean ± std over seeds.

    python benchmarks/vae_reference.py [--steps 1200] [--seconds S] [--seeds 0 1 2] [--device cpu|cuda] [--pixelrnn]

--pixelrnn (the PixelRNN comparison): when ``solutions/pixelrnn/pixelrnn.ipynb`` exists, also
train its PixelLSTMAbove for the same wall-clock time as the VAE (per seed) and print its held-out
bits per pixel beside the VAE's.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from coursekit import paths
from coursekit.data import course_dataset
from coursekit.metrics import course_evaluator, evaluate_samples, format_spread, negative_elbo_to_bpp
from coursekit.notebook import solution_module

METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "duplicate_rate", "palette_usage", "copying_z", "exact_copy_fraction", "copying")


def pixelrnn_bpp(seconds: float, seed: int, device: torch.device) -> float | None:
    """--- PixelRNN comparison --- held-out bpp of the PixelRNN solution's PixelLSTMAbove after ``seconds`` of training."""
    path = paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb"
    if not path.is_file():
        return None
    sol = solution_module("pixelrnn")
    data = course_dataset()
    W = data.image_shape[1]
    torch.manual_seed(seed)
    model = sol.PixelLSTMAbove(data.num_colors, W, 128).to(device)
    sol.train(model, data.sequences("train"), 10**9, device=device, generator=torch.Generator().manual_seed(seed), max_seconds=seconds, progress=False)
    return float(sol.evaluate_bpp(model, data.sequences("test")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1200, help="training steps of each VAE (default 1200, the notebook's CPU setting)")
    ap.add_argument("--seconds", type=float, default=None, help="or a time cap per run, in seconds")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--latent", type=int, default=10)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--pixelrnn", action="store_true", help="also train the PixelRNN solution's PixelLSTMAbove for the same time")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sol = solution_module("vae")
    data = course_dataset()
    K, (H, W) = data.num_colors, data.image_shape
    x_train, _ = data.tensors("train")
    x_test, _ = data.tensors("test")
    evaluator = course_evaluator(data)
    print(f"{data.name}: {len(x_train)} train / {len(x_test)} test images of {H}x{W}, K={K}; device {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), torch threads {torch.get_num_threads()}; "
          f"VAE latent {args.latent}, {args.steps} steps" + (f", at most {args.seconds:.0f} s" if args.seconds else ""), flush=True)
    runs = {}
    for seed in args.seeds:
        torch.manual_seed(seed)
        model = sol.VAE(K, H, W, args.latent).to(device)
        start = time.time()
        hist = sol.train(model, x_train, args.steps, device=device, generator=torch.Generator().manual_seed(seed),
                         max_seconds=args.seconds, progress=False)
        seconds = time.time() - start
        bpp = negative_elbo_to_bpp(sol.evaluate_negative_elbo(model, x_test, seed=seed), H, W)
        samples = sol.sample(model, args.samples, generator=torch.Generator().manual_seed(1000 + seed)).cpu()
        t0 = time.time()
        rep = evaluate_samples(samples, data, evaluator, generator=torch.Generator().manual_seed(0))
        row = {"heldout_bpp": bpp, **{k: rep[k] for k in METRICS}, "train_seconds": seconds}
        line = f"seed {seed}: VAE held-out negative ELBO {bpp:.3f} bits per pixel ({len(hist['loss'])} steps, {seconds:.0f} s on {device}); "
        line += ", ".join(f"{k} {rep[k]:.3f}" if not isinstance(rep[k], bool) else f"{k} {rep[k]}" for k in METRICS)
        line += f" (metrics {time.time() - t0:.0f} s)"
        if args.pixelrnn:  # --- PixelRNN comparison: the same training time ---
            p = pixelrnn_bpp(seconds, seed, device)
            row["pixelrnn_bpp"] = p if p is not None else float("nan")
            line += "\n         PixelLSTMAbove, same time: " + (f"held-out {p:.3f} bits per pixel" if p is not None else "not available (no solutions/pixelrnn)")
        runs[seed] = row
        print(line, flush=True)
    spread = {k: (sum(float(r[k]) for r in runs.values()) / len(runs),
                  (sum((float(r[k]) - sum(float(q[k]) for q in runs.values()) / len(runs)) ** 2 for r in runs.values()) / max(1, len(runs) - 1)) ** 0.5)
              for k in next(iter(runs.values()))}
    print(f"\nmean ± std over seeds {args.seeds} (uniform over K colours: {math.log2(K):.2f} bits per pixel):")
    print(format_spread(spread))
    return 0


if __name__ == "__main__":
    sys.exit(main())
