"""Fixtures of assignment 1's graders: expected values, the training budget, and the graded training run.

The student's model is trained once per grading session (``graded_run``): the grader sends the
training subset, gets the weights back as plain tensors, then has the held-out sequences and
their variants scored by two fresh workers that never see each other's inputs. Held-out bits
per pixel and causality are computed here, from the raw logits.
"""

import json
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pixelrnn_common as common  # noqa: E402

_RUNS: dict = {}  # (profile, seed) -> ("ok", run) or ("error", exception): one training per session


@pytest.fixture(scope="session")
def expected() -> dict:
    from coursekit.data import check_measured_on

    exp = json.loads((HERE / "expected.json").read_text())
    check_measured_on(exp, HERE / "expected.json")
    return exp


@pytest.fixture
def training(profile, expected) -> dict:
    """The profile's training budget and its measured threshold (expected.json must match profiles.json)."""
    info = expected["training"].get(profile["name"])
    if info is None or info["config"] != profile["train"]:
        raise RuntimeError(f"expected.json has no threshold for the {profile['name']} profile's budget: run `coursekit reference --assignment pixelrnn`")
    return info


@pytest.fixture(scope="session")
def data():
    """The course data set, with its held-out split, loaded in the grader's process (workers never see it whole)."""
    from coursekit.data import course_dataset

    return course_dataset()


def _cached(key, make):
    if key not in _RUNS:
        try:
            _RUNS[key] = ("ok", make())
        except Exception as e:  # noqa: BLE001 - the same failure for every test that needs this run
            _RUNS[key] = ("error", e)
    status, value = _RUNS[key]
    if status == "error":
        raise value
    return value


@pytest.fixture
def graded_run(probe, training, data):
    """The student's model trained with the student's train() for the profile's budget:
    {"state": weights, "losses", "config", "k", "h", "w"} (the weights as plain tensors)."""
    cfg, seed = training["config"], training["graded_seed"]

    def make():
        train, _, k, h, w = common.grading_data(cfg, data)
        train, val = common.validation_split(train, cfg)
        out = probe("train", config=cfg, seed=seed, train=train.to(torch.uint8), k=k, w=w,
                    val=None if val is None else val.to(torch.uint8))
        state = out.get("state")
        assert isinstance(state, dict) and all(torch.is_tensor(v) for v in state.values()), (
            "the trained model's weights could not be read back (model.state_dict() should hold tensors)")
        return {"state": state, "losses": out.get("losses") or [], "config": cfg, "k": k, "h": h, "w": w}

    return _cached(("train", cfg["model"], json.dumps(cfg, sort_keys=True), seed), make)


HELDOUT_ROWS = 16  # with COURSEKIT_LOW_MEMORY: sequences per call (the grader holds the logits of 16 sequences at a time)


@pytest.fixture
def heldout_scores(probe, graded_run, data):
    """The trained model's held-out log-probabilities and its causality, from two workers' raw logits:
    {"bpp", "violation" (None or the worst disagreement), "n"}. The logits come a few sequences at a time, from one
    worker after the other (``causality.streamed_disagreement``: the trained worker, which then ends, then the second),
    and are reduced here at once to what is judged: each original's log-probability of its true pixels and its
    disagreement with its variant up to the branch point. (The held-out logits of the whole split, (n, T, K) from each
    worker, beside three processes with torch, do not fit in Gradescope's 768 MB.)"""
    import math

    from coursekit.grading.causality import streamed_disagreement, violation_in
    from coursekit.grading.memory import low_memory

    def make():
        r = graded_run
        x = data.sequences("test")
        n, T = x.shape
        split = common.heldout_split(x, r["k"])
        true_lp = torch.full((n, T), float("nan"), dtype=torch.float64)  # log-probability of each held-out pixel

        def logits_of(w, rows):
            inputs = split.inputs[w][rows]
            logits = probe("logits", worker=common.WORKERS[w], config=r["config"], k=r["k"], w=r["w"], state=r["state"], x=inputs)["logits"]
            return common.check_logits(logits, len(inputs), T, r["k"], "the trained model on held-out images")

        def score(i, lp):  # lp (T, K): an original's log-probabilities
            true_lp[i] = lp.gather(-1, x[i].long().unsqueeze(-1)).squeeze(-1)

        if low_memory():  # Gradescope: a few sequences at a time, one worker alive at once (the same figures, ~17 s slower)
            rows, done = HELDOUT_ROWS, (lambda w: probe.end(common.WORKERS[w]))
            probe.end(common.WORKERS[1])  # the structural checks' second worker: a fresh one scores its half, after the first ends
        else:  # memory to spare: each worker's half in one call, and the workers stay for the tests after this one
            rows, done = len(x), (lambda w: None)
        disagree = streamed_disagreement(split, logits_of, rows, transform=lambda o: torch.log_softmax(o.double(), -1),
                                         on_original=score, worker_done=done)
        return {"bpp": float(-true_lp.mean() / math.log(2)), "violation": violation_in(disagree, split.branch, common.CAUSAL_TOL),
                "n": n}

    return _cached(("heldout", id(graded_run["state"])), make)
