"""Shards: a fixed part of the submissions by a hash of student and assignment, graded into a shared OUT; the merge
builds the gradebook from what is complete and lists what is missing. The gradebook of the shards equals the one of a
single --jobs run of the same batch. The toy kit keeps it fast."""

import random
import shutil
import string
from pathlib import Path

import pytest

from coursekit import cli
from coursekit.grading.engine import grade_batch
from coursekit.grading.gradebook import NOT_GRADED
from coursekit.grading.shards import Shard, merge, parse_shard, shard_of
from coursekit.grading.submissions import discover

from toy_batch import CODES, gradebook_rows, options, toy_class

# --- which submission is whose ---------------------------------------------------------------------------------------
def test_shard_syntax_is_checked_with_a_clear_message():
    assert parse_shard("3/8") == Shard(3, 8) and str(parse_shard(" 0 / 1 ")) == "0/1"
    for bad, says in (("8/8", "0 <= K < N"), ("1/0", "N >= 1"), ("3", "expected K/N"), ("a/b", "expected K/N"), ("-1/4", "expected K/N")):
        with pytest.raises(ValueError, match=says):
            parse_shard(bad)


def _ids(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [("".join(rng.choices(string.ascii_lowercase, k=8)), rng.choice(["pixelrnn", "vae", "gan"])) for _ in range(n)]


def test_every_submission_is_in_exactly_one_shard_and_late_ones_move_nobody():
    ids = _ids(300, 0)
    for n in (1, 4, 7, 500):
        before = {i: shard_of(*i, n) for i in ids}
        assert all(0 <= k < n for k in before.values())
        assert all(sum(Shard(k, n).holds(*i) for k in range(n)) == 1 for i in ids[:20])
        assert {i: shard_of(*i, n) for i in reversed(ids)} == before  # the identity alone decides, not the order
    sizes = [sum(shard_of(*i, 4) == k for i in ids) for k in range(4)]
    assert min(sizes) > 50, sizes  # a hash spreads them (75 each on average)
    # the student and the assignment both count
    assert len({shard_of("alice", a, 1000) for a in ("pixelrnn", "vae", "gan")}) > 1


def test_a_late_submission_moves_no_other_between_shards(tmp_path):
    """By position (sorted names) a new first student would shift everyone; by identity nobody moves."""
    known = ["toy"]
    toy_class(tmp_path / "class", {f"student{i:02d}": "x = 1\n" for i in range(12)})
    shard_before = {s.student: shard_of(s.student, s.assignment, 3) for s in discover([tmp_path / "class"], known, known=known).submissions}
    toy_class(tmp_path / "class", {"aaron": "x = 1\n"})  # handed in late, sorts first
    after = discover([tmp_path / "class"], known, known=known).submissions
    assert {s.student: shard_of(s.student, s.assignment, 3) for s in after if s.student != "aaron"} == shard_before
    # the check can fail: sharding by position (sorted names) would have moved the others
    by_position = lambda subs: {s.student: i % 3 for i, s in enumerate(sorted(subs, key=lambda s: s.student))}  # noqa: E731
    before_pos = by_position([s for s in after if s.student != "aaron"])
    assert {k: v for k, v in by_position(after).items() if k != "aaron"} != before_pos


# --- grading in shards and merging -----------------------------------------------------------------------------------
def _holding(cls: Path, count: int) -> tuple[int, int]:
    """Two shards of ``count``: one holding submissions, one holding none."""
    hit = {shard_of(name, "toy", count) for name in CODES}
    return min(hit), min(set(range(count)) - hit)


@pytest.mark.slow
def test_shards_merged_equal_one_jobs_run_and_the_merge_says_what_is_missing(toykit, toy_whole_run, tmp_path, capsys):
    cls, whole_out = toy_whole_run
    out = tmp_path / "sharded"
    count = 5  # more shards than submissions: some are empty
    first, empty = _holding(cls, count)
    said = []
    assert grade_batch([cls], out, options=options(), progress=False, shard=Shard(empty, count), log=said.append) == []
    assert f"shard {empty}/{count}: 0 of the 3 submission(s)" in said
    got = grade_batch([cls], out, options=options(), progress=False, shard=Shard(first, count))
    assert got and all(shard_of(r["student"], "toy", count) == first for r in got)
    assert not (out / "gradebook.csv").exists()  # a shard never writes the gradebook
    assert (out / "staff" / "roster.json").is_file()
    # the merge of a part: the others are 'not graded yet', listed as missing, exit code 1
    part = merge(out)
    rest = sorted(n for n in CODES if shard_of(n, "toy", count) != first)
    assert [s for s, _ in part.missing] == rest and part.complete == len(got)
    assert all(r["toy"] == NOT_GRADED for r in gradebook_rows(out) if r["student"] in rest)
    assert cli.main(["gradebook", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"missing: {rest[0]} / toy" in text and "failed" not in text
    for k in set(range(count)) - {first, empty}:
        grade_batch([cls], out, options=options(), progress=False, shard=Shard(k, count))
    done = merge(out)
    assert done.missing == [] and done.complete == 3
    assert gradebook_rows(out) == gradebook_rows(whole_out)
    assert [r["toy"] for r in gradebook_rows(out)] == ["4.0", "2.0", "0.0"]  # alice, bob, carol: real grades
    assert cli.main(["gradebook", str(out)]) == 0
    # a report lost (a shard's task killed before it finished): the merge says so, the gradebook does not invent it
    shutil.rmtree(out / "staff" / "bob" / "toy")
    lost = merge(out)
    assert lost.missing == [("bob", "toy")] and "missing: bob / toy" in lost.summary()
    assert gradebook_rows(out) != gradebook_rows(whole_out)


def test_the_cli_refuses_a_bad_shard_and_an_empty_out(toykit, tmp_path, capsys):
    toy_class(tmp_path / "class", {"alice": "x = 1\n"})
    assert cli.main(["grade", str(tmp_path / "class"), "-o", str(tmp_path / "out"), "--shard", "4/4", "--insecure"]) == 2
    err = capsys.readouterr().err
    assert "coursekit grade: error: shard 4/4: K/N needs N >= 1 and 0 <= K < N" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert cli.main(["gradebook", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "holds no grading output" in err and "Traceback" not in err
    assert not (tmp_path / "empty" / "gradebook.csv").exists()
