"""The reference GAN's sample metrics across seeds, with device and time, and a picture of its samples.

    .venv/bin/python benchmarks/gan_reference.py [--seeds 0 1 2] [--steps N] [--figure PATH] [--threads 1]

Trains the solution notebook's Generator/Discriminator with its train_step on the graders'
budget (autograder/gan/profiles.json, smoke) through the graders' own training probe, then
scores 500 samples per seed exactly as the graders do (500 random training images as the
reference, the copying test against the test split). Prints one row per seed, mean +- std, the
untrained generator as a baseline, and the thresholds of autograder/gan/expected.json.
The figure shows 48 samples of the first seed next to 48 training images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "autograder" / "gan"))

import gan_common  # noqa: E402

SHOW = ("fid", "kid", "precision", "recall", "density", "coverage", "duplicate_rate", "pairwise_distance_ratio", "copying_z",
        "exact_copy_fraction", "near_copy_fraction")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the graders' smoke budget)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--figure", default="gan_reference_samples.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = dict(json.loads((ROOT / "autograder" / "gan" / "profiles.json").read_text())["smoke"]["train"])
    if args.steps is not None:
        cfg["steps"] = args.steps
    cfg["device"] = args.device
    dev = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"device: {name}; torch {torch.__version__}; budget: {cfg}")
    ref, probes = gan_common.reference_module(), gan_common.probes_module()

    rows, first = [], None
    for s in args.seeds:
        t0 = time.time()
        res = gan_common.graded_training(lambda name, **p: getattr(probes, "probe_" + name)(ref, **p), {**cfg, "seed": s})
        m = gan_common.sample_metrics(res["samples"])
        rows.append(m)
        first = res["samples"] if first is None else first
        print(f"seed {s}: train {res['seconds']:.1f} s, total {time.time() - t0:.1f} s | "
              + " ".join(f"{k}={m[k]:.3f}" for k in SHOW) + f" copying={m['copying']}", flush=True)
    print(f"\n| metric | mean ± std over {len(rows)} seeds |\n| --- | --- |")
    for k in SHOW:
        v = np.array([r[k] for r in rows], dtype=float)
        print(f"| {k} | {v.mean():.3g} ± {v.std(ddof=1) if len(v) > 1 else 0:.2g} |")
    base = gan_common.sample_metrics(gan_common.graded_training(lambda name, **p: getattr(probes, "probe_" + name)(ref, **p), {**cfg, "steps": 0})["samples"])
    print("untrained generator: " + " ".join(f"{k}={base[k]:.3f}" for k in SHOW))
    if gan_common.EXPECTED_PATH.is_file():
        print("graders' thresholds:", {k: round(v, 3) for k, v in gan_common.load_expected()["training"]["thresholds"].items()})

    from coursekit.plot import grid_image
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = gan_common.course_data()
    real, _ = ds.tensors("test")
    panels = [("GAN (reference, seed %d, %d steps)" % (args.seeds[0], cfg["steps"]), first[:48].long()), ("held-out real", real[:48])]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.2))
    for ax, (title, imgs) in zip(np.atleast_1d(axes), panels):
        ax.imshow(grid_image(imgs, ds.palette, ncols=12))
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.figure, dpi=120)
    print("saved", args.figure)


if __name__ == "__main__":
    main()
