"""Test settings: float64 JAX for closed-form checks, strict rank promotion, Agg backend, fixed seeds.

float64 is switched on here, once, before any test imports JAX code, and never flipped inside a
test. Code that must run in float32 (nets, benchmarks) asks for its dtype explicitly. Implicit rank
promotion (broadcasting a (n,) array against an (n, k) one) raises, so shape slips fail loudly.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["SGTHEORY_JAX_CACHE"] = "off"  # hermetic: no compiled programs shared with earlier runs

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fixed-seed numpy Generator (never the global RNG)."""
    return np.random.default_rng(0)


@pytest.fixture
def key():
    """A fixed JAX PRNG key."""
    return jax.random.PRNGKey(0)
