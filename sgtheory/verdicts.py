"""The verdicts of a sweep run, by index (a module of its own: the plotting child reads them without JAX)."""

STATUS = ("converged", "not converged", "diverged")
CONVERGED, NOT_CONVERGED, DIVERGED = range(3)

__all__ = ["STATUS", "CONVERGED", "NOT_CONVERGED", "DIVERGED"]
