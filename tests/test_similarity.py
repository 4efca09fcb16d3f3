"""``coursekit similarity``: planted near-copies among honest variants rank first; the given code does not count.

A small kit (COURSEKIT_ROOT) holds the student notebook of an assignment ``sim`` with its given code (signatures,
docstrings, ``raise NotImplementedError()``). Six students solve it each in their own way; two more hand in a copy of
one of them, one with every name changed and its comments rewritten, one with its functions in another order. The
two planted pairs must be the two most similar pairs; an untouched notebook is not compared; everything students
wrote is escaped in the report.
"""

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import cli
from coursekit.similarity import SimilarityOptions, similarity_report

GIVEN_IMPORTS = "import math\n\nimport torch\nimport torch.nn.functional as F\n"
SIGS = {
    "one_hot_pixels": ('def one_hot_pixels(x, K):\n    """1-of-K encoding of palette pixels: (...,) long -> (..., K) float, '
                       'one 1 per row at the pixel\'s colour index."""\n'),
    "shift_right": ('def shift_right(seq, k):\n    """Delay a batch of sequences (B, T) by k steps: out[:, t] = seq[:, t - k], '
                    'the first k steps filled with zeros."""\n'),
    "nll_bits": ('def nll_bits(logits, target):\n    """Average negative log-likelihood of target (B, T) under logits (B, T, K), '
                 'in bits per pixel."""\n'),
    "sample": ('def sample(logits, temperature=1.0, generator=None):\n    """One colour index per row of logits (B, K), drawn '
               'at the given temperature; temperature 0 takes the most likely colour."""\n'),
}
TODO = "    # YOUR CODE HERE\n    raise NotImplementedError()\n"
# code the answer cell gives whole, which every student keeps
GIVEN_HELPER = ('def as_batch(x, K=None):\n    """Given: one image becomes a batch of one; checks the colour indices."""\n'
                "    if x.dim() == 1:\n        x = x.unsqueeze(0)\n    if x.dtype != torch.long:\n        x = x.long()\n"
                "    if K is not None and (x.min() < 0 or x.max() >= K):\n        raise ValueError(f'colour indices must lie in 0..{K - 1}')\n"
                "    return x\n\n\n")
CELLS = (("onehot_shift", ("one_hot_pixels", "shift_right")), ("loss_sample", ("nll_bits", "sample")))

# six honest students: the same four functions, written each in their own way
HONEST = {
    "ada": {
        "one_hot_pixels": "    return F.one_hot(x.long(), K).float()\n",
        "shift_right": "    B, T = seq.shape\n    out = torch.zeros_like(seq)\n    if k < T:\n        out[:, k:] = seq[:, : T - k]\n    return out\n",
        "nll_bits": "    nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))\n    return nats / math.log(2)\n",
        "sample": ("    if temperature == 0:\n        return logits.argmax(dim=-1)\n    probs = torch.softmax(logits / temperature, dim=-1)\n"
                   "    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)\n"),
    },
    "ben": {
        "one_hot_pixels": "    eye = torch.eye(K, device=x.device)\n    return eye[x]\n",
        "shift_right": "    pad = seq.new_zeros(seq.shape[0], k)\n    joined = torch.cat([pad, seq], dim=1)\n    return joined[:, : seq.shape[1]]\n",
        "nll_bits": ("    logp = torch.log_softmax(logits, dim=-1)\n    picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)\n"
                     "    return -picked.mean() / math.log(2.0)\n"),
        "sample": ("    if temperature <= 0:\n        return torch.argmax(logits, -1)\n    u = torch.rand(logits.shape, generator=generator)\n"
                   "    gumbel = -torch.log(-torch.log(u.clamp_min(1e-9)))\n    return torch.argmax(logits / temperature + gumbel, -1)\n"),
    },
    "cleo": {
        "one_hot_pixels": "    out = torch.zeros(*x.shape, K)\n    out.scatter_(-1, x.unsqueeze(-1), 1.0)\n    return out\n",
        "shift_right": ("    result = []\n    for t in range(seq.shape[1]):\n        if t < k:\n            result.append(torch.zeros_like(seq[:, 0]))\n"
                        "        else:\n            result.append(seq[:, t - k])\n    return torch.stack(result, dim=1)\n"),
        "nll_bits": ("    flat_logits = logits.flatten(0, 1)\n    flat_target = target.flatten()\n"
                     "    loss = F.nll_loss(F.log_softmax(flat_logits, dim=1), flat_target)\n    return loss * (1 / math.log(2))\n"),
        "sample": ("    batch = logits.shape[0]\n    if temperature == 0.0:\n        return logits.max(dim=1).indices\n"
                   "    dist = torch.distributions.Categorical(logits=logits / temperature)\n    return dist.sample()\n"),
    },
    "dev": {
        "one_hot_pixels": ("    shape = tuple(x.shape) + (K,)\n    flat = x.reshape(-1)\n    table = torch.zeros(flat.numel(), K)\n"
                           "    table[torch.arange(flat.numel()), flat] = 1.0\n    return table.reshape(shape)\n"),
        "shift_right": "    if k == 0:\n        return seq.clone()\n    return F.pad(seq, (k, 0))[:, :-k]\n",
        "nll_bits": ("    total = 0.0\n    count = 0\n    for b in range(logits.shape[0]):\n"
                     "        total = total + F.cross_entropy(logits[b], target[b], reduction='sum')\n        count += target[b].numel()\n"
                     "    return total / count / math.log(2)\n"),
        "sample": ("    if not temperature:\n        return torch.argmax(logits, dim=1)\n    scaled = logits / float(temperature)\n"
                   "    p = scaled.softmax(1)\n    cdf = p.cumsum(1)\n    r = torch.rand(p.shape[0], 1, generator=generator)\n"
                   "    return (cdf < r).sum(1).clamp_max(p.shape[1] - 1)\n"),
    },
    "emi": {
        "one_hot_pixels": "    classes = torch.arange(K, device=x.device)\n    return (x.unsqueeze(-1) == classes).to(torch.float32)\n",
        "shift_right": ("    T = seq.size(1)\n    shifted = torch.roll(seq, shifts=k, dims=1)\n    if k > 0:\n        shifted[:, :min(k, T)] = 0\n"
                        "    return shifted\n"),
        "nll_bits": ("    B, T, K = logits.shape\n    lse = torch.logsumexp(logits, dim=2)\n"
                     "    chosen = torch.take_along_dim(logits, target[..., None], dim=2)[..., 0]\n"
                     "    bits = (lse - chosen) / math.log(2)\n    return bits.mean()\n"),
        "sample": ("    greedy = temperature == 0\n    if greedy:\n        return logits.argmax(-1)\n    weights = F.softmax(logits.div(temperature), -1)\n"
                   "    picks = weights.multinomial(num_samples=1, generator=generator)\n    return picks[:, 0]\n"),
    },
    "finn": {
        "one_hot_pixels": ("    if x.dtype != torch.long:\n        x = x.long()\n    encoded = torch.nn.functional.one_hot(x, num_classes=K)\n"
                           "    return encoded.type(torch.float)\n"),
        "shift_right": ("    B = seq.shape[0]\n    zeros = torch.zeros((B, k), dtype=seq.dtype, device=seq.device)\n"
                        "    keep = seq.shape[1] - k\n    return torch.hstack((zeros, seq[:, :keep])) if keep > 0 else zeros[:, : seq.shape[1]]\n"),
        "nll_bits": ("    criterion = torch.nn.CrossEntropyLoss()\n    value = criterion(logits.permute(0, 2, 1), target)\n"
                     "    LN2 = 0.6931471805599453\n    return value / LN2\n"),
        "sample": ("    out = []\n    for row in logits:\n        if temperature == 0:\n            out.append(int(row.argmax()))\n            continue\n"
                   "        pr = torch.softmax(row / temperature, 0)\n        out.append(int(torch.multinomial(pr, 1, generator=generator)))\n"
                   "    return torch.tensor(out)\n"),
    },
}

# planted 1: ada's code with every name changed and new comments
RENAMED = {
    "one_hot_pixels": "    # encode each pixel\n    return F.one_hot(x.long(), K).float()\n",
    "shift_right": ("    n_rows, n_steps = seq.shape\n    delayed = torch.zeros_like(seq)  # start from zeros\n    if k < n_steps:\n"
                    "        delayed[:, k:] = seq[:, : n_steps - k]\n    return delayed\n"),
    "nll_bits": ("    loss_nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))\n"
                 "    return loss_nats / math.log(2)  # nats to bits\n"),
    "sample": ("    if temperature == 0:\n        return logits.argmax(dim=-1)\n    p_cols = torch.softmax(logits / temperature, dim=-1)\n"
               "    return torch.multinomial(p_cols, 1, generator=generator).squeeze(-1)\n"),
}


def _cells(bodies: dict, order=CELLS) -> list:
    cells = []
    for gid, names in order:
        cells.append((gid, (GIVEN_HELPER if gid == "onehot_shift" else "") + "\n\n".join(SIGS[n] + bodies[n] for n in names)))
    return cells


def _write(path: Path, cells: list, given=True) -> Path:
    nb = new_notebook(metadata={"coursekit": {"assignment": "sim"}})
    nb.cells = [new_markdown_cell("# Similarity test"), new_code_cell(GIVEN_IMPORTS)]
    for gid, src in cells:
        nb.cells.append(new_code_cell(src, metadata={"nbgrader": {"solution": True, "grade": False, "locked": False,
                                                                  "grade_id": gid, "schema_version": 3}}))
        nb.cells.append(new_code_cell(f"check_{gid}(globals())", metadata={"tags": ["check"]}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("simkit")
    (root / "autograder").mkdir()
    (root / "solutions").mkdir()
    _write(root / "assignments" / "sim" / "sim.ipynb", _cells({n: TODO for n in SIGS}))
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def submissions(kit, tmp_path_factory):
    sub = tmp_path_factory.mktemp("submitted")
    for name, bodies in HONEST.items():
        _write(sub / name / "sim" / "sim.ipynb", _cells(bodies))
    _write(sub / "gus" / "sim" / "sim.ipynb", _cells(RENAMED))  # ada's, renamed
    # finn's, with its functions in the other order (and the cells swapped)
    swapped = (("loss_sample", ("sample", "nll_bits")), ("onehot_shift", ("shift_right", "one_hot_pixels")))
    _write(sub / "hana" / "sim" / "sim.ipynb", _cells(HONEST["finn"], swapped))
    _write(sub / "ivo" / "sim" / "sim.ipynb", _cells({n: TODO for n in SIGS}))  # untouched
    # a student whose name and code try to break out of the page
    evil = {
        "one_hot_pixels": "    s = '</div><script>alert(1)</script>'\n    return torch.stack([(x == c).float() for c in range(K)], dim=-1)\n",
        "shift_right": "    idx = torch.arange(seq.shape[1]) - k\n    gathered = seq[:, idx.clamp_min(0)]\n    return gathered * (idx >= 0)\n",
        "nll_bits": "    per_pixel = -F.log_softmax(logits, -1).gather(2, target[:, :, None])\n    return per_pixel.sum() / target.numel() / math.log(2)\n",
        "sample": "    t = max(temperature, 1e-6)\n    noise = torch.empty_like(logits).exponential_(generator=generator)\n    return (logits / t - noise.log()).argmax(1)\n",
    }
    _write(sub / "<script>x" / "sim" / "sim.ipynb", _cells(evil))
    return sub


def test_planted_pairs_rank_first_and_given_code_does_not_count(submissions, tmp_path):
    out = tmp_path / "report.html"
    res = similarity_report([submissions], "sim", out)
    ranked = [frozenset((p.a.student, p.b.student)) for p in res.pairs]
    assert set(ranked[:2]) == {frozenset(("ada", "gus")), frozenset(("finn", "hana"))}, [
        (sorted(r), round(p.score, 3)) for r, p in zip(ranked[:5], res.pairs[:5])]
    top2, rest = res.pairs[1].score, res.pairs[2].score
    assert top2 > 0.9 and rest < 0.3, (top2, rest)  # copies share most of their code; honest work far less
    # the untouched notebook holds only given code: nothing of its own to compare
    assert ("ivo", "too little code of their own beyond what the notebook gives") in res.left_out
    assert len(res.students) == 9 and len(res.pairs) == 9 * 8 // 2
    page = out.read_text(encoding="utf-8")
    assert "evidence for a person to look at, not a verdict" in page
    # the side-by-side view highlights the shared lines, never the given docstrings
    first = page.split('id="pair1"')[1].split('id="pair2"')[0]
    assert first.count('class="match"') >= 10
    for line in re.findall(r'<div class="match">(.*?)</div>', first):
        assert "1-of-K encoding" not in line and "YOUR CODE HERE" not in line
    # what students wrote is escaped: their names and their code
    assert "<script>" not in page and "&lt;script&gt;x" in page


def test_without_discounting_the_given_code_every_pair_looks_alike(submissions, tmp_path, monkeypatch):
    """The discount is what keeps honest pairs apart: without it, the helper the notebook gives counts as shared
    code of every pair, and the untouched notebook is compared too."""
    import coursekit.similarity as sim

    def honest_scores(res):
        return [p.score for p in res.pairs if {p.a.student, p.b.student} <= set(HONEST)]

    with_discount = honest_scores(similarity_report([submissions], "sim", tmp_path / "a.html"))
    monkeypatch.setattr(sim, "given_code", lambda assignment: "")
    res = similarity_report([submissions], "sim", tmp_path / "b.html")
    assert not any(s == "ivo" for s, _ in res.left_out)
    without = honest_scores(res)
    assert min(without) > 0.1 and min(with_discount) < 0.05, (min(without), min(with_discount))
    assert sum(without) / len(without) > sum(with_discount) / len(with_discount) + 0.1


def test_cli_writes_the_report_and_keeps_an_existing_file(submissions, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert cli.main(["similarity", str(submissions), "-a", "sim", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "compared 9 student(s), 36 pair(s)" in said and "not a verdict" in said
    assert cli.main(["similarity", str(submissions), "-a", "sim", "-o", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert cli.main(["similarity", str(submissions), "-a", "nope", "-o", str(tmp_path / "x.html")]) == 2
    assert "no student notebook for assignment 'nope'" in capsys.readouterr().err


def test_options_are_checked():
    with pytest.raises(ValueError, match="guarantee"):
        similarity_report([], "sim", "x.html", SimilarityOptions(noise=30, guarantee=20))
