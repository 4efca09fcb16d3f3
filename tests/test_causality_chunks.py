"""The held-out causality check asked a few rows at a time, one worker after the other (causality.streamed_disagreement),
judges as the whole split does.

The PixelRNN graders ask the two workers for the held-out logits in pieces, so that the grader never holds the whole
split's logits and only one worker is alive at a time (Gradescope's 768 MB); these tests check that every row of each
worker is asked for once, in the worker's own order, worker 0 first, and that the figure and the violation are those
of the whole split, bit for bit.
"""

import math

import pytest
import torch

from coursekit.grading.causality import (first_violation, gather, prefix_disagreement, split_for_two_workers,
                                         streamed_disagreement, violation_in)

K, T, N = 6, 30, 37


def _split():
    x = torch.randint(0, K, (N, T), generator=torch.Generator().manual_seed(1))
    return x, split_for_two_workers(x, seed=5, num_values=K)


def _logits(x: torch.Tensor, peek_at: int | None = None) -> torch.Tensor:
    """A causal toy model (logits of t from the pixels before t), or one that peeks at pixel t itself at ``peek_at``."""
    table = torch.randn(K + 1, K, generator=torch.Generator().manual_seed(2))
    prev = torch.cat([torch.full((len(x), 1), K), x[:, :-1]], 1)
    out = table[prev].clone()
    if peek_at is not None:
        out[:, peek_at] += 3.0 * torch.nn.functional.one_hot(x[:, peek_at], K)
    return out


def _streamed(x, split, size, peek_at=None, asked=None, done=None):
    true_lp = torch.full((N, T), float("nan"), dtype=torch.float64)

    def outputs_of(w, rows):
        if asked is not None:
            asked.append((w, rows.tolist()))
        return _logits(split.inputs[w][rows], peek_at)

    def score(i, lp):
        true_lp[i] = lp.gather(-1, x[i].unsqueeze(-1)).squeeze(-1)

    d = streamed_disagreement(split, outputs_of, size, transform=lambda o: torch.log_softmax(o.double(), -1), on_original=score,
                              worker_done=None if done is None else done.append)
    return float(-true_lp.mean() / math.log(2)), violation_in(d, split.branch, 1e-6), d


def _whole(x, split, peek_at=None):
    o, v = gather(tuple(_logits(inp, peek_at) for inp in split.inputs), split)
    lo, lv = torch.log_softmax(o.double(), -1), torch.log_softmax(v.double(), -1)
    bpp = float(-lo.gather(-1, x.unsqueeze(-1)).mean() / math.log(2))
    return bpp, first_violation(lo, lv, split.branch, 1e-6), prefix_disagreement(lo, lv, split.branch)


def test_each_row_asked_once_in_the_workers_order_one_worker_after_the_other():
    x, split = _split()
    asked, done = [], []
    _streamed(x, split, 8, asked=asked, done=done)
    assert done == [0, 1]
    workers = [w for w, _ in asked]
    assert workers == sorted(workers)  # all of worker 0's calls, then worker 1's
    for w in (0, 1):
        rows = [r for v, rs in asked if v == w for r in rs]
        assert rows == list(range(len(split.inputs[w])))  # every row once, in the worker's own (shuffled) order
        assert all(len(rs) <= 8 for v, rs in asked if v == w)


@pytest.mark.parametrize("peek_at", [None, 17])
@pytest.mark.parametrize("size", [1, 8, 100])
def test_streamed_judgment_equals_the_whole_split(peek_at, size):
    x, split = _split()
    bpp, violation, d = _streamed(x, split, size, peek_at)
    want_bpp, want_violation, want_d = _whole(x, split, peek_at)
    assert bpp == pytest.approx(want_bpp, rel=1e-12)
    assert torch.equal(d.isnan(), want_d.isnan()) and torch.equal(torch.nan_to_num(d), torch.nan_to_num(want_d))
    assert violation == want_violation
    assert (violation is None) == (peek_at is None)  # the peeking model is caught, the causal one is not


def test_bad_chunk_size():
    with pytest.raises(ValueError, match="at least 1"):
        streamed_disagreement(_split()[1], lambda w, rows: None, 0)
