"""The exception type for bad user input, and the warning for non-finite results.

The command line turns an :class:`InputError` into one line on stderr and exit code 2.
It subclasses :class:`ValueError` so library callers can catch either.
"""


class InputError(ValueError):
    """Bad input from the user: wrong shapes, NaN/inf, unknown options, missing or corrupt files."""


class NonFiniteWarning(RuntimeWarning):
    """A result held NaN or infinity; it was written as ``null`` and its place recorded (see
    :func:`sgtheory.io.json_safe`)."""
