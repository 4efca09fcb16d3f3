"""Sample-quality metrics: known answers on synthetic data, and the shipped evaluators."""

import math

import numpy as np
import pytest
import torch

from coursekit.data import PaletteDataset, load_dataset
from coursekit.metrics import (
    Evaluator,
    EvaluatorConfig,
    PaletteFeatures,
    bits_per_pixel,
    colour_frequency_bpp,
    data_copying_test,
    density_coverage,
    duplicate_rate,
    evaluate_samples,
    evaluator_accuracy,
    features,
    fid,
    fid_from_features,
    kid_from_features,
    load_evaluator,
    nats_per_pixel_to_bpp,
    negative_elbo_to_bpp,
    pairwise_distance_ratio,
    palette_usage,
    precision_recall,
    reference_evaluator_path,
    save_evaluator,
    spread_over_seeds,
    train_evaluator,
    uniform_bpp,
)

# Held-out accuracy of the shipped evaluators, measured: sprites 0.60 (chance 0.125), digits 0.99.
SPRITES_ACCURACY_FLOOR = 0.45
DIGITS_ACCURACY_FLOOR = 0.9


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def random_halves(x, seed=0):
    p = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[p[: len(x) // 2]], x[p[len(x) // 2 :]]


def recolour(x, share, k, gen):
    mask = torch.rand(x.shape, generator=gen) < share
    return torch.where(mask, torch.randint(0, k, x.shape, generator=gen), x)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def digits_ev():
    return load_evaluator(reference_evaluator_path("digits"))


@pytest.fixture(scope="module")
def sprites():
    return load_dataset("sprites")


# --- FID / KID --------------------------------------------------------------------------
def test_fid_closed_form_and_self():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 8, generator=g, dtype=torch.float64)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    # N(0, I) vs N(mu, 4 I): ||mu||^2 + Tr(I + 4I - 2*2I) = ||mu||^2 + D
    b = 2 * torch.randn(4000, 8, generator=g, dtype=torch.float64) + 1.0
    assert fid_from_features(a, b) == pytest.approx(8 + 8, rel=0.1)


def test_fid_kid_grow_with_degradation(digits, digits_ev):
    g = torch.Generator().manual_seed(0)
    x, _ = digits.tensors("all")
    perm = torch.randperm(len(x), generator=g)
    ref, other = x[perm[:800]], x[perm[800:1600]]
    extractor = PaletteFeatures(digits_ev, digits.palette)
    assert fid(ref, ref, extractor) == pytest.approx(0.0, abs=1e-3)
    f_ref = features(digits_ev, ref, digits.palette)
    fids, kids = [], []
    for share in (0.0, 0.1, 0.3, 0.6):
        f = features(digits_ev, recolour(other, share, digits.num_colors, g), digits.palette)
        fids.append(fid_from_features(f_ref, f))
        kids.append(kid_from_features(f_ref, f, generator=torch.Generator().manual_seed(1), subsets=10, subset_size=400)[0])
    assert fids == sorted(fids) and fids[-1] > 10 * fids[0], fids
    assert kids == sorted(kids) and kids[-1] > 10 * max(abs(kids[0]), 1e-4), kids
    assert abs(kids[0]) < 0.1 * kids[1]  # two real halves: KID (unbiased) ~ 0
    # the images path (torchmetrics with the evaluator as feature extractor) agrees with the features path
    assert fid(ref, other, extractor) == pytest.approx(fids[0], rel=1e-4)


def test_kid_is_seeded_and_leaves_global_rng_alone():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 0.3
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    k1 = kid_from_features(a, b, generator=torch.Generator().manual_seed(5), subsets=5, subset_size=100)
    after = torch.rand(1)
    k2 = kid_from_features(a, b, generator=torch.Generator().manual_seed(5), subsets=5, subset_size=100)
    assert k1 == k2 and torch.equal(before, after)


# --- precision / recall / density / coverage ----------------------------------------------
def gaussians(seed=0, n=1000, d=16):
    g = torch.Generator().manual_seed(seed)
    return lambda shift=0.0, m=n: torch.randn(m, d, generator=g) + shift


def test_prdc_identical_distributions():
    draw = gaussians()
    pr = precision_recall(draw(), draw())
    dc = density_coverage(draw(), draw())
    assert pr["precision"] > 0.8 and pr["recall"] > 0.8, pr
    assert 0.85 < dc["density"] < 1.15 and dc["coverage"] > 0.9, dc


def test_prdc_disjoint_distributions():
    draw = gaussians()
    real, fake = draw(), draw(shift=50.0)
    assert precision_recall(real, fake) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, fake) == {"density": 0.0, "coverage": 0.0}


def test_prdc_one_mode_of_two():
    draw = gaussians()
    real = torch.cat([draw(m=500), draw(shift=50.0, m=500)])
    fake = draw()  # all in the first mode
    pr, dc = precision_recall(real, fake), density_coverage(real, fake)
    assert pr["precision"] > 0.8 and 0.35 < pr["recall"] < 0.55, pr
    assert 0.4 < dc["coverage"] < 0.55 and dc["density"] > 0.8, dc
    # k is an argument: a larger k grows the balls, so recall can only go up
    assert precision_recall(real, fake, k=10)["recall"] >= pr["recall"]


# --- diversity ----------------------------------------------------------------------------
def test_diversity_catches_duplicates_and_collapse(digits, digits_ev, sprites):
    x, _ = digits.tensors("test")
    assert duplicate_rate(x) == 0.0
    assert duplicate_rate(torch.cat([x[:50], x[:50]])) == pytest.approx(0.5)
    collapsed = x[:1].repeat(len(x), 1, 1)
    assert duplicate_rate(collapsed) == pytest.approx(1 - 1 / len(x))
    f_real = features(digits_ev, x, digits.palette)
    train, _ = digits.tensors("train")
    assert pairwise_distance_ratio(features(digits_ev, train[:180], digits.palette), f_real) == pytest.approx(1.0, abs=0.15)
    # One image repeated: its feature rows are equal where the evaluator treats every row of a batch alike (so far,
    # every CPU kernel measured), and equal rows give exactly 0. A kernel that rounds rows differently may leave ~1e-8
    # (the old matmul-based distances did, on AVX2 machines): a real failure to see collapse is orders of magnitude above.
    assert pairwise_distance_ratio(features(digits_ev, collapsed, digits.palette), f_real) < 1e-6
    # the guarantee on every CPU: equal rows (of any size) are at distance exactly 0, whatever the kernels' rounding
    f_one = torch.as_tensor(f_real[:1]).double().repeat(len(f_real), 1)
    assert pairwise_distance_ratio(f_one, f_real) == 0.0
    assert pairwise_distance_ratio(1e3 * f_one + 0.1, f_real) == 0.0
    assert 0 < pairwise_distance_ratio(torch.cat([f_one[:-1], f_one[-1:] + 1e-3]), f_real) < 1e-3  # one row apart: small, not 0
    # palette usage: one sprite uses a handful of the 167 colours that 145 sprites use
    s_test, _ = sprites.tensors("test")
    s_train, _ = sprites.tensors("train")
    assert palette_usage(s_test[:1].repeat(len(s_test), 1, 1), s_test, sprites.num_colors) < 0.3
    assert palette_usage(s_train[: len(s_test)], s_test, sprites.num_colors) == pytest.approx(1.0, abs=0.2)


# --- memorisation ---------------------------------------------------------------------------
def test_copying_test_flags_copies_not_heldout(sprites):
    g = torch.Generator().manual_seed(0)
    train, _ = sprites.tensors("train")
    test, _ = sprites.tensors("test")
    half_a, half_b = random_halves(test)  # random: the file is ordered by category
    m = len(half_a)
    copies = train[torch.randperm(len(train), generator=g)[:m]]
    perturbed = recolour(train[torch.randperm(len(train), generator=g)[:m]], 0.03, sprites.num_colors, g)
    r_copy = data_copying_test(copies, train, half_b, sprites.palette)
    r_pert = data_copying_test(perturbed, train, half_b, sprites.palette)
    r_real = data_copying_test(half_a, train, half_b, sprites.palette)
    # a non-copying model: each sample the RGB average of two training images, snapped to the palette
    pal = torch.as_tensor(sprites.palette, dtype=torch.float32)
    i, j = torch.randint(0, len(train), (2, m), generator=g)
    rgb = (pal[train[i]] + pal[train[j]]) / 2
    blend = torch.cdist(rgb.reshape(-1, 3), pal).argmin(1).reshape(m, *sprites.image_shape)
    r_blend = data_copying_test(blend, train, half_b, sprites.palette)
    assert r_copy["copying"] and r_copy["exact_copy_fraction"] == 1.0 and r_copy["z_score"] < -3
    assert r_pert["copying"] and r_pert["exact_copy_fraction"] < 0.2 and r_pert["z_score"] < -3, r_pert
    assert not r_real["copying"] and r_real["exact_copy_fraction"] == 0.0 and abs(r_real["z_score"]) < 3, r_real
    assert not r_blend["copying"], r_blend
    assert r_copy["p_value"] < 1e-3 < r_real["p_value"]


# --- evaluator ------------------------------------------------------------------------------
def tiny_digits(digits, n=240, labels=True):
    return PaletteDataset(name="tiny", indices=digits.indices[:n], palette=digits.palette,
                          labels=digits.labels[:n] if labels else None,
                          label_names=digits.label_names if labels else None)


def test_evaluator_training_is_deterministic_and_round_trips(digits, tmp_path):
    ds = tiny_digits(digits)
    cfg = EvaluatorConfig(image_size=(8, 8), num_classes=10, epochs=1, hflip=False, shift=0, channels=(8, 16, 16), feature_dim=16)
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    a = train_evaluator(ds, cfg, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    b = train_evaluator(ds, cfg, seed=3)
    x, _ = ds.tensors("test")
    fa = features(a, x, ds.palette)
    assert fa.shape == (len(x), 16)
    assert torch.equal(fa, features(b, x, ds.palette))
    path = save_evaluator(a, tmp_path / "ev.pt", note="test")
    c = load_evaluator(path)
    assert torch.equal(fa, features(c, x, ds.palette)) and c.info["note"] == "test"
    blob = torch.load(path, weights_only=True)  # a plain, safe file
    assert set(blob) == {"format", "config", "state_dict", "info"}


def test_autoencoder_evaluator_without_labels(digits):
    ds = tiny_digits(digits, labels=False)
    cfg = EvaluatorConfig(image_size=(8, 8), num_classes=0, epochs=1, hflip=False, shift=0, channels=(8, 16, 16), feature_dim=12)
    ev = train_evaluator(ds, cfg, seed=0)
    x, _ = ds.tensors("all")
    assert features(ev, x, ds.palette).shape == (len(x), 12)
    assert math.isnan(evaluator_accuracy(ev, ds))


def test_shipped_evaluators(sprites, digits, digits_ev, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("loading an evaluator must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name, ds, floor in (("sprites", sprites, SPRITES_ACCURACY_FLOOR), ("digits", digits, DIGITS_ACCURACY_FLOOR)):
        path = reference_evaluator_path(name)
        assert path.stat().st_size < 1_000_000
        ev = load_evaluator(path)
        assert isinstance(ev, Evaluator) and tuple(ev.config.image_size) == ds.image_shape
        acc = evaluator_accuracy(ev, ds, "test")
        assert acc > floor, f"{name}: held-out accuracy {acc:.3f}"


# --- report and likelihood -------------------------------------------------------------------
def test_evaluate_samples_separates_models(digits, digits_ev):
    train, _ = digits.tensors("train")
    test, _ = digits.tensors("test")
    half_a, half_b = random_halves(test)
    real = evaluate_samples(half_a, digits, digits_ev, heldout=half_b)
    memo = evaluate_samples(train[:len(half_a)], digits, digits_ev, heldout=half_b)
    coll = evaluate_samples(train[:1].repeat(len(half_a), 1, 1), digits, digits_ev, heldout=half_b)
    assert not real["copying"] and memo["copying"]
    assert coll["duplicate_rate"] > 0.9 and coll["recall"] < 0.05 and coll["fid"] > 5 * real["fid"]
    assert memo["fid"] < 2 * real["fid"]  # a copier has an excellent FID: only the copying test catches it

    def run(seed):
        return evaluate_samples(half_a, digits, digits_ev, generator=torch.Generator().manual_seed(seed), n=60, heldout=half_b)

    spread = spread_over_seeds(run, [0, 1, 2])
    assert spread["fid"][1] > 0 and spread["copying"] == (0.0, 0.0)
    assert evaluate_samples(half_a, digits, digits_ev, generator=torch.Generator().manual_seed(4), n=60, heldout=half_b) == \
        evaluate_samples(half_a, digits, digits_ev, generator=torch.Generator().manual_seed(4), n=60, heldout=half_b)


def test_bits_per_pixel_convention():
    k, h, w = 167, 20, 20
    uniform_nats_per_image = h * w * math.log(k)
    assert bits_per_pixel(uniform_nats_per_image, h * w) == pytest.approx(uniform_bpp(k))
    assert negative_elbo_to_bpp(uniform_nats_per_image, h, w) == pytest.approx(math.log2(k))
    assert nats_per_pixel_to_bpp(math.log(2)) == pytest.approx(1.0)
    assert bits_per_pixel(10 * uniform_nats_per_image, 10 * h * w) == pytest.approx(math.log2(k))
    with pytest.raises(ValueError):
        bits_per_pixel(1.0, 0)


def test_colour_frequency_bpp_by_hand():
    # training colours 0, 0, 1 of K = 3, add-one smoothed: p = (3, 2, 1) / 6; held-out pixels 0 and 1
    expected = (-math.log2(3 / 6) - math.log2(2 / 6)) / 2
    assert colour_frequency_bpp(torch.tensor([[0, 0, 1]]), torch.tensor([0, 1]), 3) == pytest.approx(expected)
    assert colour_frequency_bpp(torch.tensor([0, 1, 2]), torch.tensor([2]), 3) == pytest.approx(math.log2(3))
