"""Training with the student's train_step for a fixed, seeded budget (the profile's), then sample quality.

The probe trains the student's Generator and Discriminator with Adam and the student's
train_step on the training images the grader sends, and returns the generator's raw images for
500 noise vectors; the palette conversion and every metric are computed here, in the grader's
process, with the kit's evaluator (``gan_common.graded_training``). Thresholds: expected.json (rule in make_expected.py).
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_common import graded_training, load_expected, sample_metrics  # noqa: E402

EXPECTED = load_expected()["training"]
TH = EXPECTED["thresholds"]
_CACHE: dict = {}


def _trained(probe, profile, attach=None):
    """The training probe's result and its metrics, computed once per grading session."""
    if "run" not in _CACHE:
        cfg = profile["train"]
        try:
            res = graded_training(lambda name, **p: probe(name, timeout=profile.get("call_timeout"), **p), cfg)
        except Exception as e:  # the probe's message (crash, timeout, not implemented) is the student's
            _CACHE["run"] = e
        else:
            probe.end("main")  # the worker is done: the metrics (FID features, copies) are computed here without it beside
            _CACHE["run"] = (res, sample_metrics(res["samples"]))
    run = _CACHE["run"]
    if isinstance(run, Exception):
        raise run
    res, m = run
    if attach is not None:
        from coursekit.data import course_dataset

        attach.grid("64 samples after training with your train_step", res["samples"][:64].long(), course_dataset().palette, ncols=16)
        attach.curve("discriminator loss", res["d_loss"])
        attach.curve("generator loss", res["g_loss"])
    assert res["finite"], (f"the losses became NaN or infinite after {res['steps_done']} steps of training: compute them from logits "
                           "with F.softplus, and check the learning rates of the optimisers you are given")
    return res, m


def _budget(profile):
    c = profile["train"]
    return f"after {c['steps']} steps of your train_step (batch {c['batch_size']}, Adam lr {c['lr']}, Generator(z_dim={c['z_dim']}, width={c['width']}))"


def test_sample_quality_fid_kid(probe, profile, credit, attach, record_property):
    res, m = _trained(probe, profile, attach)
    hint = ("; check train_step: D on real (label 1) and detached generated images (label 0), then G with the non-saturating loss "
            "through D, one update each per step")
    # FID and KID reward samples near real images: one good image repeated, or stored images, must not earn them
    varied = m["duplicate_rate"] <= TH["duplicate_rate_max"] and m["pairwise_distance_ratio"] >= TH["pairwise_distance_ratio_min"]
    if not credit.part(2, varied and not m["copying"], (
            f"{_budget(profile)} the samples are not varied, new images (see the tests on mode collapse and copying), "
            "so their FID and KID do not count")):
        return
    record_property("leaderboard", {"name": "FID", "value": m["fid"], "order": "asc"})  # of varied samples that are not copies
    credit.part(1, m["fid"] <= TH["fid_max"], f"{_budget(profile)} the samples' FID is {m['fid']:.1f}, above the threshold" + hint)
    credit.part(1, m["kid"] <= TH["kid_max"], f"{_budget(profile)} the samples' KID is {m['kid']:.2f}, above the threshold" + hint)


def test_precision_and_coverage(probe, profile, credit):
    res, m = _trained(probe, profile)
    if not credit.part(1, not m["copying"], (f"{_budget(profile)} the samples reproduce stored images (see the test on copying), "
                                             "so their precision and coverage do not count")):
        return
    credit.part(1, m["precision"] >= TH["precision_min"],
                f"{_budget(profile)} precision is {m['precision']:.2f}: too few samples look like some real image")
    credit.part(2, m["coverage"] >= TH["coverage_min"],
                f"{_budget(profile)} coverage is {m['coverage']:.2f}: the samples cover too little of the real images' variety")


def test_no_mode_collapse(probe, profile, credit):
    res, m = _trained(probe, profile)
    credit.part(1, m["duplicate_rate"] <= TH["duplicate_rate_max"],
                f"mode collapse: {100 * m['duplicate_rate']:.0f}% of 500 samples from different noise vectors are pixel-exact duplicates; "
                "the generator must map different z to different images (does it use z?)")
    credit.part(1, m["pairwise_distance_ratio"] >= TH["pairwise_distance_ratio_min"],
                f"mode collapse: the samples are much less varied than real images (pairwise distance ratio {m['pairwise_distance_ratio']:.2f}); "
                "the generator must use its noise input")


def test_no_copying(probe, profile):
    res, m = _trained(probe, profile)
    from gan_common import copy_report

    assert not m["copying"], (
        f"the generator's images should be new, made from noise: {100 * m['exact_copy_fraction']:.0f}% of 500 samples are pixel-exact "
        f"training images and {100 * m['near_copy_fraction']:.0f}% are closer to a training image than held-out images ever are. "
        + copy_report(res["samples"]).message)
