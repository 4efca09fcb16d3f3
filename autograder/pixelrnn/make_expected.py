"""Expected values and thresholds of assignment 1, measured on the reference solution.

Run by ``coursekit reference --assignment pixelrnn`` (or directly: ``python
autograder/pixelrnn/make_expected.py [--profile smoke]``). The reference is the solution
notebook's own code, extracted as the engine extracts a student's, and measured with the
graders' own probes, so nothing is written twice. What it stores in ``expected.json``:

- ``loss``: fixed, seeded inputs and the reference's ``nll_nats`` and ``bits_per_pixel`` on them;
- ``training[profile]``: the profile's training budget, the held-out bits per pixel of the
  reference trained with each of ``REFERENCE_SEEDS``, and the threshold a submission must reach:
  ``mean + max(3 * std, 5% of mean)``, rounded up to 0.001 (the rule is stored beside it), with
  the bits per pixel of colour frequencies alone (a model that ignores every pixel) for scale.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import types
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pixelrnn_common as common  # noqa: E402

REFERENCE_SEEDS = [0, 1, 2, 3, 4]
GRADED_SEED = 0  # the seed the graders train a submission with


def reference_module() -> types.ModuleType:
    """The solution notebook's code (answer and helper cells; training and plots left out) as a module."""
    from coursekit.notebook import solution_module

    return solution_module("pixelrnn")


def loss_case() -> dict:
    g = torch.Generator().manual_seed(0)
    logits = torch.round(torch.randn(2, 6, 5, generator=g) * 3, decimals=4)  # (B, T, K)
    target = torch.randint(0, 5, (2, 6), generator=g)  # (B, T)
    return {"logits": logits.tolist(), "target": target.tolist()}


COPY_SAMPLE_SEED = 4  # the sample seed of test_samples_not_copies


def reference_run(ref, probes, config: dict, seed: int, ds) -> dict:
    """Train the reference as the graders train a submission (same probes, same data): weights and held-out bits per pixel."""
    train, test, k, h, w = common.grading_data(config, ds)
    train, val = common.validation_split(train, config)
    out = probes.probe_train(ref, config, seed, train=train.to(torch.uint8), k=k, w=w, val=None if val is None else val.to(torch.uint8))
    logits = probes.probe_logits(ref, config, k=k, w=w, state=out["state"], x=test)["logits"]
    return {"state": out["state"], "bpp": common.bits_per_pixel(logits, test), "k": k, "h": h, "w": w}


def training_thresholds(ref, probes, config: dict, n_samples: int, log=print) -> dict:
    from coursekit.data import course_dataset
    from coursekit.metrics import colour_frequency_bpp, data_copying_test

    ds = course_dataset()
    train_img, test_img = ds.tensors("train")[0], ds.tensors("test")[0]
    runs, z_runs = {}, {}
    for seed in REFERENCE_SEEDS:
        t0 = time.time()
        run = reference_run(ref, probes, config, seed, ds)
        if seed == GRADED_SEED and config == _LAST.get("config"):
            _LAST["run"] = run  # the pictures show the first profile's graded run
        runs[str(seed)] = round(run["bpp"], 4)
        s = probes.probe_sample(ref, config, k=run["k"], w=run["w"], h=run["h"], state=run["state"], n=n_samples, temperature=1.0,
                                sample_seed=COPY_SAMPLE_SEED)["samples"]
        z_runs[str(seed)] = round(float(data_copying_test(s, train_img, test_img, ds.palette)["z_score"]), 3)
        log(f"  reference seed {seed}: {runs[str(seed)]:.4f} bits per pixel, copying Z_U {z_runs[str(seed)]} ({time.time() - t0:.1f} s)")
    z = list(z_runs.values())
    values = list(runs.values())
    mean, std = statistics.mean(values), statistics.stdev(values)
    train, test, k, _, _ = common.grading_data(config, ds)
    unigram = colour_frequency_bpp(train, test, k)
    return {
        "config": config,
        "graded_seed": GRADED_SEED,
        "reference_seeds": REFERENCE_SEEDS,
        "reference_bpp": runs,
        "reference_mean": round(mean, 4),
        "reference_std": round(std, 4),
        "threshold_bpp": math.ceil(1000 * (mean + max(3 * std, 0.05 * mean))) / 1000,
        "threshold_rule": "mean + max(3 * std, 0.05 * mean) of the reference runs, rounded up to 0.001",
        "colour_frequencies_bpp": round(unigram, 4),
        "copying_z": z_runs,
        "copying_z_min": math.floor(1000 * min(-3.0, statistics.mean(z) - 3 * statistics.stdev(z))) / 1000,
        "copying_rule": "data-copying test (Meehan et al. 2020) of the graders' samples in RGB pixel space: Z_U must be at least "
                        "min(-3, mean - 3 * std of the reference runs); -3 is the paper's level for copying",
    }


def build(profiles: list[str] | None = None, previous: dict | None = None, log=print) -> dict:
    """expected.json's content; profiles not rebuilt are kept from ``previous``."""
    torch.set_num_threads(1)  # the graders' workers run with the profile's threads; 1 makes runs repeatable
    all_profiles = json.loads((HERE / "profiles.json").read_text())
    profiles = profiles or list(all_profiles)
    from coursekit.notebook import module_from_file

    ref, probes = reference_module(), module_from_file(HERE / "probes.py", "pixelrnn_probes")
    _LAST.update(ref=ref, probes=probes, config=all_profiles[profiles[0]]["train"])
    case = loss_case()
    out = probes.probe_loss(ref, **case)
    from coursekit.data import course_dataset, course_dataset_spec
    from coursekit.data.course import describe_for_expected

    expected = {
        "assignment": "pixelrnn",
        "dataset": describe_for_expected(course_dataset(), course_dataset_spec()),
        "made_by": "autograder/pixelrnn/make_expected.py from the code of solutions/pixelrnn/pixelrnn.ipynb",
        "loss": {**case, "nll_nats": float(out["nats"]), "bits_per_pixel": float(out["bits"]), "tolerance": 1e-4},
        # profiles not rebuilt keep their thresholds, unless they were measured on other data
        "training": {k: v for k, v in (previous or {}).get("training", {}).items() if k in all_profiles}
        if (previous or {}).get("dataset") == describe_for_expected(course_dataset(), course_dataset_spec()) else {},
    }
    for name in profiles:
        log(f"pixelrnn: training the reference in the {name} profile")
        expected["training"][name] = training_thresholds(ref, probes, all_profiles[name]["train"], all_profiles[name]["samples"], log)
        t = expected["training"][name]
        if t["threshold_bpp"] >= t["colour_frequencies_bpp"]:
            raise RuntimeError(f"pixelrnn {name}: the threshold {t['threshold_bpp']} bits per pixel would pass a model that ignores every "
                               f"pixel (colour frequencies alone: {t['colour_frequencies_bpp']}); give the reference more training in profiles.json")
        log(f"  threshold {t['threshold_bpp']} bits per pixel (mean {t['reference_mean']}, std {t['reference_std']}; colour frequencies alone {t['colour_frequencies_bpp']})")
    return expected


_LAST: dict = {}  # what build() trained, reused by pictures()


def pictures(dest: Path, log=print) -> None:
    """Reference samples and completions for the feedback pages (after build())."""
    from coursekit.data import course_dataset
    from coursekit.plot import save_grid

    ref, probes, cfg = _LAST["ref"], _LAST["probes"], _LAST["config"]
    ds = course_dataset()
    run = _LAST.get("run") or reference_run(ref, probes, cfg, GRADED_SEED, ds)
    k, h, w = run["k"], run["h"], run["w"]
    s = probes.probe_sample(ref, cfg, k=k, w=w, h=h, state=run["state"], n=16, temperature=1.0, sample_seed=0)["samples"]
    save_grid(s, ds.palette, dest / "samples_of_the_reference.png", ncols=8)
    shown = common.grading_data(cfg, ds)[0][:6]  # training images: the feedback goes to students, held-out images never do
    covered = shown.clone()
    covered[:, h * w // 2:] = 0
    c = probes.probe_complete(ref, cfg, k=k, w=w, state=run["state"], images=covered.reshape(6, h, w), n_known=h * w // 2,
                              temperature=1.0, sample_seed=0)["completed"]
    save_grid(torch.cat([shown.reshape(6, h, w), c]), ds.palette, dest / "completions_of_the_reference_50pct_covered.png", ncols=6)
    log(f"pixelrnn: reference pictures in {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", action="append", help="rebuild only this profile (repeatable; default: all)")
    ap.add_argument("--out", default=str(HERE / "expected.json"))
    args = ap.parse_args()
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else None
    out.write_text(json.dumps(build(args.profile, previous), indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
