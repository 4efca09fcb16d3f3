"""Training with the submission's own code reaches a held-out bits-per-pixel threshold, with a causal model.

The held-out figure is computed here from the raw logits of two workers (see conftest.py): the
same calls check that the trained model's prediction of each pixel does not change when only
that pixel or later ones change. A model that reads what it predicts gets no points here.
"""


def test_training_reaches_threshold(graded_run, heldout_scores, training, attach, record_property):
    cfg = training["config"]
    if graded_run["losses"]:
        attach.curve("your training loss (nats per pixel)", graded_run["losses"], ylabel="nats")
    v = heldout_scores["violation"]
    assert v is None, (
        f"the trained {cfg['model']} is not causal: its prediction of pixel {v['position']} of a held-out image changed "
        f"when only pixels from {v['branch']} on were changed (by {v['difference']:.3g} in log-probability; "
        f"{100 * v['share']:.0f}% of the checked images). The prediction of pixel t may use only pixels before t, "
        "and must not depend on the other images in the batch")
    bpp = heldout_scores["bpp"]
    record_property("leaderboard", {"name": "held-out bits per pixel", "value": bpp, "order": "asc"})  # of a causal model only
    assert bpp <= training["threshold_bpp"], (
        f"after training {cfg['model']}(hidden={cfg['hidden']}) with your train() for {cfg['steps']} steps "
        f"(batch {cfg['batch_size']}, lr {cfg['lr']}) on {cfg['train_subset']} images, the held-out loss is {bpp:.3f} bits per pixel, "
        "above what the reference reaches with the same budget. Check that train() minimises nll_nats with AdamW at the given lr "
        "and weight decay, calls zero_grad/backward/step every step, draws batches of the given size, and, given val, returns "
        "the weights that were best on it"
    )
