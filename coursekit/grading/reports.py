"""What grading produces for people: Gradescope results and a feedback page per submission (the gradebook and the
instructor's summaries are built in ``gradebook``, from the complete reports ``collect_reports`` finds).

Feedback shows test names, points and the graders' messages (hidden where the rubric says
``details: false``), in the rubric's order, and pictures captioned in plain words: never grader code
or expected values.

Much of what these files hold was written by students (their names, file names, the text of
their exceptions), so every such string is escaped where it lands: HTML-escaped in the
feedback page, neutralised against formula injection in the gradebook, plain JSON text
(capped) in Gradescope's results, control characters removed in the terminal's table.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from .. import paths

MAX_MESSAGE = 4000  # characters of one message in results.json and the feedback page
SANDBOXED = "bubblewrap"  # the isolation that counts as the sandbox


def cap(text, n: int = MAX_MESSAGE) -> str:
    """``text`` as a string of at most ``n`` characters (valid Unicode: stray surrogates are replaced); a cut one ends in
    " ... (cut)", or in "…" where ``n`` is a table's narrow column (a student's name keeps its first 23 characters, not 4)."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if len(text) <= n:
        return text
    mark = " ... (cut)" if n >= 60 else "…"
    return text[: n - len(mark)] + mark


def csv_cell(value):
    """A gradebook cell that no spreadsheet runs as a formula: text starting with = + - @ tab or CR gets a leading '."""
    if isinstance(value, str):
        value = cap(value, 32000)
        if value.startswith(("=", "+", "-", "@", "\t", "\r")):
            return "'" + value
    return value


def plain(text, n: int = 200) -> str:
    """For the terminal: no control characters (escape sequences), at most ``n`` characters."""
    return "".join(c if c.isprintable() else "?" for c in cap(text, n))


def sandboxed(report: dict) -> bool:
    """Was the student's code graded inside the sandbox (bubblewrap)? Reports of code that never ran count as yes."""
    return report.get("isolation") in (None, SANDBOXED)


def isolation_label(report: dict) -> str:
    iso = report.get("isolation")
    if iso is None:
        return ""
    return iso if iso == SANDBOXED else f"{iso} (without the sandbox" + (", --insecure)" if report.get("insecure") else ")")


def tests_problem(tests, rubric) -> str:
    """Why ``tests`` are not a complete grading against ``rubric`` (exactly its tests, valid numbers); "" when they are."""
    if not isinstance(tests, list):
        return "no list of tests"
    try:
        ids = [t["id"] for t in tests]
    except (KeyError, TypeError):
        return "a test without an id"
    if len(set(ids)) != len(ids):
        return "a test appears twice"
    missing, extra = set(rubric.items) - set(ids), set(ids) - set(rubric.items)
    if missing or extra:
        return f"tests missing: {sorted(missing)[:5]}, tests not in the rubric: {sorted(extra)[:5]}"
    for t in tests:
        p, m = t.get("points"), t.get("max_points")
        if any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) for x in (p, m)):
            return f"{t['id']}: points are not numbers"
        if abs(m - rubric.items[t["id"]].points) > 1e-9 or not 0 <= p <= m + 1e-9:
            return f"{t['id']}: {p} of {m} points, the rubric gives {rubric.items[t['id']].points}"
        if not isinstance(t.get("passed"), bool) or not isinstance(t.get("message", ""), str) or not isinstance(t.get("name"), str):
            return f"{t['id']}: malformed result"
    return ""


def report_problem(report, rubric) -> str:
    """Why a report does not count as a complete grading against ``rubric``; "" when it does."""
    if not isinstance(report, dict):
        return "not a report"
    why = tests_problem(report.get("tests"), rubric)
    if why:
        return why
    pts = sum(t["points"] for t in report["tests"])
    if not isinstance(report.get("points"), (int, float)) or abs(report["points"] - pts) > 1e-3:
        return "its total is not the sum of its tests"
    if not isinstance(report.get("max_points"), (int, float)) or abs(report["max_points"] - rubric.total) > 1e-3:
        return "its maximum is not the rubric's"
    return ""


HIDDEN_PLACEHOLDER = "details are hidden for this test"
VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")  # Gradescope's, most visible first
# how Gradescope renders the outputs: "text" as written (``coursekit grade``'s feedback tree: plain JSON text), "md"
# (markdown; student text in code blocks) or "html" (student text escaped, in <pre>)
OUTPUT_FORMATS = ("text", "md", "html")


@dataclass
class GradescopeSettings:
    """How a report becomes Gradescope's ``results.json`` (its autograder specification, field by field)."""

    # Gradescope visibility of the tests whose rubric entry says ``details: false``. "visible": shown at once, with
    # their message replaced by a placeholder (the default of ``coursekit grade``'s feedback tree, which is handed to
    # students as files). "after_due_date" / "after_published" / "hidden": Gradescope keeps the whole test (score and
    # real message) from the student until then, or for good (the Gradescope bundle's choice: Gradescope enforces it).
    hidden_visibility: str = "visible"
    output_format: str = "text"  # text | md | html: of the top-level output and every test's output (see OUTPUT_FORMATS)
    leaderboard: bool = False  # send the graders' recorded figures (held-out bits per pixel, FID) as Gradescope's leaderboard
    extra_output: str = ""  # plain text added to the top-level output (e.g. the bundle's note on the sandbox)

    def __post_init__(self):
        if self.hidden_visibility not in VISIBILITIES:
            raise ValueError(f"hidden_visibility must be one of {VISIBILITIES}, not {self.hidden_visibility!r}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, not {self.output_format!r}")


def _block(text: str, fmt: str) -> str:
    """Text written by anyone (student strings included) shown as it is, never as markup: a fenced code block in
    markdown (a fence longer than any run of backticks in it), an escaped ``<pre>`` in HTML."""
    text = cap(text)
    if fmt == "text":
        return text
    if fmt == "html":
        return f"<pre>{html.escape(text)}</pre>"
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}\n{text}\n{fence}"


def _para(text: str, fmt: str) -> str:
    """A paragraph of the kit's own words (no student text): escaped for the format."""
    if fmt == "text":
        return text
    if fmt == "html":
        return f"<p>{html.escape(text)}</p>"
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", text)


def leaderboard_entries(report: dict) -> list[dict]:
    """Gradescope leaderboard entries from the figures the graders recorded (``record_property("leaderboard", {...})``,
    kept in each test's ``leaderboard`` list): name, value and ``order`` ("asc": lower is better)."""
    found: dict[str, dict] = {}
    for t in report.get("tests", []):
        for e in t.get("leaderboard") or []:
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                continue
            v = e.get("value")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                continue
            entry = {"name": cap(e["name"], 100), "value": round(float(v), 4)}
            if e.get("order") in ("asc", "desc"):
                entry["order"] = e["order"]
            found.setdefault(entry["name"], entry)
    return list(found.values())


def gradescope_results(report: dict, settings: GradescopeSettings | None = None) -> dict:
    """Gradescope's autograder ``results.json`` of a report, following its specification: the total ``score``,
    ``execution_time`` (whole seconds), ``output`` with its ``output_format``, ``visibility`` and ``stdout_visibility``
    (hidden: the run's log is the staff's), ``extra_data``, and per test ``name`` (plain text), ``number`` (the
    rubric's order), ``score``, ``max_score``, ``status`` (passed or failed: partial credit is failed), ``output``
    with its ``output_format``, and ``visibility`` (the rubric's ``details: false`` tests get
    ``settings.hidden_visibility``); with ``settings.leaderboard``, a ``leaderboard`` of the recorded figures."""
    s = settings or GradescopeSettings()
    fmt = s.output_format
    join = "\n" if fmt == "text" else "\n\n"
    tests = []
    for i, t in enumerate(report["tests"], 1):
        hidden = not t["details"]
        shown_now = s.hidden_visibility == "visible"
        msg = t["message"] if (not hidden or t["passed"] or not shown_now) else HIDDEN_PLACEHOLDER
        out = _block(msg, fmt) if msg else _para("passed" if t["passed"] else "failed", fmt)
        tests.append({"name": cap(t["name"], 200), "name_format": "text", "number": str(i), "score": t["points"],
                      "max_score": t["max_points"], "status": "passed" if t["passed"] else "failed", "output": out,
                      "output_format": fmt, "visibility": s.hidden_visibility if hidden else "visible"})
    parts = []
    if report.get("problem"):
        parts.append(_block(report["problem"], fmt))
    else:
        parts.append(_para(f"graded with the {report['profile']} profile on {report['device']}", fmt))
    if report.get("profile") == "smoke":
        parts.append(_para(SMOKE_RUN_NOTE, fmt))
    if report.get("notes"):
        parts.append(_para("Not run in grading (it cannot cost you points):", fmt))
        parts.append(_block("\n".join(f"- {n}" for n in report["notes"]), fmt))
    if not sandboxed(report):
        parts.append(_para(f"This submission was graded without the sandbox (isolation {report.get('isolation')}): its code "
                           "ran with limits only.", fmt))
    if s.extra_output:
        parts.append(_para(s.extra_output, fmt))
    data = {
        "score": report["points"],
        "execution_time": int(math.ceil(float(report.get("total_seconds") or 0.0))),
        "output": cap(join.join(parts), 3 * MAX_MESSAGE),
        "output_format": fmt,
        "test_output_format": fmt,
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"assignment": report.get("assignment"), "profile": report.get("profile"),
                       "isolation": report.get("isolation"), "max_score": report.get("max_points"),
                       "coursekit": (report.get("versions") or {}).get("coursekit")},
        "tests": tests,
    }
    if s.leaderboard:
        data["leaderboard"] = leaderboard_entries(report)
    return data


def write_gradescope(report: dict, path: Path, settings: GradescopeSettings | None = None) -> None:
    """Gradescope's autograder ``results.json`` (``gradescope_results``), written to ``path``."""
    path.write_text(json.dumps(gradescope_results(report, settings), indent=1), encoding="utf-8")


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def reference_pictures(assignment: str) -> list[Path]:
    """Reference pictures shown beside the student's (made by ``coursekit reference``)."""
    folder = paths.autograder_dir() / assignment / "reference" / "feedback"
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


_COVERED = {"50": "bottom half covered", "75": "bottom three quarters covered", "25": "bottom quarter covered"}


def reference_caption(stem: str) -> str:
    """A reference picture's caption in plain words, from its file name: ``completions_of_the_reference_50pct_covered``
    -> "the reference model's completions, bottom half covered (top row: the images given)"."""
    m = re.fullmatch(r"([a-z0-9_]+?)_of_the_reference(?:_(\d+)pct_covered)?", stem)
    if not m:
        return stem.replace("_", " ")
    what = f"the reference model's {m.group(1).replace('_', ' ')}"
    if m.group(2):
        what += f", {_COVERED.get(m.group(2), m.group(2) + '% covered')} (top row: the training images it was given, uncovered)"
    return what


def _student_caption(title: str) -> str:
    title = cap(title, 200)
    return title if title.lower().startswith(("your", "you")) else f"yours: {title}"


SMOKE_RUN_NOTE = ("The smoke profile trains your model briefly, on a CPU; its thresholds were measured with the same short "
                  "run of the reference solution.")
SMOKE_NOTE = ("These pictures come from a short smoke-profile run: the graders trained your model briefly, on a CPU, so "
              "they look rougher than after your notebook's full training. Their points are judged against thresholds "
              "measured with the same short run.")


def write_feedback(report: dict, path: Path, artifacts: Path) -> None:
    """A self-contained HTML page (pictures embedded) with the scores, messages and pictures."""
    esc = html.escape
    rows = []
    for t in report["tests"]:
        msg = t["message"] if (t["details"] or t["passed"]) else "(details are hidden for this test)"
        status = "pass" if t["passed"] else ("partial" if t["points"] > 0 else "fail")
        rows.append(f'<tr class="{status}"><td>{esc(cap(t["name"], 200))}</td><td>{float(t["points"]):g} / {float(t["max_points"]):g}</td>'
                    f"<td>{esc(cap(msg or 'passed'))}</td></tr>")
    pics = []
    for t in report["tests"]:
        for a in t.get("attachments", []):
            name = Path(str(a.get("file", ""))).name  # only a picture in the artifacts folder itself
            p = artifacts / name
            if name and p.is_file() and not p.is_symlink():
                pics.append(f'<figure>{_img(p)}<figcaption>{esc(_student_caption(a.get("title", "")))}</figcaption></figure>')
    smoke = f'<p class="note">{esc(SMOKE_NOTE)}</p>' if report.get("profile") == "smoke" and pics else ""  # of the student's
    for p in reference_pictures(report["assignment"]):
        pics.append(f'<figure>{_img(p)}<figcaption>{esc(reference_caption(p.stem))}</figcaption></figure>')
    problem = f'<p class="problem">{esc(cap(report["problem"]))}</p>' if report.get("problem") else ""
    if not sandboxed(report):
        problem += (f'<p class="problem">This submission was graded without the sandbox (isolation: {esc(str(report.get("isolation")))}'
                    f'{", --insecure" if report.get("insecure") else ""}): its code ran with limits only.</p>')
    if report.get("notes"):
        items = "".join(f"<li>{esc(cap(n, 500))}</li>" for n in report["notes"])
        problem += (f'<div class="note"><p>Not run in grading: your own experiments (top-level work) cannot cost you points, '
                    f"and what the graders need is defined with def, class, import or an assignment.</p><ul>{items}</ul></div>")
    notebook = Path(report["notebook"]).name if report.get("notebook") else "none"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(report['assignment'])}: feedback for {esc(cap(report['student'], 200))}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; vertical-align: top; }}
tr.pass td:nth-child(2) {{ color: #176f2c; }} tr.fail td:nth-child(2) {{ color: #b00020; }} tr.partial td:nth-child(2) {{ color: #9a6700; }}
.total {{ font-size: 1.4rem; }} .problem {{ background: #fde7e9; padding: .6rem; }}
figure {{ display: inline-block; margin: .5rem; }} figure img {{ image-rendering: pixelated; max-width: 22rem; }}
.meta {{ color: #666; font-size: .85rem; }} .note {{ background: #eef4fb; padding: .6rem; }}
</style></head><body>
<h1>{esc(report['assignment'])}: {esc(cap(report['student'], 200))}</h1>
<p class="meta">notebook: {esc(cap(notebook, 300))}</p>
<p class="total">{report['points']:g} / {report['max_points']:g} points</p>
{problem}
<table><tr><th>test</th><th>points</th><th>message</th></tr>
{''.join(rows)}
</table>
<h2>Pictures</h2>
{smoke}
<div>{''.join(pics) or '<p>none</p>'}</div>
<p class="meta">profile {esc(str(report['profile']))}, device {esc(str(report['device']))}, isolation {esc(str(report.get('isolation')))},
torch {esc(report['versions']['torch'])}, graded in {report['total_seconds']:.1f} s</p>
</body></html>
"""
    path.write_text(page, encoding="utf-8", errors="replace")


def collect_reports(out: str | Path, exclude=()) -> list[dict]:
    """The complete reports under ``OUT/staff`` (each checked against its assignment's rubric), but for the
    ``(folder, assignment)`` pairs in ``exclude``."""
    from .layout import report_paths
    from .rubric import load_rubric

    out = Path(out)
    exclude = set(exclude)
    rubrics: dict[str, object] = {}
    found = []
    for p in report_paths(out):
        folder, assignment = p.parts[-3], p.parts[-2]
        if (folder, assignment) in exclude:
            continue
        try:
            rep = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        a = rep.get("assignment") if isinstance(rep, dict) else None
        if not isinstance(a, str) or a != assignment or rep.get("folder", folder) != folder:
            continue
        if a not in rubrics:
            try:
                rubrics[a] = load_rubric(a)
            except (OSError, ValueError):
                rubrics[a] = None  # no grader any more: the report cannot be checked, keep it
        if rubrics[a] is None or not report_problem(rep, rubrics[a]):
            found.append(rep)
    return found


def write_gradebook(out: str | Path, exclude=()) -> Path:
    """``OUT/gradebook.csv`` and the instructor's other summaries (see ``gradebook``), from the complete reports."""
    from .gradebook import write_gradebook as _write

    return _write(out, exclude)


def summary_table(reports: list[dict]) -> str:
    """A plain-text table of the reports, for the terminal."""
    lines = [f"{'student':24s} {'assignment':12s} {'points':>12s}  first problem"]
    unsandboxed = []
    for r in reports:
        failed = [t for t in r["tests"] if not t["passed"]]
        first = r["problem"] or (f"{failed[0]['name']}: {failed[0]['message']}" if failed else "")
        if failed and not failed[0]["details"] and not r["problem"]:
            first = f"{failed[0]['name']}: (details hidden)"
        mark = "" if sandboxed(r) else "!"
        if mark:
            unsandboxed.append(r)
        lines.append(f"{plain(r['student'], 24):24s} {plain(r['assignment'], 12):12s} {r['points']:>5g} / {r['max_points']:<5g}{mark:1s} {plain(first, 70)}")
    if unsandboxed:
        modes = sorted({str(r.get("isolation")) for r in unsandboxed})
        lines.append(f"! {len(unsandboxed)} submission(s) graded without the sandbox (isolation: {', '.join(modes)}): "
                     "their code ran with limits only")
    return "\n".join(lines)
