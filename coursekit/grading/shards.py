"""Shards: a fixed part of a batch, so that any scheduler (Slurm's job arrays, Kubernetes' Indexed Jobs, a loop of
shell jobs) can grade a course on many machines into one shared ``OUT``.

A submission belongs to shard ``int(sha256(student + assignment)) mod N``: its identity decides, never its
position in the batch, so a late submission added to the inputs moves no other submission to another shard, and
every shard of the same inputs agrees on who is whose. ``coursekit grade INPUTS -o OUT --shard K/N`` (``K`` from
0 to ``N - 1``, as Slurm's array task ids and Kubernetes' completion indexes count) grades its part and writes the
same per-submission reports as a whole batch; it writes the roster (what the inputs hold, written whole by each
shard, atomically) but no gradebook, so shards never race over it. ``coursekit gradebook OUT`` (``merge``) then
builds the gradebook from whatever reports are complete and says what is missing or failed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Shard:
    index: int  # 0 .. count - 1
    count: int

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: K/N needs N >= 1 and 0 <= K < N (K counts from 0, as Slurm's "
                             "array task ids and Kubernetes' completion indexes do)")

    def holds(self, student: str, assignment: str) -> bool:
        return shard_of(student, assignment, self.count) == self.index

    @property
    def slug(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> ``Shard(K, N)``; a clear ``ValueError`` otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise ValueError(f"--shard {text!r}: expected K/N, such as 0/8 (shard K of N, K from 0 to N-1)")
    return Shard(int(m.group(1)), int(m.group(2)))


def shard_of(student: str, assignment: str, count: int) -> int:
    """The shard of a submission, from its identity (the student's name as handed in, and the assignment) alone."""
    digest = hashlib.sha256(f"{student}\x00{assignment}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass
class Merged:
    """What ``merge`` found: the gradebook written, and what is not (yet) in it."""

    gradebook: Path
    complete: int  # submissions with a complete report
    missing: list[tuple[str, str]] = field(default_factory=list)  # (student, assignment) handed in, no complete report
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (student, assignment, problem): graded, with a problem
    students: int = 0

    def summary(self) -> str:
        from .reports import plain

        lines = [f"gradebook of {self.students} student(s) from {self.complete} complete report(s): {self.gradebook}"]
        if self.missing:
            lines.append(f"{len(self.missing)} submission(s) handed in have no complete report yet ('not graded yet' in the "
                         "gradebook; grade them again, e.g. the shards that hold them):")
            lines += [f"  missing: {plain(s, 40)} / {a}" for s, a in self.missing[:50]]
            if len(self.missing) > 50:
                lines.append(f"  ... and {len(self.missing) - 50} more")
        if self.failed:
            lines.append(f"{len(self.failed)} report(s) say grading could not finish or use the notebook:")
            lines += [f"  failed: {plain(s, 40)} / {a}: {plain(p, 100)}" for s, a, p in self.failed[:50]]
        return "\n".join(lines)


def merge(out: str | Path, exclude=()) -> Merged:
    """Write ``OUT/gradebook.csv`` and the summaries from the complete reports in ``out`` and the roster the shards
    wrote (``exclude``: ``(folder, assignment)`` pairs whose report is out of date). Refuses (``FileNotFoundError``) an
    ``out`` that holds neither a roster nor a report."""
    from . import layout
    from .gradebook import build_gradebook, read_roster, write_gradebook

    out = Path(out)
    if read_roster(out) is None and not layout.report_paths(out):
        raise FileNotFoundError(f"{out} holds no grading output (no {layout.STAFF}/{layout.ROSTER} and no report): "
                                "run `coursekit grade INPUTS -o OUT` (or its shards) into it first")
    path = write_gradebook(out, exclude)
    book = build_gradebook(out, exclude)
    missing = sorted((row.student, a) for row in book.current() for a in row.waiting)
    failed = sorted((row.student, a, str(r.get("problem"))) for row in book.current() for a, r in row.reports.items()
                    if r.get("problem"))
    return Merged(path, sum(len(r.reports) for r in book.rows), missing, failed, len(book.rows))


def count_submissions(inputs: list, assignments: list[str] | None = None) -> int:
    """How many submissions ``inputs`` hold (zips unpacked into a scratch folder, removed after): a job array's size."""
    import shutil
    import tempfile

    from .engine import graded_assignments
    from .submissions import discover

    known = graded_assignments()
    scratch = Path(tempfile.mkdtemp(prefix="coursekit-count-"))
    try:
        return len(discover(inputs, list(assignments or known), unzip_into=scratch, known=known).submissions)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
