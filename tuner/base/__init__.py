"""What every layer may use: the user error, the settings, the runs folder.

- ``errors``: ``UserError``, printed as one line with exit code 2.
- ``settings``: every environment variable, read once and checked up front.
- ``runs``: where a study's files live.
"""
