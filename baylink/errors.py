"""Errors the command line turns into one clear line."""


class BaylinkCliError(Exception):
    """Base of every error that the command line reports as one line, without a traceback."""
