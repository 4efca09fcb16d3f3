"""coursekit: assignments, reference solutions and autograder for a course on deep generative models.

Nothing is done at import time; import the submodules you need (``coursekit.data``,
``coursekit.plot``, ``coursekit.release``, ...).
"""

__version__ = "0.1.0"
