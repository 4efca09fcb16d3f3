"""Grade the cheat suite's attacks (tests/cheats/) and print what each one got, as a markdown table.

    python benchmarks/cheat_table.py [--assignment pixelrnn vae gan] [--only NAME ...] [--jobs 2] [--keep] [--json PATH]

Each assignment's attacks are graded in one batch beside the honest reference (smoke profile),
exactly as ``tests/test_cheats.py`` does. Columns: attack, assignment, points / max, verdict
("deserved", or "NOT: " and what it got that it should not have), and the most telling message
of its report. Below the table: the batch-wide problems (a canary changed, the reference lost
points) and the time each batch took. Needs bubblewrap (the engine refuses to grade without it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cheats import ASSIGNMENTS, ATTACKS  # noqa: E402
from cheats.harness import markdown_table, run_batch  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignment", nargs="+", default=list(ASSIGNMENTS), choices=ASSIGNMENTS)
    ap.add_argument("--only", nargs="+", default=None, help="grade only these attacks (the baselines always run)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the batch folders (notebooks, reports) under /var/tmp")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--weak", choices=("rlimits", "unshare"), default=None,
                    help="grade with this weaker isolation (insecure): what each attack achieves where the sandbox is missing, "
                         "a check that the attacks are real. The attacks that kill every process or remount file systems "
                         "refuse outside namespaces of their own; what they write is limited to files the harness removes")
    args = ap.parse_args(argv)
    attacks = [a for a in ATTACKS if args.only is None or a.name in args.only]
    results = []
    t0 = time.monotonic()
    for assignment in args.assignment:
        if not any(a.assignment == assignment for a in attacks):
            continue
        res = run_batch(assignment, attacks, jobs=args.jobs, keep=args.keep, progress=args.progress, isolation=args.weak)
        results.append(res)
        print(f"{assignment}: {len(res.problems)} attacks graded in {res.seconds:.0f} s"
              + (f" (kept in {res.root})" if args.keep else ""), file=sys.stderr, flush=True)
    print(markdown_table(results))
    print()
    bad = [r for res in results for r in res.rows() if not r["deserved"]]
    print(f"{len(bad)} of {sum(len(res.problems) for res in results)} attacks got more than they deserve "
          f"(or escaped the sandbox); {time.monotonic() - t0:.0f} s in all")
    for res in results:
        for p in res.batch_problems:
            print(f"- {res.assignment} batch: {p}")
    if args.json:
        Path(args.json).write_text(json.dumps([r for res in results for r in res.rows()], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
