"""The verdicts of a sweep run and of the theory's prediction, by index (a module of its own: the plotting child
reads them without JAX)."""

STATUS = ("converged", "not converged", "diverged")
CONVERGED, NOT_CONVERGED, DIVERGED = range(3)

#: The theory's three-way prediction per cell (:mod:`sgtheory.linear.predict`).
PREDICTIONS = ("converges", "diverges", "undetermined")

__all__ = ["STATUS", "CONVERGED", "NOT_CONVERGED", "DIVERGED", "PREDICTIONS"]
