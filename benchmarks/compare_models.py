"""The three reference models side by side: PixelRNN, VAE and GAN on the same data, split and CPU time.

    python benchmarks/compare_models.py [--seconds 120] [--seeds 0 1 2] [--out coursekit/metrics/figures]

For each seed, the solution notebooks' own code (``solutions/*/``, extracted without training
and plotting cells) trains each model for the same wall-clock time on one CPU thread, on the
course data set's training split (``data/course.json``; sprites by default):

- PixelRNN: ``PixelLSTMAbove`` (hidden 128, batch 32, peak lr 0.02, the notebook's schedule);
- VAE: ``VAE`` with a 10-dimensional code (batch 64, lr 2e-3);
- GAN: ``Generator``/``Discriminator`` (z 32, width 32) with the notebook's ``train_step``, Adam 6e-4.

Printed (markdown, for ``coursekit/metrics/README.md`` and the notebooks):

1. likelihoods on the held-out split in bits per pixel: the PixelRNN's NLL and the VAE's
   negative ELBO (an upper bound on its NLL); a GAN has none. Colour frequencies alone and the
   untrained networks are given for scale. Also the FID of 500 samples against 500 training
   images, the graders' convention.
2. every sample metric (``evaluate_samples``) at n = 72 for: held-out real images, the three
   reference models, the untrained networks, a memorising model (training images) and a
   collapsed one (one image repeated). n = 72 because the held-out column can only use half the
   test split (the other half is the copying test's held-out set); every column uses the same n,
   so FID's small-sample bias is the same for all (see "How many samples each metric needs").
   Mean ± std over the seeds.

The untouched student version cannot be scored on samples: every function it asks for raises
``NotImplementedError``, so it makes none and the graders give it 0 (``tests/test_*_graders.py``).
Its closest stand-in with samples is "untrained": the reference networks before any training.

A picture, ``models_side_by_side.png``, shows 16 samples of each (seed 0) in the folder ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from coursekit import paths
from coursekit.data import course_dataset
from coursekit.metrics import colour_frequency_bpp, course_evaluator, evaluate_samples, negative_elbo_to_bpp, spread_over_seeds
from coursekit.notebook import solution_module

COLUMNS = ("held-out real", "PixelRNN", "VAE", "GAN", "untrained PixelRNN", "untrained VAE", "untrained GAN", "memorising", "collapsed")
METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "duplicate_rate", "palette_usage", "pairwise_distance_ratio",
           "copying_z", "exact_copy_fraction", "copying")
N_EVAL = 72


def train_pixelrnn(sol, ds, seconds: float, seed: int):
    K, (H, W) = ds.num_colors, ds.image_shape
    torch.manual_seed(seed)
    model = sol.PixelLSTMAbove(K, W, 128)
    if seconds > 0:
        sol.train(model, ds.sequences("train"), 10**9, batch_size=32, lr=2e-2, device="cpu",
                  generator=torch.Generator().manual_seed(seed), max_seconds=seconds, progress=False)
    model.eval()
    bpp = sol.evaluate_bpp(model, ds.sequences("test"))
    with torch.no_grad():
        samples = sol.sample(model, 500, H, W, temperature=1.0, generator=torch.Generator().manual_seed(1000 + seed))
    return bpp, samples.cpu()


def train_vae(sol, ds, seconds: float, seed: int):
    K, (H, W) = ds.num_colors, ds.image_shape
    x_train, x_test = ds.tensors("train")[0], ds.tensors("test")[0]
    torch.manual_seed(seed)
    model = sol.VAE(K, H, W, latent_dim=10)
    if seconds > 0:
        sol.train(model, x_train, 10**9, batch_size=64, lr=2e-3, device="cpu", generator=torch.Generator().manual_seed(seed),
                  max_seconds=seconds, progress=False)
    nats = sol.evaluate_negative_elbo(model, x_test, seed=seed)
    samples = sol.sample(model, 500, generator=torch.Generator().manual_seed(1000 + seed))
    return negative_elbo_to_bpp(nats, H, W), samples.cpu()


def train_gan(sol, ds, seconds: float, seed: int):
    real = ds.rgb("train") * 2 - 1  # (N, 3, H, W) in [-1, 1]
    torch.manual_seed(seed)
    G, D = sol.Generator(32, 32), sol.Discriminator(32)
    opt_g = torch.optim.Adam(G.parameters(), lr=6e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=6e-4, betas=(0.5, 0.999))
    gen, start = torch.Generator().manual_seed(seed), time.time()
    while time.time() - start < seconds:
        idx = torch.randint(0, len(real), (64,), generator=gen)
        sol.train_step(G, D, opt_g, opt_d, real[idx], generator=gen)
    with torch.no_grad():
        samples = sol.sample_images(G, 500, generator=torch.Generator().manual_seed(1000 + seed))
    return None, samples.cpu()


def run_seed(seed: int, ds, ev, sols, seconds: float, log) -> tuple[dict, dict, dict]:
    """(metrics per column at n = 72, bits per pixel and FID@500 per model, 16 samples per column)."""
    train, test = ds.tensors("train")[0], ds.tensors("test")[0]
    g = torch.Generator().manual_seed(seed)
    half = len(test) // 2
    perm = torch.randperm(len(test), generator=g)
    shown, heldout = test[perm[:N_EVAL]], test[perm[half:]]
    samples = {"held-out real": shown, "memorising": train[torch.randperm(len(train), generator=g)[:500]],
               "collapsed": train[torch.randint(0, len(train), (1,), generator=g)].expand(500, -1, -1).clone()}
    likelihood = {}
    for name, fn in (("PixelRNN", train_pixelrnn), ("VAE", train_vae), ("GAN", train_gan)):
        for trained in (True, False):
            t0 = time.time()
            bpp, s = fn(sols[name], ds, seconds if trained else 0.0, seed)
            label = name if trained else f"untrained {name}"
            samples[label] = s.long()
            fid500 = evaluate_samples(s.long(), ds, ev, generator=torch.Generator().manual_seed(seed))["fid"]
            likelihood[label] = {"bpp": bpp, "fid500": fid500, "seconds": time.time() - t0}
            log(f"seed {seed} {label}: bpp {bpp if bpp is None else round(bpp, 3)}, FID@500 {fid500:.1f} ({time.time() - t0:.0f} s)")
    metrics = {}
    for label in COLUMNS:
        metrics[label] = evaluate_samples(samples[label][:N_EVAL], ds, ev, generator=torch.Generator().manual_seed(seed), heldout=heldout)
    return metrics, likelihood, {k: v[:16] for k, v in samples.items()}


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.3g} ± {std:.2g}" if not math.isnan(mean) else "–"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="CPU training time of each model and seed (default 120)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default=str(paths.kit_root() / "coursekit" / "metrics" / "figures"), help="folder for the picture")
    args = ap.parse_args(argv)
    sols = {"PixelRNN": solution_module("pixelrnn"), "VAE": solution_module("vae"), "GAN": solution_module("gan")}
    torch.set_num_threads(1)  # after the notebooks' setup cells; one thread: the same CPU time for every model
    ds, t0 = course_dataset(), time.time()
    ev = course_evaluator(ds)
    print(f"{ds.name}: {len(ds.tensors('train')[0])} train / {len(ds.tensors('test')[0])} test images of "
          f"{ds.image_shape[0]}x{ds.image_shape[1]}, K = {ds.num_colors}; {args.seconds:.0f} s of training per model and seed "
          f"on one CPU thread; seeds {args.seeds}", flush=True)
    per_seed, lik, pictures = {}, {}, {}
    for seed in args.seeds:
        m, l, p = run_seed(seed, ds, ev, sols, args.seconds, lambda s: print(s, flush=True))
        per_seed[seed], lik[seed] = m, l
        pictures.setdefault("first", p)
    print(f"\nall seeds in {time.time() - t0:.0f} s\n")
    print(f"**Likelihoods and FID** ({len(args.seeds)} seeds, {args.seconds:.0f} s of one CPU thread each; held-out split; "
          f"colour frequencies alone: {colour_frequency_bpp(ds.tensors('train')[0], ds.tensors('test')[0], ds.num_colors):.3f} bits per pixel)\n")
    print("| model | held-out bits per pixel | FID, 500 samples vs 500 training images |")
    print("|---|---|---|")
    for label in ("PixelRNN", "VAE", "GAN", "untrained PixelRNN", "untrained VAE", "untrained GAN"):
        bpp = [lik[s][label]["bpp"] for s in args.seeds]
        fid = np.array([lik[s][label]["fid500"] for s in args.seeds])
        kind = " (negative ELBO, an upper bound)" if "VAE" in label else ""
        b = "none (no likelihood)" if bpp[0] is None else _fmt(float(np.mean(bpp)), float(np.std(bpp, ddof=1) if len(bpp) > 1 else 0)) + kind
        print(f"| {label} | {b} | {_fmt(float(fid.mean()), float(fid.std(ddof=1)) if len(fid) > 1 else 0.0)} |")
    print(f"\n**Every sample metric at n = {N_EVAL}** (mean ± std over seeds; copying: share of seeds flagged)\n")
    print("| metric | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    spreads = {c: spread_over_seeds(lambda s, c=c: per_seed[s][c], args.seeds) for c in COLUMNS}
    for key in METRICS:
        cells = [(f"{spreads[c][key][0]:.2g}" if key == "copying" else _fmt(*spreads[c][key])) for c in COLUMNS]
        print(f"| {key} | " + " | ".join(cells) + " |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from coursekit.plot import show_rows

    fig = show_rows({c: pictures["first"][c] for c in COLUMNS}, ds.palette,
                    title=f"{ds.name}, seed {args.seeds[0]}: {args.seconds:.0f} s of CPU training per model")
    fig.savefig(out / "models_side_by_side.png", dpi=110, bbox_inches="tight")
    print(f"\npicture: {out / 'models_side_by_side.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
