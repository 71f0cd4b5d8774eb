"""The ``sgtheory`` command line: thin wrappers that parse, call the library, write files and summarise.

Each subcommand lives in its own module here exposing ``register(subparsers)``; the module adds its
parser and sets ``func=run``. Heavy imports (JAX) happen inside ``run`` so ``--help`` stays fast.
"""
