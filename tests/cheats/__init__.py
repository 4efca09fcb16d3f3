"""The cheat suite: attacks a student might hand in to get points for no work, one table per assignment.

``tests/test_cheats.py`` grades each assignment's attacks in one batch beside the honest reference and
checks every attack gets only what it deserves; ``benchmarks/cheat_table.py`` prints the table.
"""

from . import gan, pixelrnn, vae
from .common import Attack, Deserves

ATTACKS: list[Attack] = [*pixelrnn.ATTACKS, *vae.ATTACKS, *gan.ATTACKS]
ASSIGNMENTS = ("pixelrnn", "vae", "gan")

__all__ = ["ATTACKS", "ASSIGNMENTS", "Attack", "Deserves"]
