"""The one exception type for mistakes a user can make (paths, flags, files, shapes)."""

import argparse


class UserError(Exception):
    """A problem in what the user asked for; the message says what was wrong and what to do.

    Command-line entry points print it on one line without a traceback and exit non-zero.
    """


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose bad flags raise a one-line UserError instead of printing usage."""

    def error(self, message):
        raise UserError(f"{message} (see `{self.prog} --help`)")
