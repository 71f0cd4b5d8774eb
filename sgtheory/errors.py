"""The one exception type for bad user input.

The command line turns an :class:`InputError` into one line on stderr and exit code 2.
It subclasses :class:`ValueError` so library callers can catch either.
"""


class InputError(ValueError):
    """Bad input from the user: wrong shapes, NaN/inf, unknown options, missing or corrupt files."""
