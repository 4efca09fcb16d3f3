"""Sampling and completion: shapes, randomness, temperature, no copies, the known part kept."""

import torch


def _samples(probe, run, n, temperature=1.0, sample_seed=0):
    out = probe("sample", config=run["config"], k=run["k"], w=run["w"], h=run["h"], state=run["state"], n=n,
                temperature=temperature, sample_seed=sample_seed)
    s = out["samples"]
    assert torch.is_tensor(s), f"sample() should return a tensor of colour indices, got {type(s).__name__}"
    return s


def test_sample_shape_and_range(probe, graded_run, data, attach):
    K, (H, W) = data.num_colors, data.image_shape
    s = _samples(probe, graded_run, 16)
    assert tuple(s.shape) == (16, H, W), f"sample(model, 16, {H}, {W}) should return (16, {H}, {W}), got {tuple(s.shape)}"
    assert not s.is_floating_point(), f"samples should be integer colour indices, got {s.dtype}"
    assert int(s.min()) >= 0 and int(s.max()) < K, f"samples should lie in 0..{K - 1}"
    attach.grid("your samples after the graders' training", s, data.palette, ncols=8)


def test_sample_uses_randomness(probe, graded_run, profile):
    n = profile["samples"]
    a, a2, b = (_samples(probe, graded_run, n, sample_seed=s) for s in (1, 1, 2))
    assert torch.equal(a, a2), "two generators with the same seed gave different samples: draw every random number with `generator`"
    assert not torch.equal(a, b), "two generators with different seeds gave the same samples: sample from softmax(logits / temperature) (torch.multinomial), do not take the argmax"
    distinct = len({tuple(x.flatten().tolist()) for x in a})
    assert distinct > n // 2, f"only {distinct} of {n} samples differ from each other: each pixel should be drawn at random from the model's distribution"


def test_temperature(probe, graded_run, profile):
    n = profile["samples"]
    cold = _samples(probe, graded_run, n, temperature=0.3, sample_seed=3)
    hot = _samples(probe, graded_run, n, temperature=1.5, sample_seed=3)
    colours = lambda s: sum(len(torch.unique(x)) for x in s) / len(s)  # noqa: E731
    assert colours(cold) < colours(hot), (
        f"samples at temperature 0.3 use {colours(cold):.1f} colours per image, at 1.5 {colours(hot):.1f}: "
        "a lower temperature should sharpen the distribution (divide the logits by the temperature before the softmax)"
    )


def test_samples_not_copies(probe, graded_run, profile, data):
    """No sample reproduces a training or held-out image, whole, mirrored, shifted, with scattered pixels changed or in
    half, more often than fresh real images do (coursekit.metrics.copies, thresholds measured on the data)."""
    from coursekit.metrics.copies import course_copies

    s = _samples(probe, graded_run, profile["samples"], sample_seed=4)
    assert tuple(s.shape[1:]) == data.image_shape and not s.is_floating_point(), "samples have the wrong shape or type"
    report = course_copies(s, data)
    assert not report.copying, (
        "sample() should draw every pixel from the model, so that its images are new: " + report.message)


def _complete(probe, run, data, n_known, sample_seed, n=6):
    h, w = data.image_shape
    images = data.sequences("test")[:n].clone()  # the graders' held-out images: only their first n_known pixels are sent
    images[:, n_known:] = 0
    images = images.reshape(n, h, w)
    out = probe("complete", config=run["config"], k=run["k"], w=run["w"], state=run["state"], images=images, n_known=n_known,
                temperature=1.0, sample_seed=sample_seed)
    c = out["completed"]
    assert torch.is_tensor(c), f"complete() should return a tensor of colour indices, got {type(c).__name__}"
    return c


def test_completion_keeps_given_part(probe, graded_run, data, credit, attach):
    K, (H, W) = data.num_colors, data.image_shape
    T = H * W
    given = data.sequences("test")[:6]  # (6, T): the graders' held-out images
    for n_known, cover in ((T // 2, "50%"), (T // 4, "75%")):
        out = _complete(probe, graded_run, data, n_known, 0)
        if not credit.part(0.5, tuple(out.shape) == (6, H, W), f"complete should return images of shape {(6, H, W)}, got {tuple(out.shape)}"):
            continue
        flat = out.reshape(6, T)
        credit.part(1, torch.equal(flat[:, :n_known], given[:, :n_known]), f"complete(..., n_known={n_known}) changed some of the first {n_known} pixels; keep them as given")
        credit.part(0.5, int(flat.min()) >= 0 and int(flat.max()) < K, "completed pixels should be colour indices in 0..K-1")
        attach.grid(f"your completions with {cover} covered", torch.cat([given.reshape(6, H, W), out]), data.palette, ncols=6)


def test_completion_varies(probe, graded_run, data):
    H, W = data.image_shape
    n_known = H * W // 2
    a, b = _complete(probe, graded_run, data, n_known, 1), _complete(probe, graded_run, data, n_known, 2)
    assert a.shape == b.shape == (6, H, W), "complete returned images of the wrong shape"
    differ = (a.reshape(6, -1)[:, n_known:] != b.reshape(6, -1)[:, n_known:]).any(dim=1).sum()
    assert differ >= 5, f"only {int(differ)} of 6 completions change with the random seed: sample the missing pixels, do not take the argmax"
