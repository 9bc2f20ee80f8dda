"""Errors a user can cause: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A problem with the user's input (flags, files, names), not with archbench."""
