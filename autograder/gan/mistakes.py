"""Typical mistakes in assignment 3 (GAN): each is the solution with one text replacement.

Used by ``coursekit demo`` and tests/test_gan_graders.py: each must fail exactly the tests in
its "fails" list (every other grader test passes), with "message" in a failure's message, except
the tests in its "unsettled" list, whose outcome for that mistake is too close to a threshold to be
the same on every CPU (why, with the values): the kit's tests accept either outcome for those.

A mistake that keeps the generator from learning (labels swapped, no gradient to G, z ignored)
also fails the training thresholds: those failures are listed too, measured through the engine
(smoke profile, torch 2.13 CPU) under the settings of benchmarks/same_grade_everywhere.py (AVX-512
kernels, ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=default; 2 threads in-process) and listed only
where every setting misses by a wide margin. A kernel that rounds differently sends the seeded
training run down another path: the reference's FID is 41 with AVX-512 kernels and 58-61 with the
others (max 86.5). z ignored collapses exactly in every setting: one image repeated (duplicate rate
0.998, max 0.5; pairwise distance ratio 0, min 0.12; coverage 0.006-0.012, min 0.107), and that image
is 5.1x farther from its nearest training image than the 1% quantile of held-out images (no copy).
A detached G(z) leaves G untrained, so its samples do not depend on the kernels (FID 195.8,
coverage 0.010; pairwise distance ratio 0.157, min 0.12, in every setting).
"""

MISTAKES = {
    "labels_swapped": {
        "replace": [("return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
                     "return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()")],
        "fails": ["test_losses.py::test_d_loss_values", "test_training.py::test_sample_quality_fid_kid",
                  "test_training.py::test_precision_and_coverage", "test_training.py::test_no_mode_collapse"],
        "message": "labels swapped",
    },
    "generator_through_detached_sample": {
        "replace": [("loss_g = g_loss(D(G(z, *cond), *cond))", "loss_g = g_loss(D(G(z, *cond).detach(), *cond))")],
        # G never learns: its untrained samples cover nothing and vary far less than real images (pairwise distance
        # ratio 0.16 against a threshold of 0.247, half the 750-step reference's worst seed)
        "fails": ["test_step.py::test_generator_update", "test_training.py::test_sample_quality_fid_kid",
                  "test_training.py::test_precision_and_coverage", "test_training.py::test_no_mode_collapse"],
        "message": "without detaching G(z)",
    },
    "discriminator_updated_in_generator_step": {
        "replace": [("    opt_g.step()\n    return {", "    opt_g.step()\n    opt_d.step()\n    return {")],
        "fails": ["test_step.py::test_generator_update"],
        "message": "changed during the generator's update",
    },
    "sigmoid_twice": {
        "replace": [("return self.head(self.features(x)).squeeze(1)", "return torch.sigmoid(self.head(self.features(x))).squeeze(1)")],
        "fails": ["test_models.py::test_discriminator_returns_logits"],
        # D's probabilities taken as logits slow G's training to where the kernels' rounding decides the outcome
        "unsettled": {
            "test_training.py::test_sample_quality_fid_kid": (
                "FID 48.2 (AVX-512), 88.4 (ONEDNN_MAX_CPU_ISA=AVX2), 119.7 (ATEN_CPU_CAPABILITY=default), 120.5 (2 threads); "
                "max 86.5. KID 1.5, 3.4, 8.2, 14.5; max 3.93"),
            "test_training.py::test_precision_and_coverage": (
                "coverage 0.174, 0.102, 0.012, 0.050 in the same settings; min 0.107"),
            "test_training.py::test_no_mode_collapse": (
                "pairwise distance ratio 0.51, 0.17, 0.25, 0.65 in the same settings, 0.068 with training seed 1; min 0.122"),
        },
        "message": "sigmoid twice",
    },
    "generator_ignores_noise": {
        "replace": [("h = self.fc(z)", "h = self.fc(torch.zeros_like(z))")],
        "fails": ["test_models.py::test_generator_shape_and_range", "test_models.py::test_conditional_networks",
                  "test_training.py::test_sample_quality_fid_kid", "test_training.py::test_precision_and_coverage",
                  "test_training.py::test_no_mode_collapse"],
        "message": "mode collapse",
    },
    "generator_returns_training_images": {
        "replace": [("return self.net(h.view(-1, 4 * self.width, 5, 5))",
                     "return (real_rgb[(z[:, 0] * 1e4).long() % len(real_rgb)].to(z.device)"
                     " + 1e-3 * self.net(h.view(-1, 4 * self.width, 5, 5))).clamp(-1, 1)")],
        "fails": ["test_training.py::test_no_copying", "test_training.py::test_sample_quality_fid_kid", "test_training.py::test_precision_and_coverage"],
        "message": "pixel-exact training images",
    },
}
