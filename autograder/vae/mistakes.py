"""Typical mistakes of assignment 2 (VAE), each put into the solution notebook by text replacement.

``fails``: the grader tests the mistake makes fail (exactly these; ``tests/test_vae_graders.py``
checks it through the real grading engine); ``message``: a piece of what the student reads in
the first of them. The training graders' failures were measured (smoke profile, torch 2.13 CPU):
every mistake but the KL with log-std also makes the seeded training run miss its thresholds.
"""

MISTAKES = {
    "logstd_taken_as_logvar_in_the_sample": {
        "replace": [("return mu + torch.exp(0.5 * logvar) * eps", "return mu + torch.exp(logvar) * eps")],
        "fails": ["test_vae_parts.py::test_reparameterize", "test_vae_parts.py::test_gradients_reach_the_encoder", "test_vae_training.py::test_heldout_negative_elbo"],
        "message": "as if logvar were the log standard deviation",
    },
    "logstd_taken_as_logvar_in_the_kl": {
        "replace": [("0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)", "0.5 * (mu.pow(2) + (2 * logvar).exp() - 1.0 - 2 * logvar)")],
        "fails": ["test_vae_parts.py::test_kl_divergence", "test_vae_parts.py::test_negative_elbo"],
        "message": "it treats logvar as the log standard deviation",
    },
    "kl_with_the_wrong_sign": {
        "replace": [("return 0.5 * (mu.pow(2) + logvar.exp()", "return -0.5 * (mu.pow(2) + logvar.exp()")],
        "fails": ["test_vae_parts.py::test_kl_divergence", "test_vae_parts.py::test_negative_elbo", "test_vae_training.py::test_heldout_negative_elbo", "test_vae_training.py::test_sample_quality"],
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
