"""``python -m sgtheory``: the ``sgtheory`` command.

The Ctrl-C handlers go in before anything else is imported, and an interrupt that comes before them is
caught here, so an interrupt during start-up is one line and exit code 130 as well.
"""

try:
    from sgtheory.cli._guard import install_process_handlers

    install_process_handlers("sgtheory")
    from sgtheory.cli.main import entry
except KeyboardInterrupt:
    import os
    import sys

    print("sgtheory: interrupted", file=sys.stderr, flush=True)
    os._exit(130)
entry()
