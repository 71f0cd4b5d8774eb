"""sgtheory: theory and analysis of synthetic gradients and Decoupled Neural Interfaces.

Subpackages, one concept each:

- :mod:`sgtheory.linear`    linear / deep linear problems, SG learning rules, closed-form theory, sweeps
- :mod:`sgtheory.nets`      nonlinear MLPs and the unified credit-assignment family (BP, SG, FA, DFA, Kickback)
- :mod:`sgtheory.rnn`       recurrent nets: truncated BPTT, recurrent DNI (with Aux), Copy / Repeat Copy / char-LM
- :mod:`sgtheory.sg`        synthetic-gradient modules shared by all of the above
- :mod:`sgtheory.data`      offline data sets (MNIST-5k, digits, Fashion-MNIST, MNIST, CIFAR-10, text corpora)
- :mod:`sgtheory.represent` representation similarity (CCA, SVCCA, PWCCA, CKA, RDMs, probes)
- :mod:`sgtheory.plotting`  plot functions and the package style
- :mod:`sgtheory.cli`       the ``sgtheory`` command line
- :mod:`sgtheory.settings`  option tables of the analyses and commands; :mod:`sgtheory.testing` pytree assertions
- :mod:`sgtheory.machine`   the machine, versions and load a benchmark was measured on
- :mod:`sgtheory.tables`    text tables (the methods' declared properties)
"""

from sgtheory.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]
