"""Sampling and completion: shapes, randomness, temperature, no copies, the known part kept.

Every test here runs the student's sample() and complete() on a small model the grader supplies
(``pixelrnn_common.known_tables``, built in the worker as ``probes.KnownModel``), whose distribution
the grader knows: generation is graded whatever the student's training did, and whether the draws
follow the model is measured here, from their log-likelihood under it against the grader's own
draws. The student's trained model only gives the pictures of the feedback page.
"""

import pytest
import torch
from pixelrnn_common import known_fit, known_tables


@pytest.fixture
def known(data) -> dict:
    """The graders' small model: its tables and the image size."""
    H, W = data.image_shape
    return {"tables": known_tables(data.num_colors), "k": data.num_colors, "h": H, "w": W}


def _samples(probe, known, n, temperature=1.0, sample_seed=0):
    out = probe("known_sample", tables=known["tables"], w=known["w"], h=known["h"], n=n, temperature=temperature, sample_seed=sample_seed)
    s = out.get("samples") if isinstance(out, dict) else None  # the worker's answer: anything at all
    assert torch.is_tensor(s), f"sample() should return a tensor of colour indices, got {type(s).__name__}"
    return s


def _valid(s, n, known) -> bool:
    return (torch.is_tensor(s) and tuple(s.shape) == (n, known["h"], known["w"]) and not s.is_floating_point()
            and int(s.min()) >= 0 and int(s.max()) < known["k"])


def _fit_message(what: str, fit: dict, temperature: float) -> str:
    return (f"{what} have a mean log-likelihood of {fit['got']:.3f} nats per pixel under the graders' model, where draws "
            f"from softmax(logits / {temperature:g}) have {fit['want']:.3f} (± {fit['tolerance']:.3f})")


def _trained_pictures(request, probe, data, attach) -> None:
    """The student's own trained model's samples and completions, for the feedback page only (never judged here)."""
    from coursekit.grading.sandbox import SubmissionError

    try:
        run = request.getfixturevalue("graded_run")
        H, W = data.image_shape
        s = probe("sample", config=run["config"], k=run["k"], w=run["w"], h=run["h"], state=run["state"], n=16,
                  temperature=1.0, sample_seed=0)["samples"]
        attach.grid("your samples from the model the graders trained with your train()", s, data.palette, ncols=8)
        given = data.sequences("train")[:6].clone()  # training images: this picture goes to the student, held-out images never do
        covered = given.clone()
        covered[:, H * W // 2:] = 0
        c = probe("complete", config=run["config"], k=run["k"], w=run["w"], state=run["state"], images=covered.reshape(6, H, W),
                  n_known=H * W // 2, temperature=1.0, sample_seed=0)["completed"]
        attach.grid("training images (top) and your trained model's completions of their bottom half (below)",
                    torch.cat([given.reshape(6, H, W), c]), data.palette, ncols=6)
    except (SubmissionError, AssertionError, RuntimeError, ValueError, TypeError, KeyError):
        pass  # no trained model, or no usable pictures: the tests below do not need them


def test_sample_shape_and_range(request, probe, known, data, attach):
    K, H, W = known["k"], known["h"], known["w"]
    s = _samples(probe, known, 16)
    assert tuple(s.shape) == (16, H, W), f"sample(model, 16, {H}, {W}) should return (16, {H}, {W}), got {tuple(s.shape)}"
    assert not s.is_floating_point(), f"samples should be integer colour indices, got {s.dtype}"
    assert int(s.min()) >= 0 and int(s.max()) < K, f"samples should lie in 0..{K - 1}"
    _trained_pictures(request, probe, data, attach)


def test_sample_uses_randomness(probe, known, profile):
    n = profile["samples"]
    a, a2, b = (_samples(probe, known, n, sample_seed=s) for s in (1, 1, 2))
    assert _valid(a, n, known) and _valid(b, n, known), "sample() returned images of the wrong shape or type, or colours out of range"
    assert torch.equal(a, a2), "two generators with the same seed gave different samples: draw every random number with `generator`"
    assert not torch.equal(a, b), "two generators with different seeds gave the same samples: sample from softmax(logits / temperature) (torch.multinomial), do not take the argmax"
    distinct = len({tuple(x.flatten().tolist()) for x in a})
    assert distinct > n // 2, f"only {distinct} of {n} samples differ from each other: each pixel should be drawn at random from the model's distribution"
    T = known["h"] * known["w"]
    fit = known_fit(known["tables"], a.reshape(n, T), torch.zeros(n, T, dtype=torch.long), 0, known["w"], 1.0)
    assert abs(fit["got"] - fit["want"]) <= fit["tolerance"], (
        _fit_message("samples at temperature 1", fit, 1.0) + ": draw pixel t from the model's logits for pixel t "
        "(model.step(x, t, state)), given the pixels drawn before it, which go back into x")


def test_temperature(probe, known, profile):
    n = profile["samples"]
    T = known["h"] * known["w"]
    fits = {}
    for tau in (0.3, 1.5):
        s = _samples(probe, known, n, temperature=tau, sample_seed=3)
        assert _valid(s, n, known), "sample() returned images of the wrong shape or type, or colours out of range"
        fits[tau] = known_fit(known["tables"], s.reshape(n, T), torch.zeros(n, T, dtype=torch.long), 0, known["w"], tau)
    cold, hot = fits[0.3], fits[1.5]
    assert cold["got"] > hot["got"], (
        f"samples at temperature 0.3 have a mean log-likelihood of {cold['got']:.3f} nats per pixel under the graders' model, "
        f"at 1.5 {hot['got']:.3f}: a lower temperature should sharpen the distribution (divide the logits by the temperature "
        "before the softmax)")
    for tau, fit in fits.items():
        assert abs(fit["got"] - fit["want"]) <= fit["tolerance"], (
            _fit_message(f"samples at temperature {tau:g}", fit, tau) + ": divide the logits by the temperature before the softmax")


def test_samples_not_copies(probe, known, profile, data):
    """No sample reproduces a training or held-out image, whole, mirrored, shifted, with scattered pixels changed or in
    half, more often than fresh real images do (coursekit.metrics.copies, thresholds measured on the data). Only
    distinct samples are compared: samples that repeat each other (greedy sampling) are low diversity, which
    test_sample_uses_randomness measures, not copying."""
    from coursekit.metrics.copies import course_copies

    n = profile["samples"]
    s = _samples(probe, known, n, sample_seed=4)
    assert _valid(s, n, known), "samples have the wrong shape or type"
    report = course_copies(s, data, distinct=True)
    assert not report.copying, (
        f"the samples your sample() drew from the graders' small model were compared with the training and held-out images: "
        + report.message + " Samples drawn pixel by pixel from a model are new images.")


def _complete(probe, known, data, n_known, sample_seed, n=6):
    h, w = data.image_shape
    images = data.sequences("test")[:n].clone()  # the graders' held-out images: only their first n_known pixels are sent
    images[:, n_known:] = 0
    images = images.reshape(n, h, w)
    out = probe("known_complete", tables=known["tables"], w=known["w"], images=images, n_known=n_known, temperature=1.0,
                sample_seed=sample_seed)
    c = out.get("completed") if isinstance(out, dict) else None
    assert torch.is_tensor(c), f"complete() should return a tensor of colour indices, got {type(c).__name__}"
    return c


def test_completion_keeps_given_part(probe, known, data, credit):
    K, (H, W) = data.num_colors, data.image_shape
    T = H * W
    given = data.sequences("test")[:6]  # (6, T): the graders' held-out images
    for n_known in (T // 2, T // 4):
        out = _complete(probe, known, data, n_known, 0)
        if not credit.part(0.5, tuple(out.shape) == (6, H, W), f"complete should return images of shape {(6, H, W)}, got {tuple(out.shape)}"):
            continue
        flat = out.reshape(6, T)
        credit.part(1, not flat.is_floating_point() and torch.equal(flat[:, :n_known].long(), given[:, :n_known]),
                    f"complete(..., n_known={n_known}) changed some of the first {n_known} pixels; keep them as given")
        credit.part(0.5, int(flat.min()) >= 0 and int(flat.max()) < K, "completed pixels should be colour indices in 0..K-1")


def test_completion_varies(probe, known, data):
    H, W = data.image_shape
    T = H * W
    n_known = T // 2
    a, b = _complete(probe, known, data, n_known, 1), _complete(probe, known, data, n_known, 2)
    assert a.shape == b.shape == (6, H, W), "complete returned images of the wrong shape"
    differ = (a.reshape(6, -1)[:, n_known:] != b.reshape(6, -1)[:, n_known:]).any(dim=1).sum()
    assert differ >= 5, f"only {int(differ)} of 6 completions change with the random seed: sample the missing pixels, do not take the argmax"
    got = torch.cat([a.reshape(6, T), b.reshape(6, T)]).long()
    prefix = data.sequences("test")[:6].clone().repeat(2, 1)
    if int(got.min()) < 0 or int(got.max()) >= known["k"] or not torch.equal(got[:, :n_known], prefix[:, :n_known]):
        return  # test_completion_keeps_given_part says what is wrong with the given part
    fit = known_fit(known["tables"], got, prefix, n_known, W, 1.0)
    assert abs(fit["got"] - fit["want"]) <= fit["tolerance"], (
        _fit_message("the completed pixels", fit, 1.0) + ": draw each missing pixel from the model's logits given every pixel "
        "before it, the known ones included")
