"""What grading produces for people: a gradebook, Gradescope results, and a feedback page per student.

Feedback shows test names, points and the graders' messages (hidden where the rubric says
``details: false``) and pictures: never grader code or expected values.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from pathlib import Path

from .. import paths


def write_gradescope(report: dict, path: Path) -> None:
    """Gradescope's autograder ``results.json`` format."""
    tests = []
    for t in report["tests"]:
        out = t["message"] if (t["details"] or t["passed"]) else "details are hidden for this test"
        tests.append({"name": t["name"], "score": t["points"], "max_score": t["max_points"], "output": out, "visibility": "visible"})
    data = {
        "score": report["points"],
        "execution_time": report["total_seconds"],
        "output": report["problem"] or f"graded with the {report['profile']} profile on {report['device']}",
        "tests": tests,
    }
    path.write_text(json.dumps(data, indent=1))


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def reference_pictures(assignment: str) -> list[Path]:
    """Reference pictures shown beside the student's (made by ``coursekit reference``)."""
    folder = paths.autograder_dir() / assignment / "reference" / "feedback"
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def write_feedback(report: dict, path: Path, artifacts: Path) -> None:
    """A self-contained HTML page (pictures embedded) with the scores, messages and pictures."""
    esc = html.escape
    rows = []
    for t in report["tests"]:
        msg = t["message"] if (t["details"] or t["passed"]) else "(details are hidden for this test)"
        status = "pass" if t["passed"] else ("partial" if t["points"] > 0 else "fail")
        rows.append(f'<tr class="{status}"><td>{esc(t["name"])}</td><td>{t["points"]:g} / {t["max_points"]:g}</td>'
                    f"<td>{esc(msg or 'passed')}</td></tr>")
    pics = []
    for t in report["tests"]:
        for a in t.get("attachments", []):
            p = artifacts / a["file"]
            if p.is_file():
                pics.append(f'<figure>{_img(p)}<figcaption>yours: {esc(a["title"])}</figcaption></figure>')
    for p in reference_pictures(report["assignment"]):
        pics.append(f'<figure>{_img(p)}<figcaption>reference: {esc(p.stem.replace("_", " "))}</figcaption></figure>')
    problem = f'<p class="problem">{esc(report["problem"])}</p>' if report.get("problem") else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(report['assignment'])}: feedback for {esc(report['student'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; vertical-align: top; }}
tr.pass td:nth-child(2) {{ color: #176f2c; }} tr.fail td:nth-child(2) {{ color: #b00020; }} tr.partial td:nth-child(2) {{ color: #9a6700; }}
.total {{ font-size: 1.4rem; }} .problem {{ background: #fde7e9; padding: .6rem; }}
figure {{ display: inline-block; margin: .5rem; }} figure img {{ image-rendering: pixelated; max-width: 22rem; }}
.meta {{ color: #666; font-size: .85rem; }}
</style></head><body>
<h1>{esc(report['assignment'])}: {esc(report['student'])}</h1>
<p class="total">{report['points']:g} / {report['max_points']:g} points</p>
{problem}
<table><tr><th>test</th><th>points</th><th>message</th></tr>
{''.join(rows)}
</table>
<h2>Pictures</h2>
<div>{''.join(pics) or '<p>none</p>'}</div>
<p class="meta">profile {esc(str(report['profile']))}, device {esc(str(report['device']))}, isolation {esc(str(report.get('isolation')))},
torch {esc(report['versions']['torch'])}, graded in {report['total_seconds']:.1f} s</p>
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def collect_reports(out: str | Path) -> list[dict]:
    out = Path(out)
    found = (p for p in sorted(out.glob("*/*/report.json")) if not any(part.startswith(".") for part in p.relative_to(out).parts))
    return [json.loads(p.read_text()) for p in found]


def write_gradebook(out: str | Path) -> Path:
    """``out/gradebook.csv``: one row per student and assignment, points per test, total."""
    out = Path(out)
    reports = collect_reports(out)
    test_cols: list[str] = []
    for r in reports:
        for t in r["tests"]:
            col = f"{r['assignment']}: {t['name']}"
            if col not in test_cols:
                test_cols.append(col)
    path = out / "gradebook.csv"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", *test_cols, "total", "max_points", "problem"])
        for r in reports:
            pts = {f"{r['assignment']}: {t['name']}": t["points"] for t in r["tests"]}
            w.writerow([r["student"], r["assignment"], *[pts.get(c, "") for c in test_cols], r["points"], r["max_points"], r["problem"]])
    os.replace(tmp, path)
    return path


def summary_table(reports: list[dict]) -> str:
    """A plain-text table of the reports, for the terminal."""
    lines = [f"{'student':24s} {'assignment':12s} {'points':>12s}  first problem"]
    for r in reports:
        failed = [t for t in r["tests"] if not t["passed"]]
        first = r["problem"] or (f"{failed[0]['name']}: {failed[0]['message']}" if failed else "")
        if failed and not failed[0]["details"] and not r["problem"]:
            first = f"{failed[0]['name']}: (details hidden)"
        lines.append(f"{r['student'][:24]:24s} {r['assignment'][:12]:12s} {r['points']:>5g} / {r['max_points']:<5g}  {first[:70]}")
    return "\n".join(lines)
