"""``python -m sgtheory``: the ``sgtheory`` command."""

from sgtheory.cli.main import entry

entry()
