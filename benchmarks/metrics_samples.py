"""How many samples does each metric need, and do the metrics separate good, copying and collapsed models?

    python benchmarks/metrics_samples.py            # both parts, sprites, 5 seeds
    python benchmarks/metrics_samples.py --part n   # only the table over sample counts
    python benchmarks/metrics_samples.py --part models --figures coursekit/metrics/figures

Part "n": for each n and seed, the 1,442 sprites are split at random into two disjoint halves
R and C (721 each: a resample of the data, since the test split alone holds only 145). The
metrics compare n images of R (the real reference) with (a) n images of C, real data, and
(b) the same n images of C with 30% of their pixels replaced by random palette colours, a
degraded generator. Printed: mean ± std over the seeds.

Part "models": model stand-ins evaluated against the training split with ``evaluate_samples``
(72 samples each: half the test split, whose other half is the held-out set of the copying
test), mean ± std over seeds, and one picture grid per model.

Features come from the shipped evaluator (autograder/reference/evaluator_sprites.pt).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from coursekit.data import load_dataset
from coursekit.metrics import (
    data_copying_test,
    evaluate_samples,
    features,
    fid_from_features,
    kid_from_features,
    load_evaluator,
    prdc,
    reference_evaluator_path,
    spread_over_seeds,
)

METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")


def recolour(indices: torch.Tensor, share: float, num_colors: int, gen: torch.Generator) -> torch.Tensor:
    """Replace a random ``share`` of the pixels of (N, H, W) by random palette colours."""
    mask = torch.rand(indices.shape, generator=gen) < share
    noise = torch.randint(0, num_colors, indices.shape, generator=gen)
    return torch.where(mask, noise, indices)


def blend(a: torch.Tensor, b: torch.Tensor, palette: np.ndarray) -> torch.Tensor:
    """Average two palette images (N, H, W) in RGB and map each pixel back to the nearest colour."""
    pal = torch.as_tensor(palette, dtype=torch.float32)  # (K, 3)
    rgb = (pal[a] + pal[b]) / 2  # (N, H, W, 3)
    return torch.cdist(rgb.reshape(-1, 3), pal).argmin(1).reshape(a.shape)


def part_n(ds, ev, seeds, ns, out=print):
    x = torch.from_numpy(ds.indices.astype(np.int64))  # (1442, 20, 20)
    f_all = features(ev, x, ds.palette)  # (1442, D)
    half = len(x) // 2
    ns = [n for n in ns if n <= half] + ([half] if half not in ns else [])
    rows = {}
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(x), generator=g)
        r_idx, c_idx = perm[:half], perm[half:2 * half]
        f_deg = features(ev, recolour(x[c_idx], 0.3, ds.num_colors, g), ds.palette)  # (half, D)
        for n in ns:
            fr = f_all[r_idx[:n]]
            for kind, ff in (("real", f_all[c_idx[:n]]), ("degraded 30%", f_deg[:n])):
                m = {"fid": fid_from_features(fr, ff), "kid": kid_from_features(fr, ff, generator=g)[0]}
                m.update(prdc(fr, ff, k=5))
                rows.setdefault((n, kind), []).append(m)
    out(f"\nmean ± std over {len(seeds)} seeds; n real reference images vs n samples (sprites, D={ev.num_features})\n")
    out("| n | samples | " + " | ".join(METRICS) + " |")
    out("|---|---|" + "---|" * len(METRICS))
    for (n, kind), runs in rows.items():
        cells = []
        for key in METRICS:
            v = np.array([r[key] for r in runs])
            cells.append(f"{v.mean():.3g} ± {v.std(ddof=1):.2g}")
        out(f"| {n} | {kind} | " + " | ".join(cells) + " |")
    return rows


def models(ds, gen: torch.Generator, m: int):
    """{name: (samples (m, H, W), heldout (T, H, W))} for the model stand-ins, drawn with ``gen``."""
    train, _ = ds.tensors("train")
    test, _ = ds.tensors("test")
    p = torch.randperm(len(test), generator=gen)
    test_a, test_b = test[p[:m]], test[p[m:]]
    pick = lambda: train[torch.randperm(len(train), generator=gen)[:m]]  # noqa: E731
    one = train[torch.randint(0, len(train), (1,), generator=gen)]
    return {
        "held-out real": (test_a, test_b),
        "memorising (training images)": (pick(), test_b),
        "perturbed copies (3% recoloured)": (recolour(pick(), 0.03, ds.num_colors, gen), test_b),
        "collapsed (one image repeated)": (one.repeat(m, 1, 1), test_b),
        "degraded real (30% recoloured)": (recolour(test_a, 0.3, ds.num_colors, gen), test_b),
        "blend of two training images": (blend(pick(), pick(), ds.palette), test_b),
    }


REPORT = ("fid", "kid", "precision", "recall", "density", "coverage", "duplicate_rate", "palette_usage",
          "pairwise_distance_ratio", "copying_z", "copying_z_features", "exact_copy_fraction", "copying")


def part_models(ds, ev, seeds, figures=None, out=print):
    m = len(ds.split_indices("test")) // 2
    names = list(models(ds, torch.Generator().manual_seed(0), m))
    table = {}
    for name in names:
        def run(seed, name=name):
            g = torch.Generator().manual_seed(seed)
            samples, heldout = models(ds, g, m)[name]
            r = evaluate_samples(samples, ds, ev, generator=g, heldout=heldout)
            train, _ = ds.tensors("train")
            r["copying_z_features"] = data_copying_test(samples, train, heldout, ds.palette, space="features", evaluator=ev)["z_score"]
            return r
        table[name] = spread_over_seeds(run, seeds)
        if figures:
            from pathlib import Path

            from coursekit.plot import save_grid

            samples, _ = models(ds, torch.Generator().manual_seed(seeds[0]), m)[name]
            slug = name.split(" (")[0].replace(" ", "_").replace("-", "_")
            Path(figures).mkdir(parents=True, exist_ok=True)
            save_grid(samples[:36], ds.palette, Path(figures) / f"{slug}.png", ncols=12, title=name)
    out(f"\n{m} samples per model vs the {len(ds.split_indices('train'))} training images; mean ± std over {len(seeds)} seeds\n")
    out("| metric | " + " | ".join(names) + " |")
    out("|---|" + "---|" * len(names))
    for key in REPORT:
        out(f"| {key} | " + " | ".join(f"{table[n][key][0]:.3g} ± {table[n][key][1]:.2g}" for n in names) + " |")
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["n", "models", "both"], default="both")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--ns", type=int, nargs="*", default=[100, 250, 500])
    ap.add_argument("--figures", default=None, help="folder for one PNG grid per model")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # small ops: one thread is faster, far faster on a busy machine
    ds = load_dataset("sprites")
    ev = load_evaluator(reference_evaluator_path("sprites"))
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    if args.part in ("n", "both"):
        part_n(ds, ev, seeds, args.ns)
    if args.part in ("models", "both"):
        part_models(ds, ev, seeds, args.figures)
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
