"""Graders of training: the student's VAE trained with the student's train() for a fixed, seeded budget.

One worker trains (profile budget, ``profiles.json``) and samples; the held-out negative ELBO is
computed in the grader's process from the encoder's (mu, logvar) in one worker and the decoder's
logits for codes drawn here in another (``make_expected.graded_training``), never with the
student's loss; the three tests share the run. Thresholds: ``expected.json`` (``make_expected.py``).
"""

import json
from pathlib import Path

import torch

from coursekit.data import check_measured_on, course_dataset
from coursekit.metrics import negative_elbo_to_bpp
from coursekit.notebook import module_from_file

HERE = Path(__file__).parent
EXPECTED = json.loads((HERE / "expected.json").read_text())
check_measured_on(EXPECTED, HERE / "expected.json")
MX = module_from_file(HERE / "make_expected.py", "_vae_make_expected_for_graders")

_CACHE: dict = {}


def _trained(probe, profile):
    """The training probe's result, run once per grading session (a failure is re-raised for every test)."""
    key = profile["name"]
    if key not in _CACHE:
        exp = EXPECTED["training"][key]
        try:
            def call(name, worker, **p):
                if worker != "main":  # the training worker is done (trained, sampled, encoded): it ends before another starts
                    probe.end("main")
                return probe(name, worker=worker, timeout=profile.get("call_timeout"), **p)

            _CACHE[key] = ("ok", MX.graded_training(call, profile, exp["graded_seed"]))
        except Exception as e:  # noqa: BLE001 - the same failure for every test that needs training
            _CACHE[key] = ("error", e)
        finally:
            probe.end("decoder")  # done too: the grader's metrics (FID features, copies) come next, without a worker beside
    status, value = _CACHE[key]
    if status == "error":
        raise value
    return value


def _metrics(r, profile):
    key = ("metrics", profile["name"])
    if key not in _CACHE:
        _CACHE[key] = MX.sample_metrics(r["samples"])
    return _CACHE[key]


def _copies(r, profile):
    """Per-sample copies of training and held-out images (mirrored, shifted, recoloured, in half), judged here."""
    key = ("copies", profile["name"])
    if key not in _CACHE:
        from coursekit.metrics.copies import course_copies

        _CACHE[key] = course_copies(r["samples"])
    return _CACHE[key]


def _copying(r, profile) -> bool:
    """The verdict of test_samples_are_not_copies: exact copies of training images, or per-sample copies (also of
    held-out images, mirrored, shifted, recoloured or in half). The data-copying test's Z_U is recorded in
    expected.json, not graded: a sampler collapsed onto a few average-looking images lands at its bound (measured
    -13 to -18, bound -16.9) though it copies nothing, so it would accuse such a sampler on some CPUs and not others."""
    m, t = _metrics(r, profile), _thresholds(profile)
    return m["exact_copy_fraction"] > t["exact_copy_fraction"]["max"] or _copies(r, profile).copying


def _thresholds(profile):
    return EXPECTED["training"][profile["name"]]["thresholds"]


def _check_samples(r, n):
    s = r["samples"]
    assert isinstance(s, torch.Tensor), f"sample(model, n) should return a tensor of colour indices, got {type(s).__name__}"
    shape = tuple(s.shape)
    assert shape == (n, r["height"], r["width"]), f"sample(model, n) should return (n, H, W) images, got shape {shape}"
    assert not s.is_floating_point() and int(s.min()) >= 0 and int(s.max()) < r["colours"], "samples should be long colour indices in 0..K-1 (the argmax over the decoder's K logits)"


def test_heldout_negative_elbo(probe, profile, attach, record_property):
    r = _trained(probe, profile)
    if r["losses"]:
        attach.curve("your training loss (negative ELBO, nats per image)", r["losses"])
    bpp = negative_elbo_to_bpp(r["heldout_nats"], r["height"], r["width"])
    limit = _thresholds(profile)["heldout_bpp"]["max"]
    if bpp == bpp:
        record_property("leaderboard", {"name": "held-out bits per pixel (negative ELBO)", "value": bpp, "order": "asc"})
    assert bpp == bpp and bpp <= limit, (
        f"after training with your train() for the graders' budget ({profile['train_steps']} steps of {profile['batch_size']} images), "
        f"the held-out negative ELBO is {bpp:.3f} bits per pixel, above the threshold set from the reference solution: "
        "check that the loss is the negative ELBO (reconstruction summed over pixels + KL, mean over the batch), that the "
        "optimiser steps every batch, and that the default learning rate trains")


def test_sample_quality(probe, profile, attach, record_property):
    r = _trained(probe, profile)
    _check_samples(r, profile["num_samples"])
    attach.grid("your samples", r["samples"][:32], course_dataset().palette)
    m, t = _metrics(r, profile), _thresholds(profile)
    problems = []
    if not m["fid"] <= t["fid"]["max"]:
        problems.append(f"FID {m['fid']:.1f} is too high (samples unlike the training images)")
    if not m["coverage"] >= t["coverage"]["min"]:
        problems.append(f"coverage {m['coverage']:.2f} is too low (samples miss much of the data's variety, e.g. all alike)")
    copying = _copying(r, profile)
    if not copying:  # the leaderboard's FID, like the points, only of samples that are not copies
        record_property("leaderboard", {"name": "FID", "value": m["fid"], "order": "asc"})
    if copying:  # stored or transformed images earn no quality points
        problems.append("they reproduce training or held-out images (see the test on copies), so their FID and coverage do not count")
    assert not problems, ("your VAE's samples (sample(model, n) after the graders' training) fall short of the reference: " + "; ".join(problems)
                          + ". Samples should decode z ~ N(0, I) from the prior and take the most likely colour of each pixel")


def test_samples_are_not_copies(probe, profile):
    r = _trained(probe, profile)
    _check_samples(r, profile["num_samples"])
    m, t = _metrics(r, profile), _thresholds(profile)
    assert m["exact_copy_fraction"] <= t["exact_copy_fraction"]["max"], (
        f"{100 * m['exact_copy_fraction']:.0f}% of your samples are exact copies of training images: sample() should decode "
        "fresh codes z ~ N(0, I), not return or encode training images")
    report = _copies(r, profile)
    assert not report.copying, "sample() should decode fresh codes z ~ N(0, I) into new images: " + report.message
