"""The one exception type for mistakes a user can make (paths, flags, files, shapes)."""


class UserError(Exception):
    """A problem in what the user asked for; the message says what was wrong and what to do.

    Command-line entry points print it on one line without a traceback and exit non-zero.
    """
