"""Typical mistakes of assignment 1, made from the solution by text replacement.

``coursekit demo`` grades them beside the reference; ``tests/test_pixelrnn_graders.py``
proves each fails the grader aimed at it (``fails``), with a message the student can act on
(``message``), while the graders it must not upset still pass (``passes``).
"""

MISTAKES = {
    "wrong_shape": {  # logits laid out (B, K, T), as F.cross_entropy would want them
        "replace": [("        return self.head(self.drop(h))\n        ### END SOLUTION\n\n    def step(self, x, t, state=None):\n"
                     "        \"\"\"One step of generation: the logits of pixel t from x[:, t-1], x[:, t-W], x[:, t-W+1]",
                     "        return self.head(self.drop(h)).transpose(1, 2)\n        ### END SOLUTION\n\n    def step(self, x, t, state=None):\n"
                     "        \"\"\"One step of generation: the logits of pixel t from x[:, t-1], x[:, t-W], x[:, t-W+1]")],
        "fails": ["test_models.py::test_above_output_shape"],
        "passes": ["test_models.py::test_plain_output_shape", "test_encoding_and_loss.py::test_one_hot"],
        "message": "should give logits (B, T, K)",
    },
    "ignores_above_right": {  # PixelLSTMAbove's step feeds zeros where the pixel above-right belongs
        "replace": [("        right = self.embed(one_hot_pixels(x[:, t - W + 1], self.K)) if t >= W and t % W != W - 1 else zeros",
                     "        right = zeros")],
        "fails": ["test_models.py::test_above_sees_pixel_above"],
        "passes": ["test_models.py::test_above_causal", "test_models.py::test_above_output_shape"],
        "message": "ignores x[:, t - W + 1], the pixel above-right",
    },
    "peeking_model": {  # the plain LSTM reads pixel t to predict pixel t
        "replace": [("h, _ = self.lstm(shift_right(self.embed(oh), 1))", "h, _ = self.lstm(self.embed(oh))")],
        "fails": ["test_models.py::test_plain_causal"],
        "passes": ["test_models.py::test_above_causal", "test_models.py::test_plain_output_shape"],
        "message": "is not causal",
    },
    "loss_in_bits": {  # nll_nats divides by ln 2
        "replace": [("return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))",
                     "return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1)) / math.log(2)")],
        "fails": ["test_encoding_and_loss.py::test_nll_nats"],
        "passes": ["test_encoding_and_loss.py::test_one_hot"],
        "message": "returns the loss in bits",
    },
    "bits_in_nats": {  # bits_per_pixel forgets to divide by ln 2
        "replace": [("return nll_nats(logits, target) / math.log(2)", "return nll_nats(logits, target)")],
        "fails": ["test_encoding_and_loss.py::test_bits_per_pixel"],
        "passes": ["test_encoding_and_loss.py::test_nll_nats"],
        "message": "returns nats",
    },
    "sample_returns_perturbed_training_images": {  # a "generator" that memorised: training images, 3% of pixels recoloured
        "replace": [("    canvas = torch.zeros(n, H * W, dtype=torch.long, device=device)\n    return generate(model, canvas, 0, temperature, generator).reshape(n, H, W)",
                     "    x = train_seq[torch.randint(0, len(train_seq), (n,), generator=generator)].clone()\n"
                     "    noise = torch.rand(x.shape, generator=generator) < 0.03\n"
                     "    x[noise] = torch.randint(0, K, (int(noise.sum()),), generator=generator)\n"
                     "    return x.reshape(n, H, W).to(device)")],
        # on the graders' own small model its "samples" are also far less likely than real draws, at any temperature
        "fails": ["test_generation.py::test_samples_not_copies", "test_generation.py::test_sample_uses_randomness",
                  "test_generation.py::test_temperature"],
        "passes": ["test_generation.py::test_sample_shape_and_range", "test_training.py::test_training_reaches_threshold"],
        "message": "match reference images far more often than fresh data does",
    },
    "argmax_sampling": {  # generation without randomness
        "replace": [("if temperature == 0:", "if True:")],
        "fails": ["test_generation.py::test_sample_uses_randomness", "test_generation.py::test_completion_varies",
                  "test_generation.py::test_temperature"],
        # greedy samples repeat each other: low diversity, which is not copying the data
        "passes": ["test_generation.py::test_sample_shape_and_range", "test_generation.py::test_completion_keeps_given_part",
                   "test_generation.py::test_samples_not_copies"],
        "message": "do not take the argmax",
    },
    "no_train": {  # train() left unwritten: generation is graded on the graders' own model all the same
        "replace": [("    ### BEGIN SOLUTION\n    device = torch.device(device) if device is not None else next(model.parameters()).device",
                     "    raise NotImplementedError()\n    device = torch.device(device) if device is not None else next(model.parameters()).device")],
        "fails": ["test_training.py::test_training_reaches_threshold"],
        "passes": ["test_generation.py::test_sample_shape_and_range", "test_generation.py::test_sample_uses_randomness",
                   "test_generation.py::test_temperature", "test_generation.py::test_samples_not_copies",
                   "test_generation.py::test_completion_keeps_given_part", "test_generation.py::test_completion_varies"],
        "message": "not implemented yet",
    },
    "completion_skips_known_pixels": {  # generate() starts the model at n_known: the LSTM never reads the known pixels
        "replace": [("        logits, state = model.step(x, t, state)  # the LSTM must read the known pixels too\n        if t < n_known:\n            continue",
                     "        if t < n_known:\n            continue\n        logits, state = model.step(x, t, state)")],
        "fails": ["test_generation.py::test_completion_varies"],
        "passes": ["test_generation.py::test_completion_keeps_given_part", "test_generation.py::test_sample_uses_randomness",
                   "test_generation.py::test_samples_not_copies"],
        "message": "the known ones included",
    },
    "generation_ignores_drawn_pixels": {  # the model is shown the empty canvas, never the pixels drawn so far
        "replace": [("logits, state = model.step(x, t, state)", "logits, state = model.step(canvas, t, state)")],
        "fails": ["test_generation.py::test_sample_uses_randomness", "test_generation.py::test_temperature",
                  "test_generation.py::test_completion_varies"],
        "passes": ["test_generation.py::test_sample_shape_and_range", "test_generation.py::test_completion_keeps_given_part",
                   "test_generation.py::test_samples_not_copies"],
        "message": "given the pixels drawn before it",
    },
}
