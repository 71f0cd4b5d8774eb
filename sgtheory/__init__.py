"""sgtheory: theory and analysis of synthetic gradients and Decoupled Neural Interfaces.

Subpackages, one concept each:

- :mod:`sgtheory.linear`    linear / deep linear problems, SG learning rules, closed-form theory, sweeps
- :mod:`sgtheory.nets`      nonlinear MLPs and the unified credit-assignment family (BP, SG, FA, DFA, Kickback)
- :mod:`sgtheory.data`      offline data sets (MNIST-5k, digits, Fashion-MNIST, MNIST, CIFAR-10)
- :mod:`sgtheory.represent` representation similarity (CCA, SVCCA, PWCCA, CKA, RDMs, probes)
- :mod:`sgtheory.plotting`  plot functions and the package style
- :mod:`sgtheory.cli`       the ``sgtheory`` command line
"""

from sgtheory.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]
