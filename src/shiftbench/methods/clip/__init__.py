"""Test-time methods for CLIP zero-shot models (open_clip:MODEL sources): the zero-shot source entry, TPT and TDA.

The registry imports this package; importing its modules here registers their methods.
"""

from . import tda, tpt, zero_shot  # noqa: F401  (registration)
