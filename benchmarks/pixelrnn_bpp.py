"""Benchmark of assignment 1: held-out bits per pixel of PixelLSTM and PixelLSTMAbove on the course data set.

Both models have the same LSTM size and get the same training time (``train(..., max_seconds=)``:
the learning-rate schedule follows the time budget); the model that also sees the pixel above
(and where it is) must be at least 10% lower. The code is the solution notebook's own
(``solutions/pixelrnn/pixelrnn.ipynb``, extracted without its training and plotting cells), and
the defaults are the notebook's: 200 s per model, hidden 128, batch 32, peak learning rate 0.02.
Results depend on the machine's speed (steps per second): the device, threads and steps are printed.

    python benchmarks/pixelrnn_bpp.py [--seconds 200] [--hidden 128] [--threads 1] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from coursekit.data import course_dataset
from coursekit.notebook import solution_module


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=200.0, help="training time of each model (default 200, as in the notebook)")
    ap.add_argument("--hidden", type=int, default=128, help="LSTM size of both models (default 128)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-2, help="peak learning rate (default 0.02)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as in the notebook)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    sol = solution_module("pixelrnn")
    torch.set_num_threads(args.threads)  # after the notebook's setup cell, which sets its own
    data = course_dataset()
    K, (H, W) = data.num_colors, data.image_shape
    train_seq, test_seq = data.sequences("train"), data.sequences("test")
    print(f"{data.name}: {len(train_seq)} train / {len(test_seq)} test images of {H}x{W}, K={K}; device {device}; "
          f"{args.seconds:.0f} s of training each, hidden {args.hidden}, batch {args.batch_size}, peak lr {args.lr}, "
          f"torch threads {torch.get_num_threads()}")
    results = {}
    for name, make in [("PixelLSTM", lambda: sol.PixelLSTM(K, args.hidden)), ("PixelLSTMAbove", lambda: sol.PixelLSTMAbove(K, W, args.hidden))]:
        torch.manual_seed(args.seed)
        model = make().to(device)
        start = time.time()
        hist = sol.train(model, train_seq, 10**9, batch_size=args.batch_size, lr=args.lr, device=device,
                         generator=torch.Generator().manual_seed(args.seed), max_seconds=args.seconds, progress=False)
        seconds = time.time() - start
        bpp = sol.evaluate_bpp(model, test_seq)
        results[name] = bpp
        print(f"{name:15s} held-out {bpp:.3f} bits per pixel  ({len(hist)} steps, {seconds:.0f} s training on {device})", flush=True)
    print(f"held-out bits per pixel: PixelLSTM {results['PixelLSTM']:.3f}, PixelLSTMAbove {results['PixelLSTMAbove']:.3f}")
    plain, above = results["PixelLSTM"], results["PixelLSTMAbove"]
    gain = (plain - above) / plain
    ok = gain >= 0.10
    print(f"improvement of PixelLSTMAbove over PixelLSTM: {100 * gain:.1f}% ({'OK' if ok else 'FAIL'}: must be at least 10%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
