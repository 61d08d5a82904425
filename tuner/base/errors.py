"""The one error type for a user's mistake: the CLI prints it and exits with code 2.

Anything else that escapes is a bug in the tuner and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_BAD_INPUT = 2


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` did you mean 'net_arch'?`` for a near miss among ``choices``, else ``""``."""
    close = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=0.6)
    return f" did you mean {close[0]!r}?" if close else ""


class UserError(Exception):
    """Bad input: a study file, a URL, an argument. The message says how to fix it."""


class ConfigError(UserError):
    """A configuration that cannot build its env or model (a bad keyword, a bad value).

    Raised before any training, so it is the configuration's fault, never the
    trial's luck: a worker does not count such a trial against ``n_trials``, and
    stops when its trials keep failing with the same one.
    """
