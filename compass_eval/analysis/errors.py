"""The one error type the command-line tools turn into a one-line message and exit status 2."""


class InputError(Exception):
    """Input the user can fix (a path, a file, a field); the message says which and what to do."""
