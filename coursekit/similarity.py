"""Similarity between submissions: which students' answer cells share more code than independent work does.

``coursekit similarity SUBMISSIONS -a ASSIGNMENT -o report.html`` reads the submissions the way ``coursekit grade``
does (``grading.submissions.discover``), takes each student's answer cells (nbgrader's solution cells; every code
cell where a notebook lost that metadata) and compares every pair with copydetect's winnowing fingerprints
(Schleimer et al., "Winnowing", 2003): the code is tokenised, names become a placeholder and comments go, so renamed
variables still match, and a set of fingerprints does not care about the order of functions. Fingerprints of the code
the student notebook gives (``assignments/<a>/<a>.ipynb``: signatures, docstrings, ``raise NotImplementedError()``,
given cells) are removed first, so that what everybody was handed does not count.

Each pair's score is the share of each student's own code (after that discount) found in the other's, averaged over
the two; the report ranks every pair and shows the top ones side by side, the shared lines highlighted. Everything a
student wrote is escaped. Similarity is evidence for a person to look at, not a verdict.
"""

from __future__ import annotations

import html
import io
import tempfile
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from . import paths
from .notebook import NotebookError, grade_id, is_answer_cell, read_notebook, strip_magics

EXPLANATION = (
    "Similarity is evidence for a person to look at, not a verdict. Two students may share code because they "
    "followed the same lecture example, the same documentation or the assignment's hints, because a short function "
    "has few reasonable ways to be written, or because they were allowed to work together. The code the student "
    "notebook gives was left out before comparing; names and comments are ignored, so renamed variables and reordered "
    "functions still match. Read the pairs side by side, and talk to the students before drawing any conclusion.")


@dataclass
class SimilarityOptions:
    noise: int = 25  # copydetect's noise threshold: shorter shared runs of tokenised code (in characters) never count
    guarantee: int = 30  # ... and its guarantee threshold: shared runs this long are always found (>= noise)
    top: int = 20  # pairs shown side by side (the table lists them all)
    min_own: int = 40  # tokenised characters of a student's own code, after the given code is removed, to be compared


@dataclass
class StudentCode:
    student: str
    notebook: Path
    cells: list  # [(label, source)] of the answer cells, in the notebook's order
    text: str = ""  # the cells joined, as compared
    fingerprint: object = None  # copydetect.CodeFingerprint
    own: int = 0  # tokenised characters covered by the student's own fingerprints


@dataclass
class Pair:
    a: StudentCode
    b: StudentCode
    share_a: float  # share of a's own code found in b's
    share_b: float
    slices_a: object = None  # character ranges of a.text that match (2 x N)
    slices_b: object = None

    @property
    def score(self) -> float:
        return (self.share_a + self.share_b) / 2


@dataclass
class SimilarityResult:
    output: Path
    pairs: list  # Pair, most similar first
    students: list  # StudentCode compared
    left_out: list = field(default_factory=list)  # (student, why) not compared
    given_lines: set = field(default_factory=set)  # the given code's lines (stripped): shown grey, never highlighted

    def summary_lines(self) -> list[str]:
        lines = [f"compared {len(self.students)} student(s), {len(self.pairs)} pair(s); report: {self.output}"]
        for p in self.pairs[:5]:
            lines.append(f"  {p.score:6.1%}  {_plain(p.a.student)} / {_plain(p.b.student)}")
        lines += [f"  not compared: {_plain(s)}: {why}" for s, why in self.left_out]
        lines.append("similarity is evidence for a person to look at, not a verdict")
        return lines


def _plain(text: str, n: int = 60) -> str:
    from .grading.reports import plain

    return plain(text, n)


def answer_cells(nb) -> list[tuple[str, str]]:
    """[(label, source)] of the notebook's answer cells (every code cell if none is marked as one), magics removed."""
    cells = [(i, c) for i, c in enumerate(nb.cells, 1) if c.cell_type == "code"]
    marked = [(i, c) for i, c in cells if is_answer_cell(c)]
    return [(f"cell {i}" + (f" ({grade_id(c)})" if grade_id(c) else ""), strip_magics(c.source))
            for i, c in (marked or cells)]


def _join(cells: list[tuple[str, str]]) -> str:
    return "".join(f"# ===== {label} =====\n{src.rstrip()}\n\n" for label, src in cells)


def given_code(assignment: str) -> str:
    """Every code cell of the student notebook of ``assignment``: what all students were given (its answer cells also
    as ``collect`` joins a student's, so that code spanning two untouched cells counts as given too)."""
    path = paths.assignments_dir() / assignment / f"{assignment}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no student notebook for assignment {assignment!r} (the given code is read from it)")
    nb = read_notebook(path)
    cells = "\n\n".join(strip_magics(c.source) for c in nb.cells if c.cell_type == "code")
    return cells + "\n\n" + _join(answer_cells(nb))  # and its answer cells joined as a student's are: their seams too


def _fingerprint(text: str, opts: SimilarityOptions, boilerplate=None, window: int | None = None):
    from copydetect import CodeFingerprint

    win = window if window is not None else opts.guarantee - opts.noise + 1
    return CodeFingerprint("answers.py", opts.noise, win, boilerplate=boilerplate, fp=io.StringIO(text), language="python")


def collect(inputs: list, assignment: str, opts: SimilarityOptions, unzip_into: Path) -> tuple[list[StudentCode], list]:
    """The students' answer cells of ``assignment`` found in ``inputs``, fingerprinted without the given code."""
    import numpy as np

    from .grading.submissions import discover

    given = _fingerprint(given_code(assignment), opts, window=1)  # every k-gram of the given code
    boilerplate = np.array(sorted(given.hashes), dtype=np.int64) if given.hashes else None
    found = discover(inputs, [assignment], unzip_into=unzip_into, known=[assignment])
    students, left_out = [], []
    for s in found.students:
        if s.problem:
            left_out.append((s.student, s.problem))
    for sub in found.submissions:
        if sub.notebook is None:
            left_out.append((sub.student, sub.problem or "no notebook"))
            continue
        try:
            cells = answer_cells(read_notebook(sub.notebook))
        except NotebookError as e:
            left_out.append((sub.student, str(e)))
            continue
        sc = StudentCode(sub.student, sub.notebook, cells, _join(cells))
        sc.fingerprint = _fingerprint(sc.text, opts, boilerplate=boilerplate)
        sc.own = int(sc.fingerprint.token_coverage)
        if sc.own < opts.min_own:
            left_out.append((sub.student, "too little code of their own beyond what the notebook gives"))
            continue
        students.append(sc)
    return students, left_out


def compare(students: list[StudentCode]) -> list[Pair]:
    """Every pair, most similar first."""
    from copydetect import compare_files

    pairs = []
    for a, b in combinations(students, 2):
        _, (sa, sb), (sl_a, sl_b) = compare_files(a.fingerprint, b.fingerprint)
        pairs.append(Pair(a, b, min(1.0, float(sa)), min(1.0, float(sb)), sl_a, sl_b))
    pairs.sort(key=lambda p: (-p.score, p.a.student, p.b.student))
    return pairs


# --- the report ----------------------------------------------------------------------------------------------------
def _matched_lines(text: str, slices) -> set[int]:
    """Line numbers (from 0) of ``text`` that a matching character range touches."""
    hit: set[int] = set()
    if slices is None or len(slices) == 0 or len(slices[0]) == 0:
        return hit
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    import bisect

    for lo, hi in zip(slices[0], slices[1]):
        first = bisect.bisect_right(starts, int(lo)) - 1
        last = bisect.bisect_right(starts, max(int(lo), int(hi) - 1)) - 1
        hit.update(range(first, last + 1))
    return hit


def _code_column(sc: StudentCode, slices, given: set) -> str:
    lines = sc.text.split("\n")
    hit = _matched_lines(sc.text, slices)
    rows = []
    for n, line in enumerate(lines):
        if line.startswith("# ===== "):
            cls = "head"
        elif line.strip() in given:
            cls = "given"
        else:
            cls = "match" if n in hit and line.strip() else ""
        rows.append(f'<div class="{cls}"><span class="ln">{n + 1}</span>{html.escape(line) or " "}</div>')
    return "".join(rows)


_CSS = """body{font-family:sans-serif;margin:1.5em;max-width:110em}table.pairs td,table.pairs th{padding:2px 8px;text-align:left}
.why{background:#fff8d8;border:1px solid #e0c860;padding:.6em 1em}.side{display:flex;gap:1em}.side>div{flex:1;min-width:0}
.code{font-family:monospace;font-size:12px;white-space:pre-wrap;border:1px solid #ccc;padding:4px;overflow-x:auto}
.code .match{background:#ffd27f}.code .head{color:#666;background:#eee}.code .given{color:#999}.ln{color:#999;display:inline-block;width:3.5em}
"""


def write_report(result: SimilarityResult, assignment: str, opts: SimilarityOptions) -> None:
    esc = html.escape
    rows = "".join(
        f'<tr><td>{i}</td><td>{p.score:.1%}</td><td>{esc(p.a.student)}</td><td>{p.share_a:.1%}</td>'
        f'<td>{esc(p.b.student)}</td><td>{p.share_b:.1%}</td><td>{f"<a href=#pair{i}>side by side</a>" if i <= opts.top else ""}</td></tr>'
        for i, p in enumerate(result.pairs, 1))
    sides = []
    for i, p in enumerate(result.pairs[:opts.top], 1):
        sides.append(
            f'<h3 id="pair{i}">{i}. {esc(p.a.student)} and {esc(p.b.student)}: {p.score:.1%}</h3>'
            f'<p>{p.share_a:.1%} of {esc(p.a.student)}\'s own code is found in {esc(p.b.student)}\'s; '
            f'{p.share_b:.1%} of {esc(p.b.student)}\'s in {esc(p.a.student)}\'s. Highlighted: lines in shared code.</p>'
            f'<div class="side"><div><b>{esc(p.a.student)}</b> ({esc(p.a.notebook.name)})<div class="code">{_code_column(p.a, p.slices_a, result.given_lines)}</div></div>'
            f'<div><b>{esc(p.b.student)}</b> ({esc(p.b.notebook.name)})<div class="code">{_code_column(p.b, p.slices_b, result.given_lines)}</div></div></div>')
    left = "".join(f"<li>{esc(s)}: {esc(why)}</li>" for s, why in result.left_out)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Similarity of {esc(assignment)} submissions</title><style>{_CSS}</style></head>
<body><h1>Similarity of the {esc(assignment)} submissions</h1>
<p class="why"><b>Read this first.</b> {esc(EXPLANATION)}</p>
<p>{len(result.students)} students compared, {len(result.pairs)} pairs. Score: the share of each student's own code (after
removing the given code) found in the other's, averaged over the two. Highlighted: lines in shared code; grey: lines the
student notebook gives. Method: copydetect's winnowing over tokenised code
(shared runs of at least {opts.noise} tokenised characters count; runs of {opts.guarantee} are always found).</p>
{f"<p>Not compared:</p><ul>{left}</ul>" if left else ""}
<h2>Pairs, most similar first</h2>
<table class="pairs"><tr><th>#</th><th>score</th><th>student</th><th>own code shared</th><th>student</th><th>own code shared</th><th></th></tr>{rows}</table>
<h2>Side by side</h2>{''.join(sides) or '<p>No pair to show.</p>'}
</body></html>
"""
    tmp = result.output.with_name(f".{result.output.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(result.output)


def similarity_report(inputs: list, assignment: str, output: str | Path, options: SimilarityOptions | None = None,
                      force: bool = False) -> SimilarityResult:
    """Compare the answer cells of ``assignment`` of every student in ``inputs`` and write the HTML report ``output``
    (an existing file is replaced only with ``force``)."""
    opts = options or SimilarityOptions()
    if opts.guarantee < opts.noise:
        raise ValueError(f"SimilarityOptions: guarantee ({opts.guarantee}) must be at least noise ({opts.noise})")
    output = Path(output)
    if output.exists() and not force:
        raise FileExistsError(f"{output} exists; pass --force to replace it")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{output.parent}: no such folder for the report")
    with tempfile.TemporaryDirectory(prefix="coursekit-similarity-") as tmp:
        students, left_out = collect(inputs, assignment, opts, Path(tmp))
        given = {line.strip() for line in given_code(assignment).splitlines() if line.strip()}
        result = SimilarityResult(output, compare(students), students, left_out, given)
        write_report(result, assignment, opts)
    return result
