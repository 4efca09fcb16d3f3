"""Training with the submission's own code reaches a held-out bits-per-pixel threshold."""

import math

import torch


def test_training_reaches_threshold(probe, training, attach):
    cfg = training["config"]
    out = probe("train", config=cfg, seed=training["graded_seed"])
    logp, losses = out["logp"], out["losses"]
    if losses:
        attach.curve("your training loss (nats per pixel)", losses, ylabel="nats")
    assert logp.dim() == 2 and bool(torch.isfinite(logp).all()) and bool((logp <= 1e-5).all()), (
        "the trained model's outputs are not valid logits (the log-probabilities are not finite); check for NaN during training"
    )
    bpp = float(-logp.mean() / math.log(2))
    assert bpp <= training["threshold_bpp"], (
        f"after training {cfg['model']}(hidden={cfg['hidden']}) with your train() for {cfg['steps']} steps "
        f"(batch {cfg['batch_size']}, lr {cfg['lr']}) on {cfg['train_subset']} images, the held-out loss is {bpp:.3f} bits per pixel, "
        "above what the reference reaches with the same budget. Check that train() minimises nll_nats with Adam at the given lr, "
        "calls zero_grad/backward/step every step and draws batches of the given size"
    )
