"""Every grader folder below runs under the kit's grading plugin (fixtures ``probe``,
``profile``, ``credit``, ``attach``; points from each folder's ``rubric.json``)."""

from coursekit.grading.pytest_plugin import *  # noqa: F401,F403 - fixtures and hooks
