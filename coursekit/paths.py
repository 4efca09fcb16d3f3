"""Where the kit's files live, resolved from the package, never from the working directory.

The instructor's kit is installed editable (``pip install -e .``) from its checkout, so the
checkout's top-level folders (``data/``, ``solutions/``, ``autograder/``...) sit beside the
package. The student release carries its data inside the package instead
(``coursekit/data/bundled/``: the students' copy of the course data set, ``course.json`` and
the evaluator weights), so that it is found however the release is installed: editable, or
``pip install`` into site-packages as on Colab. ``COURSEKIT_ROOT`` overrides the location,
for example to grade with a copy of the kit somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path


def kit_root() -> Path:
    """The checkout's top-level folder (the one holding ``data/``, ``assignments/``...)."""
    env = os.environ.get("COURSEKIT_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def bundled_data_dir() -> Path:
    """The data a student release carries inside the package (absent in the instructor's checkout)."""
    return kit_root() / "coursekit" / "data" / "bundled"


def is_student_release() -> bool:
    """True in an installed student release: data bundled in the package, no ``solutions/`` or ``autograder/``."""
    return bundled_data_dir().is_dir()


def is_staff_kit() -> bool:
    """True in the instructor's kit: the hidden folders (``solutions/`` and ``autograder/``) are there."""
    return solutions_dir().is_dir() and autograder_dir().is_dir()


def data_dir() -> Path:
    """``data/`` of the checkout, or the package's bundled data in a student release."""
    bundled = bundled_data_dir()
    return bundled if bundled.is_dir() else kit_root() / "data"


def assignments_dir() -> Path:
    return kit_root() / "assignments"


def solutions_dir() -> Path:
    return kit_root() / "solutions"


def autograder_dir() -> Path:
    return kit_root() / "autograder"


def user_data_dir() -> Path:
    """Where downloaded data sets are stored (``coursekit data fetch``).

    ``COURSEKIT_DATA`` overrides it; the default is ``data/downloads`` in the checkout,
    which git ignores, and the user's cache folder (``~/.cache/coursekit``) in a student
    release, whose package folder may not be writable.
    """
    env = os.environ.get("COURSEKIT_DATA")
    if env:
        return Path(env).resolve()
    if is_student_release():
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coursekit"
    return data_dir() / "downloads"
