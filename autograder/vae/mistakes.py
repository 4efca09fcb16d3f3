"""Typical mistakes of assignment 2 (VAE), each put into the solution notebook by text replacement.

``fails``: the grader tests the mistake makes fail (``tests/test_vae_graders.py`` checks it through
the real grading engine: these fail, every other test passes); ``message``: a piece of what the
student reads in the first of them; ``unsettled``: tests whose outcome for this mistake is too close
to a threshold to be the same on every CPU, so the kit's tests accept either (why, with the values).

A training grader is listed in ``fails`` only where the measured value misses its threshold by a
wide margin under every setting of ``benchmarks/same_grade_everywhere.py`` (smoke profile, torch 2.13
CPU: AVX-512 kernels, ``ATEN_CPU_CAPABILITY=default``, ``ONEDNN_MAX_CPU_ISA=AVX2``, 2 threads), and,
where we checked, for the training seeds 1-4 too: a kernel that rounds differently sends the seeded
training run down another path, much as another seed does. Measured (held-out bits per pixel, max
4.363; FID, max 59.4; coverage, min 0.05): the three mistakes that
leave the encoder without the reconstruction's gradient (a detached or ``.sample()``d z) or weigh it
400 times less (the mean over pixels) collapse: 1 to 3 distinct samples, 4.65-4.68 bpp, FID 80,
coverage 0.006-0.012 in every setting (``.sample()`` with seeds 1-4: 4.65-4.74 bpp, FID 71-80, coverage
0.008-0.02); the KL with the wrong sign is NaN from step 4. The log-std mistakes change the ELBO little (below).
"""

# A sampler collapsed onto one or a few images (the encoder gets no gradient through z) is not a copier:
# the per-sample copy check flags none of its 500 samples (critical count 46). The data-copying test's Z_U,
# which put it at its bound (-16.45 to -17.9, bound -16.94, depending on the kernels), is no longer graded.

MISTAKES = {
    "logstd_taken_as_logvar_in_the_sample": {
        "replace": [("return mu + torch.exp(0.5 * logvar) * eps", "return mu + torch.exp(logvar) * eps")],
        "fails": ["test_vae_parts.py::test_reparameterize", "test_vae_parts.py::test_gradients_reach_the_encoder"],
        "unsettled": {
            "test_vae_training.py::test_heldout_negative_elbo": (
                "the model adapts its logvar to the wrong sigma: 4.383-4.399 bpp under the four settings (max 4.363, 0.5-0.8% "
                "above it); seeds 1-4: 4.19, 4.39, 4.60, 4.50"),
            "test_vae_training.py::test_sample_quality": (
                "FID 43-50 under the four settings (max 59.4), but the run collapses with seed 3 (FID 79.9, coverage 0.012) "
                "and misses with seed 4 (FID 61.4, coverage 0.034)"),
        },
        "message": "as if logvar were the log standard deviation",
    },
    "logstd_taken_as_logvar_in_the_kl": {
        "replace": [("0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)", "0.5 * (mu.pow(2) + (2 * logvar).exp() - 1.0 - 2 * logvar)")],
        "fails": ["test_vae_parts.py::test_kl_divergence", "test_vae_parts.py::test_negative_elbo"],
        "unsettled": {
            "test_vae_training.py::test_heldout_negative_elbo": (
                "a KL that pulls sigma towards 1 more gently still trains: 4.249-4.310 bpp under the four settings (max 4.363, "
                "only 1.2% below it with ONEDNN_MAX_CPU_ISA=AVX2); seeds 1-4: 4.17, 4.19, 4.21, 4.09"),
        },
        "message": "it treats logvar as the log standard deviation",
    },
    "kl_with_the_wrong_sign": {
        "replace": [("return 0.5 * (mu.pow(2) + logvar.exp()", "return -0.5 * (mu.pow(2) + logvar.exp()")],
        # the loss rewards a large KL: logvar overflows and the weights are NaN from step 4 (every setting, seeds 0-2), so
        # every training grader fails on the NaN encoder
        "fails": ["test_vae_parts.py::test_kl_divergence", "test_vae_parts.py::test_negative_elbo", "test_vae_training.py::test_heldout_negative_elbo",
                  "test_vae_training.py::test_sample_quality", "test_vae_training.py::test_samples_are_not_copies"],
        "message": "the KL has the wrong sign",
    },
    "mean_over_pixels_instead_of_sum": {
        "replace": [('F.cross_entropy(logits, x, reduction="none").flatten(1).sum(dim=1)', 'F.cross_entropy(logits, x, reduction="none").flatten(1).mean(dim=1)')],
        "fails": ["test_vae_parts.py::test_reconstruction", "test_vae_parts.py::test_negative_elbo", "test_vae_training.py::test_heldout_negative_elbo", "test_vae_training.py::test_sample_quality"],
        "message": "sum the cross-entropy over the H * W pixels",
    },
    "sample_detached_no_trick": {
        "replace": [("return mu + torch.exp(0.5 * logvar) * eps", "return (mu + torch.exp(0.5 * logvar) * eps).detach()")],
        "fails": ["test_vae_parts.py::test_gradients_reach_the_encoder", "test_vae_training.py::test_heldout_negative_elbo", "test_vae_training.py::test_sample_quality"],
        "message": "no (or the wrong) gradient flows from the sample z back to mu",
    },
    "sample_from_distributions_without_rsample": {
        "replace": [("return mu + torch.exp(0.5 * logvar) * eps", "return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample()")],
        "fails": ["test_vae_parts.py::test_reparameterize", "test_vae_parts.py::test_gradients_reach_the_encoder", "test_vae_training.py::test_heldout_negative_elbo", "test_vae_training.py::test_sample_quality"],
        "message": "use the noise eps you are given",
    },
}
