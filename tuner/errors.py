"""The one error type for a user's mistake: the CLI prints it and exits with code 2.

Anything else that escapes is a bug in the tuner and keeps its traceback.
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """Bad input: a study file, a URL, an argument. The message says how to fix it."""
