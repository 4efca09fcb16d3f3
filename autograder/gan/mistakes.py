"""Typical mistakes in assignment 3 (GAN): each is the solution with one text replacement.

Used by ``coursekit demo`` and tests/test_gan_graders.py: each must fail exactly the tests in
its "fails" list (every other grader test passes), with "message" in a failure's message.
A mistake that keeps the generator from learning (labels swapped, no gradient to G, z ignored)
also fails the training thresholds: those failures are listed too (measured, smoke profile).
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
        "fails": ["test_step.py::test_generator_update", "test_training.py::test_sample_quality_fid_kid",
                  "test_training.py::test_precision_and_coverage"],
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
        "fails": ["test_training.py::test_no_copying", "test_training.py::test_sample_quality_fid_kid"],
        "message": "pixel-exact training images",
    },
}
