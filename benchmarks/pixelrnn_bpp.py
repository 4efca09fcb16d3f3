"""Benchmark of assignment 1: held-out bits per pixel of PixelLSTM and PixelLSTMAbove, mean ± std over seeds.

The code is the solution notebook's own (``solutions/pixelrnn/pixelrnn.ipynb``, without its training and plotting
cells), and so is the recipe: a tenth of the training split set aside for validation, ``train(..., val=)`` keeping the
weights best on it, dropout and weight decay, the same training time for both models (``SECONDS``). Two figures
compare the recipe with what a careful practitioner would try first:

- PixelLSTMAbove (pixels above and above-right, and where the pixel is) must be at least 12% below PixelLSTM on
  held-out bits per pixel, both trained with the recipe for the same time;
- it must be no worse than a plain PixelLSTM of hidden 256 without regularisation, trained for longer
  (``--baseline-seconds``) and kept at its best epoch on validation.

Budgets are CPU seconds of the training process (``--clock cpu``, the default): on a loaded machine the figures stay
those of an idle one, and runs can go side by side (``--jobs``). ``--clock wall`` is the notebook's own clock.
``--course-subset 792`` measures on the first 792 sprites written in the course's text format (no labels, a held-out
split of about 80, as the lecture's Pokémon); the default is the course data set (``data/course.json``).

    python benchmarks/pixelrnn_bpp.py --course-subset 792 [--seeds 0 1 2] [--seconds 200] [--baseline-seconds 600] [--jobs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import types
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

TARGET_GAIN = 0.12  # PixelLSTMAbove at least 12% below PixelLSTM


def course_subset(n: int, folder: Path) -> Path:
    """The first ``n`` sprites in the course's text format (pixel_color.txt, colormap.txt), in ``folder``."""
    from coursekit.data import load_dataset
    from coursekit.data.dataset import PaletteDataset
    from coursekit.data.files import write_course_files

    sprites = load_dataset("sprites")
    if n > len(sprites):
        raise SystemExit(f"--course-subset {n}: the sprites have only {len(sprites)} images")
    write_course_files(PaletteDataset(f"course{n}", sprites.indices[:n], sprites.palette), folder)
    return folder


def run_one(job: dict) -> dict:
    """Train one model with one seed (in its own process) and score it: {"bpp", "steps", "best_step", ...}."""
    import torch

    from coursekit.data import course_dataset, load_dataset
    from coursekit.notebook import solution_module

    sol = solution_module("pixelrnn")
    torch.set_num_threads(job["threads"])  # after the notebook's setup cell, which sets its own
    if job["clock"] == "cpu":  # train()'s time budget counts this process's CPU seconds
        sol.time = types.SimpleNamespace(time=time.process_time)
    data = load_dataset(job["dataset"]) if job["dataset"] else course_dataset()
    K, (H, W) = data.num_colors, data.image_shape
    train_all, test_seq = data.sequences("train"), data.sequences("test")
    perm = torch.randperm(len(train_all), generator=torch.Generator().manual_seed(0))  # the notebook's split
    n_val = max(1, len(train_all) // 10)
    val_seq, train_seq = train_all[perm[:n_val]], train_all[perm[n_val:]]
    torch.manual_seed(job["seed"])
    if job["model"] == "PixelLSTMAbove":
        model = sol.PixelLSTMAbove(K, W, job["hidden"], height=H, dropout=job["dropout"])
    else:
        model = sol.PixelLSTM(K, job["hidden"], dropout=job["dropout"])
    eval_every = job["eval_every"] or -(-len(train_seq) // job["batch_size"])  # 0: once per epoch
    log: list = []
    start = time.process_time()
    hist = sol.train(model, train_seq, 10**9, batch_size=job["batch_size"], lr=job["lr"], device=torch.device("cpu"),
                     generator=torch.Generator().manual_seed(job["seed"]), max_seconds=job["seconds"], progress=False,
                     weight_decay=job["weight_decay"], val=val_seq, eval_every=eval_every, val_log=log)
    best_step, best_val = min(log, key=lambda p: p[1])
    return dict(job, bpp=sol.evaluate_bpp(model, test_seq), train_bpp=sol.evaluate_bpp(model, train_seq[:256]), steps=len(hist),
                best_step=best_step, best_val=best_val, cpu=time.process_time() - start,
                sizes=(len(train_seq), len(val_seq), len(test_seq)))


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--course-subset", type=int, default=0, help="the first N sprites in the course's format (default: the course data set)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=200.0, help="training time of each recipe model (default 200, as in the notebook)")
    ap.add_argument("--baseline-seconds", type=float, default=600.0, help="training time of the hidden-256 baseline (default 600)")
    ap.add_argument("--hidden", type=int, default=128, help="LSTM size of the recipe's models (default 128)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-2, help="peak learning rate (default 0.02)")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--eval-every", type=int, default=50, help="steps between validation checks (default 50)")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (default 1, as in the notebook)")
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side (with --clock cpu the figures do not change)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the hidden-256 baseline")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="pixelrnn-bench-") as tmp:
        dataset = str(course_subset(args.course_subset, Path(tmp) / f"course{args.course_subset}")) if args.course_subset else ""
        common = dict(dataset=dataset, batch_size=args.batch_size, lr=args.lr, clock=args.clock, threads=args.threads)
        recipe = dict(common, hidden=args.hidden, dropout=args.dropout, weight_decay=args.weight_decay, eval_every=args.eval_every,
                      seconds=args.seconds)
        jobs = [dict(recipe, model=m, seed=s) for s in args.seeds for m in ("PixelLSTM", "PixelLSTMAbove")]
        if not args.no_baseline:  # plain, hidden 256, no regularisation, best epoch on validation
            jobs += [dict(common, model="PixelLSTM", name="PixelLSTM-256", hidden=256, dropout=0.0, weight_decay=0.0, eval_every=0,
                          seconds=args.baseline_seconds, seed=s) for s in args.seeds]
        print(f"{len(jobs)} runs ({args.jobs} at a time), {args.clock} clock, {args.threads} torch thread(s) each; "
              f"recipe: hidden {args.hidden}, {args.seconds:.0f} s, batch {args.batch_size}, peak lr {args.lr}, dropout {args.dropout}, "
              f"weight decay {args.weight_decay}, validation every {args.eval_every} steps", flush=True)
        results: dict[str, list[dict]] = {}
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
            for r in pool.map(run_one, jobs):
                name = r.get("name", r["model"])
                results.setdefault(name, []).append(r)
                n_tr, n_val, n_te = r["sizes"]
                print(f"  {name:15s} seed {r['seed']}: held-out {r['bpp']:.3f} bits per pixel (training images {r['train_bpp']:.3f}); "
                      f"{r['steps']} steps, best on validation after step {r['best_step']} ({r['best_val']:.3f}); "
                      f"{r['cpu']:.0f} CPU s; {n_tr} train / {n_val} validation / {n_te} held-out images", flush=True)
    bpp = {name: [r["bpp"] for r in rs] for name, rs in results.items()}
    print("held-out bits per pixel, mean ± std over seeds " + ", ".join(map(str, args.seeds)) + ":")
    for name, values in bpp.items():
        print(f"  {name:15s} {mean_std(values)}")
    plain, above = statistics.mean(bpp["PixelLSTM"]), statistics.mean(bpp["PixelLSTMAbove"])
    gain = (plain - above) / plain
    ok = gain >= TARGET_GAIN
    print(f"PixelLSTMAbove vs PixelLSTM, same training time: {100 * gain:.1f}% lower "
          f"({'OK' if ok else 'FAIL'}: must be at least {100 * TARGET_GAIN:.0f}%)")
    if "PixelLSTM-256" in bpp:
        base = statistics.mean(bpp["PixelLSTM-256"])
        ok_base = above <= base
        ok = ok and ok_base
        print(f"PixelLSTMAbove {above:.3f} vs plain hidden-256 LSTM at its best epoch {base:.3f} "
              f"({'OK' if ok_base else 'FAIL'}: must be no worse)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
