"""Train and save the reference evaluators the sample-quality metrics use (deterministic, seeded).

    python autograder/reference/make_evaluators.py [--seed 0] [sprites digits]

writes autograder/reference/evaluator_<name>.pt next to this script (a few hundred kB each)
and prints each one's held-out accuracy and training time. The shipped files were made with
the defaults (seed 0, one thread) on torch 2.13 CPU; the same command reproduces the same weights
on the same torch build.
"""

import argparse

import torch

from coursekit.metrics.evaluator import build_reference_evaluator, reference_evaluator_path
from coursekit.reference import describe_evaluator


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=["sprites", "digits"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: the net is small, and extra threads only wait on a busy machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.names:
        r = build_reference_evaluator(name, reference_evaluator_path(name), seed=args.seed, progress=args.progress)
        print(f"{name}: {describe_evaluator(r)}, trained in {r['train_seconds']:.1f} s, {r['bytes'] / 1024:.0f} kB -> {r['path']}")


if __name__ == "__main__":
    main()
