"""Causality checked in the same calls that are graded, in workers that cannot compare notes.

An autoregressive model's output at position t may depend only on the positions before t.
Checking that with gradients, or in a call of its own, lets a model that reads the pixel it
predicts behave whenever it is being checked. So the check rides on the graded evaluation:

- every graded sequence x_i gets one *variant*: the same prefix up to a branch point b_i, and
  from b_i on the suffix of another sequence (a donor), chosen so that the variant differs
  from x_i at b_i;
- the sequences go to two workers, shuffled: worker 0 gets half of the originals and the
  variants of the other half, worker 1 the rest. No worker ever holds an original together with
  its own variant, so none can tell where a sequence branches, or which positions are checked;
- the grader scores only the originals (all positions: the graded figure is unchanged), and
  checks that each original's outputs at positions 0..b_i equal its variant's. A model that
  peeks at position t changes its output at t = b_i; a model whose output depends on the other
  sequences of its batch disagrees too.

The branch points are spread over all positions, so a model peeking at a share f of the
positions is caught with probability about 1 - (1 - f)^n for n sequences: peeking enough to
matter (a tenth of the positions) is caught almost surely with n >= 50.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TwoWorkerSplit:
    inputs: tuple[torch.Tensor, torch.Tensor]  # the sequences each worker gets, (n_0, T) and (n_1, T)
    original_at: torch.Tensor  # (n, 2) long: worker and row of original i
    variant_at: torch.Tensor  # (n, 2) long: worker and row of the variant of i
    branch: torch.Tensor  # (n,) long: the first position where the variant differs from original i


def split_for_two_workers(x: torch.Tensor, seed: int, donors: torch.Tensor | None = None, num_values: int | None = None) -> TwoWorkerSplit:
    """Originals ``x`` (n, T) long, their variants and a shuffled split between two workers.

    The variant of x_i keeps x_i[:b_i] and takes the suffix [b_i:] of a donor sequence (``donors``,
    default ``x`` itself: real continuations, as likely as the originals') whose value at b_i differs
    from x_i's; with no such donor, position b_i gets another value (of ``num_values``) and the rest
    of the suffix stays. Branch points are stratified over 0..T-1, so every region of the sequence is checked.
    """
    n, T = x.shape
    if n < 2:
        raise ValueError("the causality check needs at least two sequences")
    g = torch.Generator().manual_seed(int(seed))
    donors = x if donors is None else donors
    k = int(num_values if num_values is not None else max(int(x.max()), int(donors.max())) + 1)
    # stratified branch points: n evenly spaced positions, jittered, then shuffled over the sequences
    branch = ((torch.arange(n, dtype=torch.float64) + torch.rand(n, generator=g, dtype=torch.float64)) * T / n).long().clamp(0, T - 1)
    branch = branch[torch.randperm(n, generator=g)]
    variants = x.clone()
    for i in range(n):
        b = int(branch[i])
        order = torch.randperm(len(donors), generator=g)
        donor = next((int(j) for j in order if int(donors[j, b]) != int(x[i, b]) and not torch.equal(donors[j], x[i])), None)
        if donor is not None:
            variants[i, b:] = donors[donor, b:]
        else:
            variants[i, b] = (x[i, b] + 1 + torch.randint(0, k - 1, (), generator=g)) % k
    half = torch.zeros(n, dtype=torch.long)
    half[torch.randperm(n, generator=g)[: n // 2]] = 1  # the worker of each original; its variant goes to the other
    rows: list[list[torch.Tensor]] = [[], []]
    original_at, variant_at = torch.zeros(n, 2, dtype=torch.long), torch.zeros(n, 2, dtype=torch.long)
    for i in range(n):
        w = int(half[i])
        original_at[i] = torch.tensor([w, len(rows[w])])
        rows[w].append(x[i])
        variant_at[i] = torch.tensor([1 - w, len(rows[1 - w])])
        rows[1 - w].append(variants[i])
    inputs = []
    for w in (0, 1):  # shuffle each worker's rows so originals and variants are not in blocks
        perm = torch.randperm(len(rows[w]), generator=g)
        where = torch.empty_like(perm)
        where[perm] = torch.arange(len(perm))  # row r moves to position where[r]
        inputs.append(torch.stack(rows[w])[perm])
        for at in (original_at, variant_at):
            mask = at[:, 0] == w
            at[mask, 1] = where[at[mask, 1]]
    return TwoWorkerSplit((inputs[0], inputs[1]), original_at, variant_at, branch)


def streamed_disagreement(split: TwoWorkerSplit, outputs_of, size: int = 16, transform=None, on_original=None,
                          worker_done=None) -> torch.Tensor:
    """``prefix_disagreement`` of the split's originals and variants (n, T), with the outputs asked a few rows at a time
    and one worker after the other, so that the grader holds a few sequences' outputs at a time and never needs both
    workers alive at once (the held-out logits of a whole split, (n, T, K) per worker, and three processes with torch
    do not fit in Gradescope's 768 MB).

    ``outputs_of(w, rows)``: worker ``w``'s outputs (len(rows), T, ...) for ``split.inputs[w][rows]`` (rows in the
    worker's own shuffled order, ``size`` at a time; every row once); ``transform`` (default: float64) is applied to
    them before they are compared, as ``prefix_disagreement`` would compare the whole split's (e.g. log_softmax);
    ``on_original(i, out)`` gets each original's transformed outputs (T, ...), to score it; ``worker_done(w)`` is
    called when worker ``w`` has given all its rows (to end it). Of worker 0's outputs only each pair's prefix (up to
    its branch point) is kept until worker 1 gives the partner's: about half of one worker's outputs."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    transform = transform or (lambda o: o.double())
    n, T = len(split.branch), split.inputs[0].shape[1]
    role: dict[tuple[int, int], tuple[int, bool]] = {}
    for at, is_original in ((split.original_at, True), (split.variant_at, False)):
        for i, (w, r) in enumerate(at.tolist()):
            role[(w, r)] = (i, is_original)
    kept: dict[int, torch.Tensor] = {}  # pair -> worker 0's outputs up to its branch point
    d = torch.full((n, T), float("nan"), dtype=torch.float64)
    for w in (0, 1):
        m = len(split.inputs[w])
        for lo in range(0, m, size):
            rows = torch.arange(lo, min(lo + size, m))
            out = transform(outputs_of(w, rows))
            for j, r in enumerate(rows.tolist()):
                i, is_original = role[(w, r)]
                if is_original and on_original is not None:
                    on_original(i, out[j])
                b = int(split.branch[i])
                if w == 0:
                    kept[i] = out[j, : b + 1].clone()
                else:
                    mine = out[j, : b + 1]
                    pair = (kept.pop(i), mine) if is_original else (mine, kept.pop(i))  # as (original, variant)
                    d[i, : b + 1] = prefix_disagreement(pair[0][None], pair[1][None], split.branch[i : i + 1])[0]
            del out
        if worker_done is not None:
            worker_done(w)
    return d


def gather(outputs: tuple[torch.Tensor, torch.Tensor], split: TwoWorkerSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """The two workers' outputs (n_w, T, ...) rearranged as (originals, variants), each (n, T, ...)."""
    def pick(at):
        return torch.stack([outputs[int(w)][int(r)] for w, r in at])

    return pick(split.original_at), pick(split.variant_at)


def prefix_disagreement(original: torch.Tensor, variant: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """(n, T): the largest absolute difference of the outputs (n, T, K) at each position, NaN after the branch
    point (where the two may differ). Outputs at positions 0..b_i must agree."""
    n, T = original.shape[:2]
    diff = (original.double() - variant.double()).abs().reshape(n, T, -1).amax(-1)  # (n, T)
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
    after = torch.arange(T)[None, :] > branch[:, None]
    return diff.masked_fill(after, float("nan"))


def first_violation(original: torch.Tensor, variant: torch.Tensor, branch: torch.Tensor, tol: float) -> dict | None:
    """None when every original agrees with its variant up to its branch point (within ``tol``); else the
    worst case: {"sequence", "position", "branch", "difference", "share"} (share: of the sequences that disagree)."""
    return violation_in(prefix_disagreement(original, variant, branch), branch, tol)


def violation_in(d: torch.Tensor, branch: torch.Tensor, tol: float) -> dict | None:
    """``first_violation`` from the disagreement ``d`` (n, T) of ``prefix_disagreement`` (or of
    ``streamed_disagreement``)."""
    bad = torch.nan_to_num(d, nan=0.0) > tol
    if not bool(bad.any()):
        return None
    per_seq = bad.any(1)
    i = int(per_seq.nonzero()[0])
    t = int(bad[i].nonzero()[0])
    return {"sequence": i, "position": t, "branch": int(branch[i]), "difference": float(d[i, t]),
            "share": float(per_seq.double().mean())}
