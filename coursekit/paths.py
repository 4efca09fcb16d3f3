"""Where the kit's files live, resolved from the package, never from the working directory.

The kit is installed editable (``pip install -e .``) from its checkout, so the checkout's
top-level folders sit beside the package. ``COURSEKIT_ROOT`` overrides the location,
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


def data_dir() -> Path:
    return kit_root() / "data"


def assignments_dir() -> Path:
    return kit_root() / "assignments"


def solutions_dir() -> Path:
    return kit_root() / "solutions"


def autograder_dir() -> Path:
    return kit_root() / "autograder"


def user_data_dir() -> Path:
    """Where downloaded data sets are stored (``coursekit data fetch``).

    ``COURSEKIT_DATA`` overrides it; the default is ``data/downloads`` in the checkout,
    which git ignores.
    """
    env = os.environ.get("COURSEKIT_DATA")
    if env:
        return Path(env).resolve()
    return data_dir() / "downloads"
