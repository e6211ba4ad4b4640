"""The one exception type the CLI turns into a short message and a non-zero exit instead of a traceback, and the one
function every entry point prints it with."""

from __future__ import annotations

import sys

EXIT_USER_ERROR = 2  # argparse's status for a bad command line; every bad input ends with it


class UserError(Exception):
    """Something the user can fix: bad data, a bad config value, a missing or wrong checkpoint."""


def report_error(message: object) -> int:
    """Print ``message`` as one ``error: ...`` paragraph on stderr; returns the exit status to end with."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR
