"""The networks: shapes, output range, logits (no sigmoid), the conditional networks use their labels."""


def test_generator_shape_and_range(probe, credit):
    r = probe("generator", z_dim=16, width=8, batch=5)
    assert r["shape"] == [5, 3, 20, 20], (
        f"Generator(z_dim=16, width=8)(z) for z of shape (5, 16) should give images (5, 3, 20, 20), got {tuple(r['shape'])}")
    credit.part(1, r["z_dim_attr"] == 16, "keep the noise size as the attribute `self.z_dim` (train_step reads it)")
    credit.part(1, r["finite"] and -1 <= r["min"] and r["max"] <= 1,
                "the generator's images should lie in [-1, 1] like the real images: end with tanh")
    credit.part(2, r["spread_over_batch"] > 1e-6,
                "the generator gives the same image for every noise vector (in evaluation mode): its output must depend on z")


def test_discriminator_returns_logits(probe, credit):
    r = probe("discriminator", width=8, batch=5)
    assert r["shape"] == [5], (
        f"Discriminator(width=8)(x) for x of shape (5, 3, 20, 20) should give one logit per image, shape (5,), got {tuple(r['shape'])}")
    sig = 0 <= r["scaled_min"] and r["scaled_max"] <= 1
    credit.part(2, not sig, "the discriminator's outputs stay in [0, 1] even with large weights: it ends with a sigmoid, and the "
                "losses apply another one (sigmoid twice). Return the raw logit of the last linear layer")
    s = probe("discriminator", width=8, batch=5, spectral_norm=True)
    credit.part(1, s["shape"] == [5] and s["finite"],
                f"Discriminator(width=8, spectral_norm=True) should also give (5,) finite logits, got shape {tuple(s['shape'])}")


def test_conditional_networks(probe, credit):
    r = probe("conditional", n_classes=4, z_dim=16, width=8, batch=4)
    assert r["g_shape"] == [4, 3, 20, 20], f"CondGenerator(4, z_dim=16, width=8)(z, labels) should give (4, 3, 20, 20), got {tuple(r['g_shape'])}"
    assert r["d_shape"] == [4], f"CondDiscriminator(4, width=8)(x, labels) should give (4,) logits, got {tuple(r['d_shape'])}"
    credit.part(1, -1 <= r["g_min"] and r["g_max"] <= 1, "CondGenerator's images should lie in [-1, 1]")
    credit.part(1, r["label_effect"] > 1e-6, "CondGenerator gives the same image for the same noise with different labels: use the label")
    credit.part(1, r["d_label_effect"] > 1e-6, "CondDiscriminator's logits do not change with the label: use it (e.g. a projection term)")
