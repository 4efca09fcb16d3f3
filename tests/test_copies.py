"""Per-sample copy detection (coursekit.metrics.copies) on the embedded sprites.

Honest control: fresh real images. The held-out split is cut into two random halves; one half
plays the samples, the other is the held-out reference (with the training split). Fresh data is
the ideal honest generator and must not be judged copying. Each attack (held-out images
themselves, mirrored, shifted, recoloured, half-copied sets, half images, one image repeated) must
be judged copying. Noise and one-colour sets are no copies (other checks fail them).

The calibration is the grader's: leave-one-out over the references themselves (training split +
held-out reference half), so the sample half never takes part in it.
"""

import time

import numpy as np
import pytest
import torch

from coursekit.data import load_dataset
from coursekit.metrics import CopyCalibration, calibrate_copy_thresholds, critical_count, find_copies
from coursekit.metrics.copies import _threshold, copy_transforms

M = 72  # samples per set: the sample half of the held-out split


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def sprites():
    return load_dataset("sprites")


def halves(x, seed):
    p = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[p[: M]], x[p[M:]]


@pytest.fixture(scope="module")
def data(sprites):
    train, _ = sprites.tensors("train")
    test, _ = sprites.tensors("test")
    fresh, heldout_ref = halves(test, 0)
    pick = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:M]]
    return {"train": train, "test": test, "fresh": fresh, "heldout": heldout_ref, "pick": pick, "palette": sprites.palette}


@pytest.fixture(scope="module")
def calibration(data):
    start = time.perf_counter()
    cal = calibrate_copy_thresholds(data["train"], data["heldout"], data["palette"])
    print(f"\ncalibration: {cal.n_images} images leave-one-out, {time.perf_counter() - start:.1f} s on one thread; "
          f"thresholds {cal.thresholds}; base rate {cal.base_rate:.4f} (upper {cal.base_rate_upper:.4f}) {cal.base_rates}")
    return cal


def check(data, calibration, samples, references=None):
    refs = references or {"train": data["train"], "held-out": data["heldout"]}
    return find_copies(samples, refs, data["palette"], calibration=calibration)


# --- honest control ----------------------------------------------------------------------------
def test_calibration_sane(calibration):
    t = calibration.thresholds
    assert calibration.n_images == 1297 + 73
    # measured: whole 0.745, changed area 0.00125 (only exact ties), half 0.032 (only exact ties); base rate 3.1%
    assert 0.3 < t["whole"] < 1.5 and 0 < t["changed_area"] < 0.01 and 0 < t["half"] < 0.5
    assert 0.01 <= calibration.base_rate <= 0.06
    assert calibration.base_rate < calibration.base_rate_upper < calibration.base_rate + 0.02
    assert max(calibration.base_rates.values()) <= calibration.base_rate <= sum(calibration.base_rates.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fresh_real_images_are_not_copying(sprites, data, calibration, seed):
    fresh, heldout_ref = halves(data["test"], seed)
    rep = check(data, calibration, fresh, {"train": data["train"], "held-out": heldout_ref})
    assert not rep.copying, rep.message
    assert rep.verdict == "no sign of copying" and rep.exact_copy.sum() == 0
    # flagged share near the calibrated base rate: within 3 binomial standard deviations (measured 3-8%)
    p = calibration.base_rate
    assert abs(rep.shares["copy"] - p) <= 3 * np.sqrt(p * (1 - p) / M) + 1 / M, rep.message
    assert rep.copy.sum() < rep.critical_count


# --- attacks -------------------------------------------------------------------------------------
def shift(x, dy, dx, how):
    if how == "roll":
        return torch.roll(x, (dy, dx), (1, 2))
    h, w = x.shape[1:]
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], 1)
    out = border.mode(1).values[:, None, None].expand_as(x).clone()  # each image's own most common border colour
    out[:, max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = x[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    return out


def recolour(x, share, k, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(x.shape, generator=g) < share
    return torch.where(mask, torch.randint(0, k, x.shape, generator=g), x)


@pytest.mark.parametrize("mirror", ["horizontal", "vertical", "both"])
def test_mirrored_training_images(data, calibration, mirror):
    dims = {"horizontal": (-1,), "vertical": (-2,), "both": (-2, -1)}[mirror]
    rep = check(data, calibration, data["pick"].flip(dims))
    assert rep.copying and rep.shares["copy"] == 1.0, rep.message
    assert (rep.whole.distance == 0).all() and set(rep.whole.split) == {"train"}
    # the source itself is found, under that mirror, unless the image is symmetric enough to match otherwise
    found = [data["train"][i].equal(s) or t.mirror == mirror for i, s, t in zip(rep.whole.index, data["pick"], rep.whole.transform)]
    assert np.mean(found) > 0.9


@pytest.mark.parametrize("pixels,how", [(1, "roll"), (1, "fill"), (2, "roll"), (2, "fill")])
def test_shifted_training_images(data, calibration, pixels, how):
    g = torch.Generator().manual_seed(pixels)
    shifted = torch.stack([shift(x[None], int(dy), int(dx), how)[0] for x, (dy, dx) in
                           zip(data["pick"], torch.tensor([[pixels, 0], [0, -pixels], [pixels, pixels], [-pixels, pixels]])[torch.randint(0, 4, (M,), generator=g)])])
    rep = check(data, calibration, shifted)
    assert rep.copying and rep.shares["copy"] == 1.0, rep.message
    assert (rep.whole.distance < 1e-9).float().mean() > 0.95  # the overlap matches exactly; the border is ignored
    assert all(max(abs(t.dy), abs(t.dx)) <= 2 for t in rep.whole.transform)


@pytest.mark.parametrize("share,min_flagged", [(0.03, 0.95), (0.10, 0.6)])  # measured: 1.00 and 0.83 (0.07 at 20%)
def test_recoloured_training_images(data, calibration, share, min_flagged):
    samples = recolour(data["pick"], share, len(data["palette"]), seed=3)
    rep = check(data, calibration, samples)
    assert rep.copying and rep.shares["copy"] >= min_flagged, rep.message
    assert rep.shares["whole"] == 0  # plain pixel distance misses them: the changed area catches them
    assert rep.shares["changed_area"] >= min_flagged


def test_heldout_images_themselves(data, calibration):
    rep = check(data, calibration, data["heldout"])
    assert rep.copying and rep.shares["copy_of"]["held-out"] == 1.0 and rep.shares["exact_copy"] == 1.0, rep.message


def test_half_copies_half_fresh(data, calibration):
    samples = torch.cat([data["pick"][: M // 2], data["fresh"][M // 2 :]])
    rep = check(data, calibration, samples)
    assert rep.copying, rep.message
    assert rep.copy[: M // 2].all()  # every copy flagged
    assert rep.copy[M // 2 :].sum() < rep.critical_count  # the fresh half alone would pass
    assert 0.45 <= rep.shares["copy"] <= 0.65


def test_top_half_copied(data, calibration):
    h = data["pick"].shape[1] // 2
    samples = torch.cat([data["pick"][:, :h], data["fresh"][:, h:]], 1)
    rep = check(data, calibration, samples)
    assert rep.copying and rep.shares["half"] >= 0.95, rep.message
    assert rep.shares["whole"] <= 0.05  # as whole images they are far from everything
    assert np.mean([r == "top" for r in rep.half.region]) > 0.9


def test_one_training_image_repeated(data, calibration):
    rep = check(data, calibration, data["pick"][:1].repeat(M, 1, 1))
    assert rep.copying and rep.shares["exact_copy"] == 1.0, rep.message
    assert rep.duplicate_rate == pytest.approx((M - 1) / M)


# --- no copies ------------------------------------------------------------------------------------
def test_fresh_image_repeated_is_duplicates_not_copies(data, calibration):
    """A collapsed generator repeating one image of its own: duplicates among the samples, not a copy of the data."""
    fresh = data["fresh"]
    honest = check(data, calibration, fresh[:1])
    pick = int(np.flatnonzero(~honest.copy.numpy())[0]) if not honest.copy.all() else None
    assert pick is not None
    rep = check(data, calibration, fresh[pick : pick + 1].repeat(M, 1, 1))
    assert not rep.copying and rep.shares["copy"] == 0 and rep.duplicate_rate > 0.98, rep.message
    assert "repeat another sample exactly" in rep.message


def test_distinct_samples_tell_low_diversity_from_copying(data, calibration):
    """Greedy sampling repeats itself: with distinct=True each distinct image is judged once, so one image repeated is
    low diversity (duplicate_rate), never "copying", even where it lies near a real image; distinct copies still are."""
    refs = {"train": data["train"], "held-out": data["heldout"]}
    near = data["pick"][:1].clone()
    near[0, 0, :3] = (near[0, 0, :3] + 1) % len(data["palette"])  # a generated image that happens to lie near a real one
    rep = find_copies(near.repeat(M, 1, 1), refs, data["palette"], calibration=calibration, distinct=True)
    assert not rep.copying and rep.n_samples == 1 and rep.duplicate_rate == pytest.approx((M - 1) / M), rep.message
    assert "1 distinct samples" in rep.message and "low diversity" in rep.message and "not copying the data" in rep.message
    twice = torch.cat([data["pick"], data["pick"]])
    rep = find_copies(twice, refs, data["palette"], calibration=calibration, distinct=True)
    assert rep.copying and rep.n_samples == M and "far more often than fresh data" in rep.message, rep.message


@pytest.mark.parametrize("kind", ["noise", "white", "one colour each"])
def test_noise_and_flat_images_are_not_copies(data, calibration, kind):
    k = len(data["palette"])
    g = torch.Generator().manual_seed(5)
    samples = {"noise": torch.randint(0, k, (M, 20, 20), generator=g),
               "white": torch.full((M, 20, 20), int(np.argmax(data["palette"].astype(int).sum(1)))),
               "one colour each": (torch.arange(M) * 7 % k)[:, None, None].expand(M, 20, 20)}[kind]
    rep = check(data, calibration, samples)
    assert not rep.copying and rep.shares["copy"] == 0, rep.message


# --- pieces -----------------------------------------------------------------------------------------
def test_transforms_and_threshold_rule():
    assert len(copy_transforms()) == 4 * 25 and copy_transforms()[0].describe() == "as is"
    assert len(copy_transforms(0, ())) == 1
    # ties at the minimum beyond the quantile: all of them lie below the threshold, nothing above
    assert _threshold(np.array([0.0] * 3 + list(range(1, 98))), 0.01) == 0.5
    assert _threshold(np.arange(100.0), 0.05) == 4.5  # exactly 5 values below
    # the set-level rule: above min_share and margin x base rate, improbable for fresh data
    assert critical_count(72, 0.0) == 4 and critical_count(500, 0.0) == 26
    assert critical_count(72, 0.045) == 11 and critical_count(500, 0.045) == 46
    assert all(critical_count(m, 0.045) / m > 0.09 for m in (32, 72, 145, 500, 2000))


def test_calibration_round_trip_and_settings(data, calibration):
    again = CopyCalibration.from_dict(calibration.to_dict())
    assert again == calibration
    with pytest.raises(ValueError, match="same settings"):
        find_copies(data["pick"][:4], {"train": data["train"]}, data["palette"], calibration=calibration, shifts=1)


def test_without_calibration_measures_on_references(data):
    small = {"train": data["train"][:300], "held-out": data["heldout"][:30]}
    rep = find_copies(torch.cat([data["train"][:40].flip(-1), data["fresh"][:40]]), small, data["palette"])
    assert rep.copying and rep.copy[:40].all() and rep.shares["copy_of"]["train"] >= 0.5
    assert 0 < rep.base_rate < 0.1


def test_benchmark_500_samples_one_thread(sprites, data, calibration, capsys):
    """M = 500 against N = 1442 references of 20x20x3 under 100 transforms (measured 2.4-3.5 s on one core)."""
    train, test = data["train"], data["test"]
    samples = recolour(train[:500], 0.05, len(data["palette"]), seed=7)
    start = time.perf_counter()
    rep = find_copies(samples, {"train": train, "held-out": test}, data["palette"], calibration=calibration)
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nbenchmark: find_copies, 500 samples x {len(train) + len(test)} references x {len(copy_transforms())} "
              f"transforms, one thread: {seconds:.2f} s; flagged {rep.shares['copy']:.3f}")
    assert rep.copying and rep.shares["copy"] > 0.9
    assert seconds < 30  # a few seconds; loose for a busy shared machine
