"""The one base class for errors a user can fix. The CLI prints their first line and exits 2; the
pages show it in an error box. Anything else is a bug and is left to raise with its traceback."""


class LatentvizError(Exception):
    """Bad input or a missing prerequisite; the message says what to fix, in words that fit both
    the command line and the pages."""


class ConfigError(LatentvizError):
    """A run or model option out of its range, or options that do not go together."""
