"""Where ``SharedTrunk`` used to live; kept so that models pickled before the move still load.

The trunk is part of the game's side now (``env.networks``): the loader of model
files in ``env/`` rebuilds it without importing the tuner.
"""

from env.networks import SharedTrunk

__all__ = ["SharedTrunk"]
