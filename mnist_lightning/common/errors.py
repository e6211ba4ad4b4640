"""The one exception type the CLI turns into a short message and a non-zero exit instead of a traceback."""


class UserError(Exception):
    """Something the user can fix: bad data, a bad config value, a missing or wrong checkpoint."""
