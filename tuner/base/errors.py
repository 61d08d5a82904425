"""The one error type for a user's mistake: the CLI prints it and exits with code 2.

Anything else that escapes is a bug in the tuner and keeps its traceback.
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """Bad input: a study file, a URL, an argument. The message says how to fix it."""


class ConfigError(UserError):
    """A configuration that cannot build its env or model (a bad keyword, a bad value).

    Raised before any training, so it is the configuration's fault, never the
    trial's luck: a worker does not count such a trial against ``n_trials``, and
    stops when its trials keep failing with the same one.
    """
