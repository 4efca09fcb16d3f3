"""The two scripts at the root of a Gradescope autograder zip (``gradescope.build_bundle`` fills them in).

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once when it builds the autograder's
image (with network), copies ``run_autograder`` to ``/autograder/run_autograder`` and runs it for every submission,
in ``/autograder``, with the student's files in ``/autograder/submission``; it reads
``/autograder/results/results.json``. Both scripts take their folders from environment variables first, so that the
kit's tests can run them on a temporary folder laid out like ``/autograder`` without installing anything.
"""

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image: it installs the CPU build of torch
# (from PyPI's CPU index: Gradescope has no GPU) and the course kit carried in this zip, with its hidden graders,
# reference outputs and data (kit/), into a virtual environment beside it (venv/). Written by
# `coursekit export gradescope` for assignment {assignment}.
#
# COURSEKIT_SETUP_SKIP_INSTALL=1 skips every install (the kit's tests) and only checks the bundle with the Python
# in COURSEKIT_PYTHON.
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
VENV="$HERE/venv"
if [ "${{COURSEKIT_SETUP_SKIP_INSTALL:-0}}" != 1 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    # python3-venv for the virtual environment; bubblewrap for the sandbox of the students' code (used where the
    # container allows user namespaces; otherwise run_autograder grades with limits only and says so)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip bubblewrap >/dev/null
  fi
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q --index-url {torch_index} "{torch_spec}"
  "$VENV/bin/python" -m pip install -q -e "$HERE/kit"
fi
PYTHON="${{COURSEKIT_PYTHON:-$VENV/bin/python}}"
COURSEKIT_ROOT="$HERE/kit" MPLBACKEND=Agg "$PYTHON" -m coursekit.export.gradescope check --bundle "$HERE"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: it finds the notebook in /autograder/submission, grades it with the
# hidden graders of {assignment} in the {profile} profile (inside the sandbox where the container allows it, with
# limits only otherwise, said in the results), and writes /autograder/results/results.json.
# Written by `coursekit export gradescope`.
#
# For tests: COURSEKIT_AUTOGRADER_ROOT replaces /autograder, COURSEKIT_BUNDLE the folder setup.sh ran in
# (default: ROOT/source) and COURSEKIT_PYTHON the Python (default: the bundle's venv).
set -uo pipefail
ROOT="${{COURSEKIT_AUTOGRADER_ROOT:-/autograder}}"
BUNDLE="${{COURSEKIT_BUNDLE:-$ROOT/source}}"
PYTHON="${{COURSEKIT_PYTHON:-$BUNDLE/venv/bin/python}}"
export COURSEKIT_ROOT="$BUNDLE/kit" MPLBACKEND=Agg
# Gradescope's container has 768 MB by default: glibc's allocator is told to hand freed memory back at once and to keep
# few arenas, in the grader and (passed on by the sandbox) in the worker: about 10% less memory at the peak
export MALLOC_ARENA_MAX="${{MALLOC_ARENA_MAX:-2}}" MALLOC_MMAP_THRESHOLD_="${{MALLOC_MMAP_THRESHOLD_:-131072}}" \
  MALLOC_TRIM_THRESHOLD_="${{MALLOC_TRIM_THRESHOLD_:-131072}}"
# and the graders take big raw outputs a few rows at a time, ending workers they are done with (coursekit.grading.memory)
export COURSEKIT_LOW_MEMORY="${{COURSEKIT_LOW_MEMORY:-1}}"
exec "$PYTHON" -m coursekit.export.gradescope run --bundle "$BUNDLE" --root "$ROOT"
"""
